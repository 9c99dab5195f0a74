/// A JSON document in memory.
///
/// Arrays whose elements are all numbers are held as `.numbers` — one contiguous `[Double]`
/// rather than one enum case per element — because matrices are what Forzium moves around.
/// `.numbers([1, 2])` and `.array([.number(1), .number(2)])` are the same JSON value and compare equal.
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    /// A general array.
    case array([JSONValue])
    /// An array of numbers only (the parser's fast path; never empty when produced by the parser).
    case numbers([Double])
    /// An object; member order is kept as written.
    case object(JSONObject)
}

/// A JSON number: its value, and for scalars read from text the literal as written
/// (so a JSON-RPC id `1` is echoed as `1`, not `1.0`).
public struct JSONNumber: Sendable {
    public var value: Double
    /// The token as it appeared in the input, when it came from parsed text; `nil` for computed numbers.
    public var literal: String?

    public init(_ value: Double, literal: String? = nil) {
        self.value = value
        self.literal = literal
    }
}

/// A JSON object with members kept in input order. Lookups by key return the last member with that key.
public struct JSONObject: Sendable {
    public var members: [(key: String, value: JSONValue)]

    public init(_ members: [(key: String, value: JSONValue)] = []) {
        self.members = members
    }

    public subscript(key: String) -> JSONValue? {
        get {
            for member in members.reversed() where member.key == key { return member.value }
            return nil
        }
        set {
            members.removeAll { $0.key == key }
            if let newValue { members.append((key, newValue)) }
        }
    }

    public var keys: [String] { members.map(\.key) }
    public var count: Int { members.count }
}
