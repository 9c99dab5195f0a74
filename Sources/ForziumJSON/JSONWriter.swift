/// Writes compact JSON (no whitespace) straight into a byte buffer.
///
/// Output is always strict RFC 8259 JSON in valid UTF-8:
/// - Numbers: a non-finite value is written as `null` (as JavaScript, serde_json and orjson do). A number
///   parsed from text that still carries its `literal` is written as that literal (so a JSON-RPC id `1`
///   comes back as `1`); every other double is written as the shortest text that round-trips, formatted
///   exactly like Swift's `Double.description` (`2.0`, `0.1`, `1e-05`, `1.5e+300`; see `DoubleFormatting`).
/// - Strings: `"` and `\` are escaped as `\"` and `\\`; the control characters U+0000…U+001F as `\b`, `\f`,
///   `\n`, `\r`, `\t` or `\u00XX`; everything else (including `/` and non-ASCII) is written as UTF-8.
/// - Objects keep member order (duplicates included); `.numbers` and `.rows` are written like any array.
public enum JSONWriter {
    public static func write(_ value: JSONValue, into buffer: inout [UInt8]) {
        // One geometric reservation up front instead of growth steps while writing.
        let needed = buffer.count + estimatedLength(value)
        if buffer.capacity < needed {
            buffer.reserveCapacity(Swift.max(needed, 2 * buffer.capacity))
        }
        writeValue(value, into: &buffer)
    }

    /// A cheap estimate of the written length (doubles average about 19 bytes).
    static func estimatedLength(_ value: JSONValue) -> Int {
        switch value {
        case .null, .bool: return 5
        case .number: return 20
        case .string(let s): return s.utf8.count + 2
        case .numbers(let numbers): return numbers.count * 20 + 2
        case .rows(let rows): return rows.storage.count * 20 + rows.rows * 3 + 2
        case .array(let items): return items.reduce(2) { $0 + estimatedLength($1) + 1 }
        case .object(let object): return object.members.reduce(2) { $0 + $1.key.utf8.count + 4 + estimatedLength($1.value) }
        }
    }

    static func writeValue(_ value: JSONValue, into buffer: inout [UInt8]) {
        switch value {
        case .null:
            appendASCII("null", to: &buffer)
        case .bool(let b):
            appendASCII(b ? "true" : "false", to: &buffer)
        case .number(let n):
            if let literal = n.literal, n.value.isFinite {
                var literal = literal
                literal.withUTF8 { buffer.append(contentsOf: $0) }
            } else {
                writeDouble(n.value, into: &buffer)
            }
        case .string(let s):
            writeString(s, into: &buffer)
        case .array(let items):
            buffer.append(ASCII.openBracket)
            var first = true
            for item in items {
                if !first { buffer.append(ASCII.comma) }
                first = false
                writeValue(item, into: &buffer)
            }
            buffer.append(ASCII.closeBracket)
        case .numbers(let numbers):
            numbers.withUnsafeBufferPointer { writeNumberArray($0, into: &buffer) }
        case .rows(let rows):
            buffer.append(ASCII.openBracket)
            rows.storage.withUnsafeBufferPointer { all in
                for index in 0 ..< rows.rows {
                    if index > 0 { buffer.append(ASCII.comma) }
                    writeNumberArray(UnsafeBufferPointer(rebasing: all[(index * rows.cols) ..< ((index + 1) * rows.cols)]), into: &buffer)
                }
            }
            buffer.append(ASCII.closeBracket)
        case .object(let object):
            buffer.append(ASCII.openBrace)
            var first = true
            for member in object.members {
                if !first { buffer.append(ASCII.comma) }
                first = false
                writeString(member.key, into: &buffer)
                buffer.append(ASCII.colon)
                writeValue(member.value, into: &buffer)
            }
            buffer.append(ASCII.closeBrace)
        }
    }

    /// Shortest round-trip text of `value`; `null` when not finite.
    ///
    /// The text is exactly Swift's `value.description` (checked against it for 10^7 random doubles): the shortest
    /// digits that read back as the same double (closest to it on ties), in plain decimal with a fractional
    /// part when 1e-4 <= |value| <= 2^53 (`2.0`, `0.0001`, `-0.0`, `9007199254740992.0`), otherwise in
    /// scientific form with a signed, at least two-digit exponent (`1e-05`, `1.5e+300`, `5e-324`). Python's
    /// `float()`, JavaScript's `JSON.parse` and this parser all read it back bit-exactly.
    public static func writeDouble(_ value: Double, into buffer: inout [UInt8]) {
        guard value.isFinite else {
            appendASCII("null", to: &buffer)
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: DoubleFormatting.maxLength) { scratch in
            let base = scratch.baseAddress!
            let n = DoubleFormatting.write(value, to: base)
            buffer.append(contentsOf: UnsafeBufferPointer(start: base, count: n))
        }
    }

