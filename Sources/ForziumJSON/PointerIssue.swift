/// One located problem in a JSON document: where (a JSON Pointer, RFC 6901) and what.
///
/// The one `{pointer, message}` type of the project: the operations report bad params with it, the engines send it in
/// a -32602 error's `data.errors`, the gateway's validator produces it, and HTTP problem details list it in `errors`.
public struct PointerIssue: Error, Sendable, Equatable, Hashable {
    /// Where the problem is, e.g. `/data/1`, `/parameters/size`; `""` is the document itself.
    public var pointer: String
    /// What is wrong there, e.g. "row 1 has 3 elements, expected 2".
    public var message: String

    public init(pointer: String, message: String) {
        self.pointer = pointer
        self.message = message
    }

    /// `{"pointer":…,"message":…}`.
    public var jsonValue: JSONValue {
        .object(JSONObject([("pointer", .string(pointer)), ("message", .string(message))]))
    }

    /// Reads `{"pointer":…,"message":…}`; missing members read as empty strings.
    public init?(_ value: JSONValue) {
        guard case .object(let object) = value else { return nil }
        var pointer = "", message = ""
        if case .string(let p)? = object["pointer"] { pointer = p }
        if case .string(let m)? = object["message"] { message = m }
        self.init(pointer: pointer, message: message)
    }
}

/// JSON Pointer reference tokens (RFC 6901).
public enum JSONPointerToken {
    /// `~` → `~0`, `/` → `~1`.
    public static func escape(_ token: String) -> String {
        guard token.utf8.contains(where: { $0 == UInt8(ascii: "~") || $0 == UInt8(ascii: "/") }) else { return token }
        var escaped = ""
        for ch in token {
            switch ch {
            case "~": escaped += "~0"
            case "/": escaped += "~1"
            default: escaped.append(ch)
            }
        }
        return escaped
    }
}
