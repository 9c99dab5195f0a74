import ForziumJSON

/// A JSON-RPC error object: what a handler throws to answer with an error.
public struct RPCError: Error, Sendable, CustomStringConvertible {
    /// The error code (see the constants below).
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

    public var description: String { "\(code): \(message)" }

    /// -32700: the line is not valid JSON (or not valid UTF-8).
    public static let parseErrorCode = -32700
    /// -32600: not a valid request object (also: a line over the length limit).
    public static let invalidRequestCode = -32600
    /// -32601: no such method.
    public static let methodNotFoundCode = -32601
    /// -32602: the params are wrong; `data.errors` lists `{pointer, message}`.
    public static let invalidParamsCode = -32602
    /// -32603: the engine failed unexpectedly while handling a valid request.
    public static let internalErrorCode = -32603
    /// -32000: a request exceeds the element limit.
    public static let tooLargeCode = -32000
    /// -32001: too many requests in flight.
    public static let overloadedCode = -32001
    /// -32002: the engine is shutting down.
    public static let shuttingDownCode = -32002

    public static func invalidRequest(_ message: String) -> RPCError {
        RPCError(code: invalidRequestCode, message: "Invalid Request: \(message)")
    }

    public static func methodNotFound(_ method: String) -> RPCError {
        RPCError(code: methodNotFoundCode, message: "Method not found: \(method)")
    }

    /// -32602 with `data.errors = [{pointer, message}]`.
    public static func invalidParams(_ message: String, errors: [(pointer: String, message: String)]) -> RPCError {
        let list = errors.map { error -> JSONValue in
            .object(JSONObject([("pointer", .string(error.pointer)), ("message", .string(error.message))]))
        }
        return RPCError(code: invalidParamsCode, message: message, data: .object(JSONObject([("errors", .array(list))])))
    }

    public static func internalError(_ message: String) -> RPCError {
        RPCError(code: internalErrorCode, message: "Internal error: \(message)")
    }

    /// -32700 locating the problem: the message names line and column, `data` holds `{offset, line, column}`.
    public static func parseError(_ error: JSONParseError) -> RPCError {
        RPCError(
            code: parseErrorCode,
            message: "Parse error: \(error.message) at line \(error.line), column \(error.column)",
            data: .object(JSONObject([
                ("offset", .exactInteger(error.offset)), ("line", .exactInteger(error.line)), ("column", .exactInteger(error.column)),
            ]))
        )
    }

    /// The reply to a line longer than the limit.
    public static func oversizeLine(byteCount: Int, limit: Int) -> RPCError {
        RPCError(
            code: invalidRequestCode,
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
