import ForziumJSON
import HTTPTypes
import Hummingbird
import NIOCore

/// Every failure the gateway answers with, mapped onto one HTTP status and rendered as
/// `application/problem+json` (RFC 9457). Extensible: a struct around a private-ish code enum.
public struct GatewayError: Error, Sendable, Equatable {
    /// What went wrong, one case per row of the status table.
    public enum Code: Sendable, Equatable {
        case malformedJSON
        case notFound
        case methodNotAllowed(allow: [String])
        case bodyTooLarge
        case unsupportedMediaType
        case unauthorized
        case validation
        case engineInternal
        case engineFailed
        case unavailable(retryAfterSeconds: Int?)
        case deadline
        /// The request's framing or header block breaks HTTP/1.1 (RFC 9112): bad chunking, CL+TE, a missing Host…
        case badRequest
        /// The client was too slow: headers not complete within the header timeout, or a body below the minimum rate.
        case requestTimeout
        /// The header block exceeds the parser's limits.
        case headersTooLarge
        /// A method or transfer coding the gateway does not implement (CONNECT, `Transfer-Encoding: gzip`).
        case notImplemented
        /// A request line with an HTTP version other than 1.x.
        case versionNotSupported
    }

    /// The case, which fixes status and title.
    public var code: Code
    /// Explanation specific to this occurrence (never a stack trace).
    public var detail: String
    /// Located problems, for validation failures.
    public var errors: [PointerIssue]

    public init(_ code: Code, _ detail: String, errors: [PointerIssue] = []) {
        self.code = code
        self.detail = detail
        self.errors = errors
    }

    /// The HTTP status of this error (the documented table).
    public var status: HTTPResponse.Status {
        switch code {
        case .malformedJSON: .badRequest
        case .notFound: .notFound
        case .methodNotAllowed: .methodNotAllowed
        case .bodyTooLarge: .contentTooLarge
        case .unsupportedMediaType: .unsupportedMediaType
        case .unauthorized: .unauthorized
        case .validation: .unprocessableContent
        case .engineInternal: .internalServerError
        case .engineFailed: .badGateway
        case .unavailable: .serviceUnavailable
        case .deadline: .gatewayTimeout
        case .badRequest: .badRequest
        case .requestTimeout: .requestTimeout
        case .headersTooLarge: .requestHeaderFieldsTooLarge
        case .notImplemented: .notImplemented
        case .versionNotSupported: .init(code: 505, reasonPhrase: "HTTP Version Not Supported")
        }
    }

    /// Short, stable summary of the problem type.
    public var title: String {
        switch code {
        case .malformedJSON: "Malformed JSON"
        case .notFound: "Not Found"
        case .methodNotAllowed: "Method Not Allowed"
        case .bodyTooLarge: "Content Too Large"
        case .unsupportedMediaType: "Unsupported Media Type"
        case .unauthorized: "Unauthorized"
        case .validation: "Validation Failed"
        case .engineInternal: "Engine Internal Error"
        case .engineFailed: "Bad Gateway"
        case .unavailable: "Service Unavailable"
        case .deadline: "Gateway Timeout"
        case .badRequest: "Bad Request"
        case .requestTimeout: "Request Timeout"
        case .headersTooLarge: "Request Header Fields Too Large"
        case .notImplemented: "Not Implemented"
        case .versionNotSupported: "HTTP Version Not Supported"
        }
    }

    /// The problem `type` URI (a stable slug per case).
    public var typeURI: String {
        let slug: String = switch code {
        case .malformedJSON: "malformed-json"
        case .notFound: "not-found"
        case .methodNotAllowed: "method-not-allowed"
        case .bodyTooLarge: "body-too-large"
        case .unsupportedMediaType: "unsupported-media-type"
        case .unauthorized: "unauthorized"
        case .validation: "validation"
        case .engineInternal: "engine-internal"
        case .engineFailed: "engine-failed"
        case .unavailable: "unavailable"
        case .deadline: "deadline"
        case .badRequest: "bad-request"
        case .requestTimeout: "request-timeout"
        case .headersTooLarge: "headers-too-large"
        case .notImplemented: "not-implemented"
        case .versionNotSupported: "version-not-supported"
        }
        return "https://forzium.dev/problems/\(slug)"
    }

    /// The problem document as JSON bytes.
    public func problemBody(requestID: String, instance: String?) -> [UInt8] {
        var members: [(key: String, value: JSONValue)] = [
            ("type", .string(typeURI)),
            ("title", .string(title)),
            ("status", .number(JSONNumber(Double(status.code), literal: String(status.code)))),
            ("detail", .string(detail)),
            ("request_id", .string(requestID)),
        ]
        if let instance { members.append(("instance", .string(instance))) }
        if !errors.isEmpty {
            members.append((
                "errors",
                .array(errors.map { .object(JSONObject([("pointer", .string($0.pointer)), ("message", .string($0.message))])) })
            ))
        }
        var out: [UInt8] = []
        out.reserveCapacity(256)
        JSONWriter.write(.object(JSONObject(members)), options: .document, into: &out)
        return out
    }
}

extension GatewayError: HTTPResponseError {
    /// The problem+json response for this error (with `Allow`, `Retry-After` or `WWW-Authenticate` where its
    /// case calls for one), carrying the request id and the request's path as `instance`.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let requestID = (context as? GatewayRequestContext)?.requestID.nonEmpty
            ?? RequestIDGenerator.client(request.headers[.xRequestID]) ?? RequestIDGenerator.next()
        var headers = HTTPFields()
        headers[.contentType] = "application/problem+json"
        switch code {
        case .methodNotAllowed(let allow): headers[.allow] = allow.joined(separator: ", ")
        case .unavailable(let seconds): headers[.retryAfter] = String(seconds ?? 1)
        case .unauthorized: headers[.wwwAuthenticate] = #"Bearer realm="forzium""#
        default: break
        }
        return Response(status: status, headers: headers,
                        body: .init(byteBuffer: ByteBuffer(bytes: problemBody(requestID: requestID, instance: request.uri.path))))
    }
}

extension String {
    fileprivate var nonEmpty: String? { isEmpty ? nil : self }
}
