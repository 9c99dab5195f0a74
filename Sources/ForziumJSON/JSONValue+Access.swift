/// Convenience accessors. Each returns nil when the value is not of the asked-for kind.
/// `.numbers` is treated exactly like an array of `.number`, and `.rows` like an array of `.numbers` rows, everywhere
/// here.
extension JSONValue {
    /// A JSON value holding `value` (a computed number: no literal).
    public init(_ value: Double) { self = .number(JSONNumber(value)) }
    public init(_ value: Int) { self = .number(JSONNumber(Double(value))) }
    public init(_ value: String) { self = .string(value) }
    public init(_ value: Bool) { self = .bool(value) }

    /// The member named `key` of an object (the last one if the key repeats).
    public subscript(key: String) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    /// Element `index` of an array (`.array` or `.numbers`); nil when out of range.
    public subscript(index: Int) -> JSONValue? {
        switch self {
        case .array(let items): return items.indices.contains(index) ? items[index] : nil
        case .numbers(let numbers): return numbers.indices.contains(index) ? .number(JSONNumber(numbers[index])) : nil
        case .rows(let rows): return index >= 0 && index < rows.rows ? .numbers(Array(rows.row(index))) : nil
        default: return nil
        }
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var numberValue: JSONNumber? {
        if case .number(let n) = self { return n }
        return nil
    }

    public var doubleValue: Double? {
        if case .number(let n) = self { return n.value }
        return nil
    }

    /// The number as an `Int` when it is integral and in range (`2`, `2.0`, `2e0`); nil otherwise.
    public var intValue: Int? {
        guard case .number(let n) = self else { return nil }
        return Int(exactly: n.value)
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// True for `.array`, `.numbers` and `.rows`.
    public var isArray: Bool {
        switch self {
        case .array, .numbers, .rows: return true
        default: return false
        }
    }

    /// Element count of an array (`.array` or `.numbers`).
    public var arrayCount: Int? {
        switch self {
        case .array(let items): return items.count
        case .numbers(let numbers): return numbers.count
        case .rows(let rows): return rows.rows
        default: return nil
        }
    }

    /// The elements of an array as a collection of `JSONValue`, without materialising `.numbers`.
    public var elements: JSONElements? {
        switch self {
        case .array(let items): return JSONElements(storage: .values(items))
        case .numbers(let numbers): return JSONElements(storage: .numbers(numbers))
        case .rows(let rows): return JSONElements(storage: .rows(rows))
        default: return nil
        }
    }

    /// The elements of an array as `[JSONValue]` (`.numbers` is converted).
    public var arrayValue: [JSONValue]? {
        switch self {
        case .array(let items): return items
        case .numbers(let numbers): return numbers.map { .number(JSONNumber($0)) }
        case .rows(let rows): return rows.rowValues
        default: return nil
        }
    }

    /// The elements as doubles when the value is an array of numbers only (`.numbers`, or an `.array`
    /// of `.number`s); nil otherwise. The empty array gives `[]`.
    public var doublesValue: [Double]? {
        switch self {
        case .numbers(let numbers): return numbers
        case .array(let items):
            var out: [Double] = []
            out.reserveCapacity(items.count)
            for item in items {
                guard case .number(let n) = item else { return nil }
                out.append(n.value)
            }
            return out
        default: return nil
        }
    }

    /// A short name of the JSON type, for messages: "null", "boolean", "number", "string", "array", "object".
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array, .numbers, .rows: return "array"
        case .object: return "object"
        }
    }
}

/// A random-access view of an array's elements, whichever representation holds them.
public struct JSONElements: RandomAccessCollection, Sendable {
    enum Storage: Sendable {
        case values([JSONValue])
        case numbers([Double])
        case rows(JSONNumberRows)
    }

    let storage: Storage

    public var startIndex: Int { 0 }
    public var endIndex: Int {
        switch storage {
        case .values(let items): return items.count
        case .numbers(let numbers): return numbers.count
        case .rows(let rows): return rows.rows
        }
    }

    public subscript(position: Int) -> JSONValue {
        switch storage {
        case .values(let items): return items[position]
        case .numbers(let numbers): return .number(JSONNumber(numbers[position]))
        case .rows(let rows): return .numbers(Array(rows.row(position)))
        }
    }
}

extension JSONValue: CustomStringConvertible {
    /// The compact JSON text of the value.
    public var description: String { JSONWriter.string(self) }
}

extension JSONNumber: CustomStringConvertible {
    /// The literal when there is one, else the shortest round-trip text (`null` when not finite).
    public var description: String {
        if let literal, value.isFinite { return literal }
        var bytes: [UInt8] = []
        JSONWriter.writeDouble(value, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}
