import ForziumJSON
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPCompression

/// What the engine routes share on the way in: media type, body limits and the global body budget, one parse
/// of the body, schema validation, and the request's deadline. The result is the validated value.
struct EngineRequestReader: Sendable {
    let maxBodyBytes: Int
    let timeoutMilliseconds: Int
    let validator: any BodyValidator
    let bodyBudget: RequestBodyBudget
    let logger: Logger

    /// A validated engine request.
    struct Decoded {
        var value: JSONValue
        var operation: String
        var engineMethod: String
        var deadline: ContinuousClock.Instant
        var bodyBytes: Int
    }

    /// The request fields an engine route reads, from either HTTP layer (each as `HTTPFields`' subscript gives it:
    /// repeated fields joined with ", ").
    struct HeadFields {
        var contentType: String?
        var contentEncoding: String?
        var contentLength: String?
        var timeout: String?

        init(_ fields: HTTPFields) {
            contentType = fields.value(.contentType)
            contentEncoding = fields.value(.contentEncoding)
            contentLength = fields.value(.contentLength)
            timeout = fields.value(.xForziumTimeout)
        }

        init(_ headers: HTTPHeaders) {
            contentType = headers.value("content-type")
            contentEncoding = headers.value("content-encoding")
            contentLength = headers.value("content-length")
            timeout = headers.value("x-forzium-timeout-ms")
        }
    }

    func read(_ request: Request, route: Route, started: ContinuousClock.Instant) async throws -> Decoded {
        let head = HeadFields(request.headers)
        try checkHead(head)
        let deadline = try deadline(for: head, started: started)
        let (value, bodyBytes) = try await readJSON(request)
        return try validated(value, bodyBytes: bodyBytes, route: route, deadline: deadline)
    }

    /// `read` for a body already in memory (a small request served inline, `InlineCompute`): the same checks,
    /// budget, parse and validation, in no task.
    func decode(body: ByteBuffer, headers: HeadFields, route: Route, started: ContinuousClock.Instant) throws -> Decoded {
        try checkHead(headers)
        let deadline = try deadline(for: headers, started: started)
        let bytes = body.readableBytes
        guard bodyBudget.reserve(bytes) else { throw Self.budgetExhausted }
        defer { bodyBudget.release(bytes) }
        return try validated(Self.parse(body), bodyBytes: bytes, route: route, deadline: deadline)
    }

    /// 415 for a body that is not JSON or has an unsupported `Content-Encoding`; 413 for a declared length over the limit.
    private func checkHead(_ headers: HeadFields) throws {
        guard Self.isJSON(headers.contentType) else {
            throw GatewayError(.unsupportedMediaType, "the body must be JSON (Content-Type: application/json)")
        }
        try checkContentEncoding(headers)
        try checkDeclaredLength(headers)
    }

    /// The parsed body checked against its route's schema, with the operation it names.
    private func validated(_ value: JSONValue, bodyBytes: Int, route: Route, deadline: ContinuousClock.Instant) throws -> Decoded {
        guard let schemaURI = route.paramsSchemaURI, let engineMethod = route.engineMethod else {
            throw GatewayError(.engineInternal, "route \(route.path) has no schema or engine method")
        }
        let issues: [PointerIssue]
        do {
            issues = try validator.validate(value, schemaURI: schemaURI)
        } catch {
            logger.error("schema error", metadata: ["schema": "\(schemaURI)", "error": "\(error)"])
            throw GatewayError(.engineInternal, "the request schema could not be applied")
        }
        if !issues.isEmpty {
            throw GatewayError(.validation, "the body does not match the \(route.params ?? "") schema", errors: issues)
        }
        let operation: String
        if route.handler == .operation {
            operation = engineMethod
        } else if case .object(let object) = value, case .string(let op)? = object["operation"] {
            operation = op
        } else {
            throw GatewayError(.validation, "\"operation\" must be a string", errors: [PointerIssue(pointer: "/operation", message: "required string")])
        }
        return Decoded(value: value, operation: operation, engineMethod: engineMethod, deadline: deadline, bodyBytes: bodyBytes)
    }

    /// `read`, then the value's matrices made ready for the engine (`EngineParams`, which the caller releases); a
    /// large body is handled off the event loop (`Offload`). Also returns when the body had been read and validated.
    func readForEngine(_ request: Request, route: Route, started: ContinuousClock.Instant) async throws
        -> (decoded: Decoded, params: EngineParams, received: ContinuousClock.Instant) {
        try await Offload.run(if: Offload.isHeavy(contentLength: request.headers.value(.contentLength))) {
            let decoded = try await read(request, route: route, started: started)
            let received = ContinuousClock.now
            return (decoded, EngineParams(decoded.value), received)
        }
    }

    /// 415 for a `Content-Encoding` other than gzip, deflate or identity.
    func checkContentEncoding(_ headers: HeadFields) throws {
        if let coding = headers.contentEncoding?.lowercased(), !["gzip", "x-gzip", "deflate", "identity"].contains(coding) {
            throw GatewayError(.unsupportedMediaType, "Content-Encoding \"\(coding)\" is not supported; use gzip or deflate")
        }
    }

