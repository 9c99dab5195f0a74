import ForziumJSON

/// JSON Pointer (RFC 6901) tokens.
enum JSONPointer {
    static func escape(_ token: String) -> String { JSONPointerToken.escape(token) }

    static func unescape(_ token: Substring) -> String {
        guard token.utf8.contains(UInt8(ascii: "~")) else { return String(token) }
        return String(token).replacingAll("~1", with: "/").replacingAll("~0", with: "~")
    }

    /// The tokens of `pointer` ("" → none); nil when it does not start with "/".
    static func tokens(_ pointer: String) -> [String]? {
        if pointer.isEmpty { return [] }
        guard pointer.hasPrefix("/") else { return nil }
        return pointer.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map(unescape)
    }

    /// The value `pointer` designates inside `root`.
    static func resolve(_ pointer: String, in root: JSONValue) -> JSONValue? {
        guard let tokens = tokens(pointer) else { return nil }
        var current = root
        for token in tokens {
            switch current {
            case .object(let object):
                guard let next = object[token] else { return nil }
                current = next
            case .array(let items):
                guard let index = arrayIndex(token), index < items.count else { return nil }
                current = items[index]
            case .numbers(let values):
                guard let index = arrayIndex(token), index < values.count else { return nil }
                current = .number(JSONNumber(values[index]))
            case .rows(let rows):
                guard let index = arrayIndex(token), index < rows.rows else { return nil }
                current = .numbers(Array(rows.row(index)))
            default:
                return nil
            }
        }
        return current
    }

    private static func arrayIndex(_ token: String) -> Int? {
        guard !token.isEmpty, token.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              token == "0" || !token.hasPrefix("0") else { return nil }
        return Int(token)
    }
}

extension String {
    /// Replaces every occurrence of `target` (no Foundation needed).
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}

/// Array elements viewed uniformly whether the value is `.array` or `.numbers`.
struct ArrayView {
    let general: [JSONValue]?
    let numbers: [Double]?

    init?(_ value: JSONValue) {
        switch value {
        case .array(let items): general = items; numbers = nil
        case .numbers(let values): general = nil; numbers = values
        case .rows(let rows): general = rows.rowValues; numbers = nil
        default: return nil
        }
    }

    var count: Int { general?.count ?? numbers!.count }

    subscript(index: Int) -> JSONValue {
        if let general { return general[index] }
        return .number(JSONNumber(numbers![index]))
    }
}

enum JSONKind: String {
    case null, boolean, number, string, array, object
}

extension JSONValue {
    var schemaKind: JSONKind {
        switch self {
        case .null: .null
        case .bool: .boolean
        case .number: .number
        case .string: .string
        case .array, .numbers, .rows: .array
        case .object: .object
        }
    }

    /// Equality as JSON Schema defines it: numbers by value, arrays in order, objects regardless of member order.
    func schemaEquals(_ other: JSONValue) -> Bool {
        switch (self, other) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.number(a), .number(b)): return a.value == b.value
        case let (.string(a), .string(b)): return sameCodePoints(a, b)
        case let (.numbers(a), .numbers(b)): return a == b
        case (.array, .array), (.array, .numbers), (.numbers, .array), (.rows, .array), (.array, .rows), (.rows, .rows),
             (.rows, .numbers), (.numbers, .rows):
            let a = ArrayView(self)!, b = ArrayView(other)!
            guard a.count == b.count else { return false }
            for index in 0..<a.count where !a[index].schemaEquals(b[index]) { return false }
            return true
        case let (.object(a), .object(b)):
            let left = a.uniqueMembers, right = b.uniqueMembers
            guard left.count == right.count else { return false }
            for (key, value) in left {
                guard let otherValue = right[key], value.schemaEquals(otherValue) else { return false }
            }
            return true
        default:
            return false
        }
    }

    /// Short JSON text for messages (long values are cut).
    func briefDescription(limit: Int = 80) -> String {
        var out = ""
        appendBrief(to: &out, limit: limit)
        if out.count > limit { return String(out.prefix(limit)) + "…" }
        return out
    }

    private func appendBrief(to out: inout String, limit: Int) {
        if out.utf8.count > limit { return }
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n.literal ?? formatNumber(n.value)
        case .string(let s): out += quoted(s)
        case .array(let items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += "," }
                item.appendBrief(to: &out, limit: limit)
                if out.utf8.count > limit { return }
            }
            out += "]"
        case .numbers(let values):
            out += "["
            for (index, value) in values.enumerated() {
                if index > 0 { out += "," }
                out += formatNumber(value)
                if out.utf8.count > limit { return }
            }
            out += "]"
        case .rows(let rows):
            JSONValue.array(rows.rowValues).appendBrief(to: &out, limit: limit)
        case .object(let object):
            out += "{"
            for (index, member) in object.members.enumerated() {
                if index > 0 { out += "," }
                out += quoted(member.key) + ":"
                member.value.appendBrief(to: &out, limit: limit)
                if out.utf8.count > limit { return }
            }
            out += "}"
        }
    }
}

extension JSONObject {
    /// Whether a member has this name (compares names only; no member value is copied).
    @inline(__always)
    func hasMember(_ name: String) -> Bool {
        members.withUnsafeBufferPointer { buffer in buffer.contains { sameCodePoints($0.key, name) } }
    }

    /// The value of the last member with this name.
    @inline(__always)
    func member(named name: String) -> JSONValue? {
        members.withUnsafeBufferPointer { buffer in
            var i = buffer.count - 1
            while i >= 0 {
                if sameCodePoints(buffer[i].key, name) { return buffer[i].value }
                i -= 1
            }
            return nil
        }
    }

    /// Members as a dictionary; a repeated key keeps its last value, like the subscript.
    var uniqueMembers: [String: JSONValue] {
        var result: [String: JSONValue] = [:]
        result.reserveCapacity(members.count)
        for member in members { result[member.key] = member.value }
        return result
    }
}

/// String equality as JSON means it: the same code points, i.e. the same UTF-8 bytes. (Swift's `==` is canonical
/// equivalence, so "é" and "e" + U+0301 would compare equal.)
@inline(__always)
func sameCodePoints(_ a: String, _ b: String) -> Bool {
    // Native strings hold their UTF-8 contiguously: compare the bytes (equal code points ⇔ equal UTF-8).
    let contiguous = a.utf8.withContiguousStorageIfAvailable { x in
        b.utf8.withContiguousStorageIfAvailable { y -> Bool in
            guard x.count == y.count else { return false }
            for i in 0..<x.count where x[i] != y[i] { return false }
            return true
        }
    }
    if let contiguous, let equal = contiguous { return equal }
    return a.utf8.elementsEqual(b.utf8)
}

/// `3` for integral values, otherwise Swift's shortest round-trip text.
func formatNumber(_ value: Double) -> String {
    if value.isFinite, value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
    return "\(value)"
}

/// A JSON string literal for messages.
func quoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