    public static func bytes(_ value: JSONValue) -> [UInt8] {
        var buffer: [UInt8] = []
        write(value, into: &buffer)
        return buffer
    }

    public static func string(_ value: JSONValue) -> String {
        String(decoding: bytes(value), as: UTF8.self)
    }

    /// The decimal text of `n` (as a JSON integer), lent to `body` from the stack: no `String` or array between.
    @inlinable
    public static func withDecimal<R>(_ n: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var at = digits.count
            var rest = n.magnitude
            repeat {
                at -= 1
                digits[at] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            } while rest > 0
            if n < 0 {
                at -= 1
                digits[at] = UInt8(ascii: "-")
            }
            return try body(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: digits[at...])))
        }
    }

    /// Whether a byte of a string's UTF-8 must be escaped in a JSON string literal (control characters, `"`, `\`);
    /// every other byte is written as it is.
    @inlinable
    public static func needsEscape(_ b: UInt8) -> Bool {
        b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\")
    }

    /// Writes `s` as a JSON string literal (quotes included).
    public static func writeString(_ s: String, into buffer: inout [UInt8]) {
        var s = s
        s.withUTF8 { utf8 in
            buffer.append(ASCII.quote)
            var runStart = 0
            var i = 0
            let count = utf8.count
            while i < count {
                let b = utf8[i]
                if !needsEscape(b) {
                    i += 1
                    continue
                }
                if runStart < i { buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i])) }
                appendEscape(b, to: &buffer)
                i += 1
                runStart = i
            }
            if runStart < count { buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<count])) }
            buffer.append(ASCII.quote)
        }
    }

    static func appendEscape(_ b: UInt8, to buffer: inout [UInt8]) {
        buffer.append(ASCII.backslash)
        switch b {
        case ASCII.quote: buffer.append(ASCII.quote)
        case ASCII.backslash: buffer.append(ASCII.backslash)
        case 0x08: buffer.append(0x62)  // b
        case 0x0C: buffer.append(0x66)  // f
        case 0x0A: buffer.append(0x6E)  // n
        case 0x0D: buffer.append(0x72)  // r
        case 0x09: buffer.append(0x74)  // t
        default:
            let hex: [UInt8] = Array("0123456789abcdef".utf8)
            buffer.append(0x75)  // u
            buffer.append(ASCII.zero)
            buffer.append(ASCII.zero)
            buffer.append(hex[Int(b >> 4)])
            buffer.append(hex[Int(b & 15)])
        }
    }

    @inline(__always)
    static func appendASCII(_ text: StaticString, to buffer: inout [UInt8]) {
        buffer.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Bytes formatted on the stack between appends to the caller's buffer.
    static let chunkSize = 4096

    /// `[d,d,...]` for a run of doubles, formatted in stack chunks and appended a chunk at a time.
    static func writeNumberArray(_ numbers: UnsafeBufferPointer<Double>, into buffer: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: chunkSize) { chunk in
            let base = chunk.baseAddress!
            var used = 0
            base[used] = ASCII.openBracket
            used += 1
            for (i, value) in numbers.enumerated() {
                if used > chunkSize - DoubleFormatting.maxLength - 2 {
                    buffer.append(contentsOf: UnsafeBufferPointer(start: base, count: used))
                    used = 0
                }
                if i != 0 {
                    base[used] = ASCII.comma
                    used += 1
                }
                used += formatNumber(value, to: base + used)
            }
            base[used] = ASCII.closeBracket
            used += 1
            buffer.append(contentsOf: UnsafeBufferPointer(start: base, count: used))
        }
    }

    /// A double or `null` at `out` (room for `DoubleFormatting.maxLength` bytes).
    @inline(__always)
    static func formatNumber(_ value: Double, to out: UnsafeMutablePointer<UInt8>) -> Int {
        if value.isFinite { return DoubleFormatting.write(value, to: out) }
        out[0] = 0x6E
        out[1] = 0x75
        out[2] = 0x6C
        out[3] = 0x6C
        return 4
    }
}
