/// The writer's options, for documents people read (the OpenAPI document, service answers, problems) rather than
/// matrices: indentation, and integral numbers without a fraction. `write(_:into:)` is `write(_:options: .compact,
/// into:)` on the fast path.
extension JSONWriter {
    public struct Options: Sendable {
        /// Spaces per nesting level, with `": "` between key and value and each member on its own line; nil: compact.
        public var indent: Int?
        /// A computed integral double under 10^15 in magnitude is written as an integer (`3`, as JSON Schema and
        /// OpenAPI documents write counts); otherwise as everywhere else (`3.0`). A number parsed from text always
        /// keeps its literal.
        public var integralNumbersAsIntegers: Bool

        public init(indent: Int? = nil, integralNumbersAsIntegers: Bool = false) {
            self.indent = indent
            self.integralNumbersAsIntegers = integralNumbersAsIntegers
        }

        /// The engines' form: compact, `3.0`.
        public static let compact = Options()
        /// Compact, counts as integers: the gateway's own answers (`"queued":0`).
        public static let document = Options(integralNumbersAsIntegers: true)
        /// Two-space indentation, counts as integers: the OpenAPI document.
        public static let pretty = Options(indent: 2, integralNumbersAsIntegers: true)
    }

    /// `value` appended to `buffer` as `options` say.
    public static func write(_ value: JSONValue, options: Options, into buffer: inout [UInt8]) {
        if options.indent == nil, !options.integralNumbersAsIntegers {
            write(value, into: &buffer)
            return
        }
        writeValue(value, options: options, level: 0, into: &buffer)
    }

    /// `value` as text, as `options` say; `pretty` ends with a newline, like a file.
    public static func bytes(_ value: JSONValue, options: Options) -> [UInt8] {
        var buffer: [UInt8] = []
        write(value, options: options, into: &buffer)
        if options.indent != nil { buffer.append(0x0A) }
        return buffer
    }

    /// `value` as a `String`, as `options` say.
    public static func string(_ value: JSONValue, options: Options) -> String {
        String(decoding: bytes(value, options: options), as: UTF8.self)
    }

    private static func newline(_ buffer: inout [UInt8], _ options: Options, _ level: Int) {
        guard let indent = options.indent else { return }
        buffer.append(0x0A)
        buffer.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent * level))
    }

    private static func writeNumber(_ value: Double, options: Options, into buffer: inout [UInt8]) {
        if options.integralNumbersAsIntegers, value.isFinite, value == value.rounded(.towardZero), abs(value) < 1e15 {
            buffer.append(contentsOf: String(Int64(value)).utf8)
        } else {
            writeDouble(value, into: &buffer)
        }
    }

    private static func writeValue(_ value: JSONValue, options: Options, level: Int, into buffer: inout [UInt8]) {
        switch value {
        case .null, .bool, .string:
            writeValue(value, into: &buffer)
        case .number(let n):
            if let literal = n.literal, n.value.isFinite {
                buffer.append(contentsOf: literal.utf8)
            } else {
                writeNumber(n.value, options: options, into: &buffer)
            }
        case .numbers(let values):
            buffer.append(ASCII.openBracket)
            for (i, v) in values.enumerated() {
                if i > 0 { buffer.append(ASCII.comma) }
                writeNumber(v, options: options, into: &buffer)
            }
            buffer.append(ASCII.closeBracket)
        case .rows(let rows):
            writeValue(.array(rows.rowValues), options: options, level: level, into: &buffer)
        case .array(let items):
            if items.isEmpty { appendASCII("[]", to: &buffer); return }
            buffer.append(ASCII.openBracket)
            for (i, item) in items.enumerated() {
                if i > 0 { buffer.append(ASCII.comma) }
                newline(&buffer, options, level + 1)
                writeValue(item, options: options, level: level + 1, into: &buffer)
            }
            newline(&buffer, options, level)
            buffer.append(ASCII.closeBracket)
        case .object(let object):
            if object.members.isEmpty { appendASCII("{}", to: &buffer); return }
            buffer.append(ASCII.openBrace)
            for (i, member) in object.members.enumerated() {
                if i > 0 { buffer.append(ASCII.comma) }
                newline(&buffer, options, level + 1)
                writeString(member.key, into: &buffer)
                buffer.append(ASCII.colon)
                if options.indent != nil { buffer.append(UInt8(ascii: " ")) }
                writeValue(member.value, options: options, level: level + 1, into: &buffer)
            }
            newline(&buffer, options, level)
            buffer.append(ASCII.closeBrace)
        }
    }
}
