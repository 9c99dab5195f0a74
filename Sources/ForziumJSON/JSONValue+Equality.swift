/// JSON equality: the data model, not the spelling.
///
/// - Numbers compare by value (`1`, `1.0` and `1e0` are equal; `-0.0 == 0.0`; `NaN` equals `NaN` so that
///   equality stays reflexive); the `literal` is ignored.
/// - `.numbers([1, 2]) == .array([.number(1), .number(2)])`: the two array representations are one JSON value.
/// - Objects compare as unordered sets of members; with duplicate keys, the last member wins (as lookups do).
extension JSONNumber: Equatable, Hashable {
    public static func == (a: JSONNumber, b: JSONNumber) -> Bool {
        JSONValue.sameNumber(a.value, b.value)
    }

    public func hash(into hasher: inout Hasher) {
        JSONValue.hashNumber(value, into: &hasher)
    }
}

extension JSONValue: Equatable, Hashable {
    @inline(__always)
    static func sameNumber(_ a: Double, _ b: Double) -> Bool {
        a == b || (a.isNaN && b.isNaN)
    }

    static func hashNumber(_ d: Double, into hasher: inout Hasher) {
        if d.isNaN {
            hasher.combine(UInt64(0x7FF8_0000_0000_0000))
        } else if d == 0 {
            hasher.combine(UInt64(0))
        } else {
            hasher.combine(d.bitPattern)
        }
    }

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.number(let x), .number(let y)): return sameNumber(x.value, y.value)
        case (.string(let x), .string(let y)): return x == y
        case (.object(let x), .object(let y)): return x == y
        case (.numbers(let x), .numbers(let y)):
            guard x.count == y.count else { return false }
            for i in x.indices where !sameNumber(x[i], y[i]) { return false }
            return true
        case (.array(let x), .array(let y)):
            return x == y
        case (.rows(let x), .rows(let y)):
            guard x.rows == y.rows, x.cols == y.cols else { return false }
            for i in x.storage.indices where !sameNumber(x.storage[i], y.storage[i]) { return false }
            return true
        case (.rows(let x), .array(let y)), (.array(let y), .rows(let x)):
            guard x.rows == y.count else { return false }
            for (index, item) in y.enumerated() {
                switch item {
                case .numbers(let row):
                    guard row.count == x.cols else { return false }
                    for (a, b) in zip(x.row(index), row) where !sameNumber(a, b) { return false }
                case .array, .rows:
                    guard JSONValue.numbers(Array(x.row(index))) == item else { return false }
                default:
                    return false
                }
            }
            return true
        case (.numbers(let x), .array(let y)), (.array(let y), .numbers(let x)):
            guard x.count == y.count else { return false }
            for i in x.indices {
                guard case .number(let n) = y[i], sameNumber(x[i], n.value) else { return false }
            }
            return true
        default:
            return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null:
            hasher.combine(0 as UInt8)
        case .bool(let b):
            hasher.combine(1 as UInt8)
            hasher.combine(b)
        case .number(let n):
            hasher.combine(2 as UInt8)
            JSONValue.hashNumber(n.value, into: &hasher)
        case .string(let s):
            hasher.combine(3 as UInt8)
            hasher.combine(s)
        case .array(let items):
            hasher.combine(4 as UInt8)
            hasher.combine(items.count)
            for item in items { item.hash(into: &hasher) }
        case .numbers(let numbers):
            // Must hash exactly like the equal `.array` of `.number`s.
            hasher.combine(4 as UInt8)
            hasher.combine(numbers.count)
            for d in numbers {
                hasher.combine(2 as UInt8)
                JSONValue.hashNumber(d, into: &hasher)
            }
        case .rows(let rows):
            // Must hash exactly like the equal `.array` of `.numbers` rows.
            hasher.combine(4 as UInt8)
            hasher.combine(rows.rows)
            for index in 0 ..< rows.rows {
                hasher.combine(4 as UInt8)
                hasher.combine(rows.cols)
                for d in rows.row(index) {
                    hasher.combine(2 as UInt8)
                    JSONValue.hashNumber(d, into: &hasher)
                }
            }
        case .object(let object):
            hasher.combine(6 as UInt8)
            object.hash(into: &hasher)
        }
    }
}

extension JSONObject: Equatable, Hashable {
    /// The members that lookups see: the last one for each key, in order of first appearance.
    var effectiveMembers: [String: JSONValue] {
        var map: [String: JSONValue] = [:]
        map.reserveCapacity(members.count)
        for member in members { map[member.key] = member.value }
        return map
    }

    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        a.effectiveMembers == b.effectiveMembers
    }

    public func hash(into hasher: inout Hasher) {
        // Order-independent: a commutative combination of per-member hashes.
        let map = effectiveMembers
        var combined: UInt64 = 0
        for (key, value) in map {
            var memberHasher = Hasher()
            memberHasher.combine(key)
            memberHasher.combine(value)
            combined &+= UInt64(bitPattern: Int64(memberHasher.finalize()))
        }
        hasher.combine(map.count)
        hasher.combine(combined)
    }
}
