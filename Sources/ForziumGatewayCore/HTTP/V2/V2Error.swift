import ForziumJSON
import HTTPTypes
import Hummingbird
import NIOCore

/// Errors on `/v2` routes, in the Open Inference Protocol's shape: `{"error": "<message>"}` (what `tritonclient` and
/// KServe's clients read), instead of problem+json. The status keeps the gateway's table, except that a request the
/// client must fix is 400 (the protocol's status for it) where the JSON routes answer 422.
enum V2Error {
    /// True for the paths this shape applies to: `/v2` and everything under it.
    static func applies(to path: String) -> Bool { path == "/v2" || path.hasPrefix("/v2/") }

    /// The status of `error` on a v2 route.
    static func status(_ error: GatewayError) -> HTTPResponse.Status {
        switch error.code {
        case .validation, .malformedJSON: .badRequest
        default: error.status
        }
    }

    /// The message: the detail, then each located problem (`at /pointer: message`).
    static func message(_ error: GatewayError) -> String {
        guard !error.errors.isEmpty else { return error.detail }
        let issues = error.errors.prefix(8).map { $0.pointer.isEmpty ? $0.message : "at \($0.pointer): \($0.message)" }
        return error.detail + ": " + issues.joined(separator: "; ")
    }

    /// The response for `error`, with the headers its case calls for (`Allow`, `Retry-After`, `WWW-Authenticate`).
    static func response(_ error: GatewayError) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        switch error.code {
        case .methodNotAllowed(let allow): headers[.allow] = allow.joined(separator: ", ")
        case .unavailable(let seconds): headers[.retryAfter] = String(seconds ?? 1)
        case .unauthorized: headers[.wwwAuthenticate] = #"Bearer realm="forzium""#
        default: break
        }
        var body: [UInt8] = []
        JSONWriter.write(.object(JSONObject([("error", .string(message(error)))])), options: .document, into: &body)
        return Response(status: status(error), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
