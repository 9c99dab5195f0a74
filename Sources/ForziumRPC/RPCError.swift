import ForziumJSON

/// Every error code on the engines' wire, in one table (docs/stdio-protocol.md lists the same).
public enum RPCErrorCode: Int, Sendable, CaseIterable {
    /// The line is not valid JSON (or not valid UTF-8); `data` is `{offset, line, column}`.
    case parseError = -32700
    /// Not a valid request object; also a line over the length limit (`data` `{limit, length}`).
    case invalidRequest = -32600
    /// No such method.
    case methodNotFound = -32601
    /// The params are wrong; `data.errors` lists `{pointer, message}`.
    case invalidParams = -32602
    /// The engine failed unexpectedly while handling a valid request.
    case internalError = -32603
    /// The inputs or the result exceed the element limit (refused before allocating).
    case tooLarge = -32000
    /// Reserved: too many requests in flight (the engines apply back-pressure instead).
    case overloaded = -32001
    /// Reserved: the engine is shutting down (the engines finish what they read instead).
    case shuttingDown = -32002
    /// The request was cancelled by `$/cancelRequest` before it finished (LSP's RequestCancelled).
    case requestCancelled = -32800
}

/// A JSON-RPC error object: what a handler throws to answer with an error, and what a client reads back.
public struct RPCError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The error code as sent (see `RPCErrorCode`; a peer may send others).
    public var code: Int
    /// A short human-readable description.
    public var message: String
    /// Optional structured detail (`data` member).
    public var data: JSONValue?

    public init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public init(_ code: RPCErrorCode, message: String, data: JSONValue? = nil) {
        self.init(code: code.rawValue, message: message, data: data)
    }

    /// The code when it is one of the table's.
    public var knownCode: RPCErrorCode? { RPCErrorCode(rawValue: code) }

    public var description: String { "\(code): \(message)" }

    /// `data.errors` of an invalid-params error, as issues (pointers relative to `params`).
    public var issues: [PointerIssue] {
        guard case .object(let object)? = data, let errors = object["errors"], case .array(let items) = errors else { return [] }
        return items.compactMap(PointerIssue.init)
    }

    public static func == (lhs: RPCError, rhs: RPCError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message && lhs.issues == rhs.issues
    }

    public static func invalidRequest(_ message: String) -> RPCError {
        RPCError(.invalidRequest, message: "Invalid Request: \(message)")
    }

    public static func methodNotFound(_ method: String) -> RPCError {
        RPCError(.methodNotFound, message: "Method not found: \(method)")
    }

    /// -32602 with `data.errors = [{pointer, message}]`.
    public static func invalidParams(_ message: String, issues: [PointerIssue]) -> RPCError {
        RPCError(.invalidParams, message: message, data: .object(JSONObject([("errors", .array(issues.map(\.jsonValue)))])))
    }

    /// -32800: the request was cancelled by `$/cancelRequest` before it finished.
    public static let requestCancelled = RPCError(.requestCancelled, message: "Request cancelled")

    public static func internalError(_ message: String) -> RPCError {
        RPCError(.internalError, message: "Internal error: \(message)")
    }

    /// -32700 locating the problem: the message names line and column, `data` holds `{offset, line, column}`.
    public static func parseError(_ error: JSONParseError) -> RPCError {
        RPCError(
            .parseError,
            message: "Parse error: \(error.message) at line \(error.line), column \(error.column)",
            data: .object(JSONObject([
                ("offset", .exactInteger(error.offset)), ("line", .exactInteger(error.line)), ("column", .exactInteger(error.column)),
            ]))
        )
    }

    /// The reply to a line longer than the limit.
    public static func oversizeLine(byteCount: Int, limit: Int) -> RPCError {
        RPCError(
            .invalidRequest,
            message: "Invalid Request: line of \(byteCount) bytes exceeds the limit of \(limit) bytes",
            data: .object(JSONObject([("limit", .exactInteger(limit)), ("length", .exactInteger(byteCount))]))
        )
    }
}

extension JSONValue {
    /// An integer-valued number that prints without a fraction (its literal is the decimal text).
    public static func exactInteger(_ value: Int) -> JSONValue {
        .number(JSONNumber(Double(value), literal: String(value)))
    }
}
