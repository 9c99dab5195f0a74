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
    /// An array of one or more rows of equal, non-zero length, each row an array of numbers only, held in one
    /// contiguous row-major buffer (`JSONParser.Options.contiguousRows`): a matrix read straight into the storage a
    /// kernel uses. The same JSON value as `.array` of `.numbers` rows, and equal to it.
    case rows(JSONNumberRows)
    /// An object; member order is kept as written.
    case object(JSONObject)
}

/// Equal-length rows of numbers in one row-major buffer (see `JSONValue.rows`).
public struct JSONNumberRows: Sendable {
    /// Number of rows (at least 1).
    public let rows: Int
    /// Numbers per row (at least 1).
    public let cols: Int
    /// `rows × cols` numbers, row after row.
    public let storage: [Double]

    public init(rows: Int, cols: Int, storage: [Double]) {
        precondition(rows >= 1 && cols >= 1 && storage.count == rows * cols, "JSONNumberRows: storage must hold rows × cols numbers")
        self.rows = rows
        self.cols = cols
        self.storage = storage
    }

    /// The numbers of row `index`.
    public func row(_ index: Int) -> ArraySlice<Double> {
        storage[(index * cols) ..< ((index + 1) * cols)]
    }

    /// The rows as separate `.numbers` values (copies them).
    public var rowValues: [JSONValue] {
        (0 ..< rows).map { .numbers(Array(row($0))) }
    }
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