    /// 413 for a declared Content-Length over `--max-body-bytes`, before any of the body is read.
    func checkDeclaredLength(_ headers: HeadFields) throws {
        if let length = headers.contentLength.flatMap({ Int($0) }), length > maxBodyBytes {
            throw GatewayError(.bodyTooLarge, "the body has \(length) bytes; the limit is \(maxBodyBytes) (--max-body-bytes)")
        }
    }

    /// The request's deadline: `--timeout`, lowered by a valid `X-Forzium-Timeout-Ms` header.
    func deadline(for headers: HeadFields, started: ContinuousClock.Instant) throws -> ContinuousClock.Instant {
        var milliseconds = timeoutMilliseconds
        if let header = headers.timeout {
            guard let value = Int(header.trimmingCharacters(in: .whitespaces)), value > 0 else {
                throw GatewayError(.validation, "X-Forzium-Timeout-Ms must be a positive integer of milliseconds")
            }
            milliseconds = min(milliseconds, value)
        }
        return started + .milliseconds(milliseconds)
    }

    /// Request bodies: a large one is parsed on two threads (matrix rows read from the middle by the second; same
    /// values and errors as one thread).
    private static let bodyParser: JSONParser = {
        var options = JSONParser.Options()
        options.threads = 2
        return JSONParser(options: options)
    }()

    /// Collects the body (up to `--max-body-bytes`) and parses it once; the body's bytes are released on return.
    private func readJSON(_ request: Request) async throws -> (JSONValue, Int) {
        try await collectBody(request) { body in (try Self.parse(body), body.readableBytes) }
    }

    /// The body parsed once; a syntax error is the client's 400 problem, with its line and column.
    private static func parse(_ body: ByteBuffer) throws -> JSONValue {
        let parsed = body.withUnsafeReadableBytes { raw in
            Result { () throws(JSONParseError) -> JSONValue in try bodyParser.parse(raw) }
        }
        switch parsed {
        case .success(let value):
            return value
        case .failure(let error):
            let location = "line \(error.line), column \(error.column)"
            throw GatewayError(.malformedJSON, "malformed JSON: \(error.message) at \(location)",
                               errors: [PointerIssue(pointer: "", message: "\(error.message) at \(location)")])
        }
    }

    static let budgetExhausted = GatewayError(.unavailable(retryAfterSeconds: 1),
                                              "the gateway is holding its limit of request bodies (--max-buffered-bytes); retry shortly")

    /// Collects a body of any media type (up to `--max-body-bytes`, inflated when it is gzip or deflate) into one
    /// buffer sized from Content-Length up front — no doubling and copying while a 40 MB body arrives — holding its
    /// bytes against the global body budget (all at once when the length is known), and hands it to `use`; the
    /// buffer and the budget are released on return.
    func collectBody<T>(_ request: Request, _ use: (ByteBuffer) throws -> T) async throws -> T {
        var body = ByteBuffer()
        if let declared = request.headers.value(.contentLength).flatMap({ Int($0) }), declared > 0, declared <= maxBodyBytes {
            body.reserveCapacity(declared)
        }
        let reserved = try await forEachBodyChunk(request) { chunk in body.writeImmutableBuffer(chunk) }
        defer { bodyBudget.release(reserved) }
        return try use(body)
    }

    /// Hands the body to `consume` a chunk at a time as it arrives (inflated when it is gzip or deflate), up to
    /// `--max-body-bytes`, with its bytes reserved against the global body budget (all at once when the length is
    /// known). Returns the bytes reserved, which the caller releases (`bodyBudget.release`) once it no longer holds
    /// what it consumed; on a throw nothing stays reserved. Reading errors become the client's 4xx problems.
    func forEachBodyChunk(_ request: Request, _ consume: (ByteBuffer) throws -> Void) async throws -> Int {
        let declared = request.headers.value(.contentLength).flatMap { Int($0) }
        var reserved = 0
        var ok = false
        defer { if !ok { bodyBudget.release(reserved) } }
        func take(_ bytes: Int) throws {
            guard bodyBudget.reserve(bytes) else { throw Self.budgetExhausted }
            reserved += bytes
        }
        if let declared, declared > 0 { try take(min(declared, maxBodyBytes)) }
        let limit = maxBodyBytes
        var total = 0
        do {
            for try await chunk in request.body {
                guard total + chunk.readableBytes <= limit else {
                    throw GatewayError(.bodyTooLarge, "the body exceeds the limit of \(limit) bytes (--max-body-bytes)")
                }
                total += chunk.readableBytes
                if total > reserved { try take(total - reserved) }
                try consume(chunk)
            }
        } catch let error as GatewayError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch let error as HTTPParserError {
            throw HTTPEdgeHandler.problem(for: error)
        } catch NIOHTTPDecompression.DecompressionError.limit {
            throw GatewayError(.bodyTooLarge, "the body inflates past the limit of \(limit) bytes (--max-body-bytes)")
        } catch is NIOHTTPDecompression.DecompressionError, is NIOHTTPDecompression.ExtraDecompressionError {
            throw GatewayError(.badRequest, "the body is not valid for its Content-Encoding")
        } catch {
            throw GatewayError(.badRequest, "the request body could not be read: \(error)")
        }
        ok = true
        return reserved
    }

    static func isJSON(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        if contentType == "application/json" { return true }
        let mediaType = contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json"))
    }
}
