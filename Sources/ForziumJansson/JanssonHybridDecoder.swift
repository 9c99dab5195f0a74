import CJansson
import ForziumJSON
import ForziumRPC

#if canImport(Glibc)
import Glibc
#endif

/// The SIMD engine's message decoder: libjansson for short lines, ForziumJSON's parser for long ones.
///
/// jansson builds one heap node per value, so it is only used below `threshold` bytes (small requests, the
/// JSON-RPC envelope and its params); matrix-sized lines go straight to `JSONParser`, whose number fast path
/// fills contiguous `[Double]` storage (see bench/ for the measured comparison that set the default).
///
/// The result is always the value `JSONParser` would produce:
/// - arrays whose elements are all numbers become `.numbers`; objects keep input order;
/// - scalar numbers carry their token text in `JSONNumber.literal` (recovered from the input bytes, since
///   jansson keeps only the value), so ids echo exactly; an integer `-0` keeps its sign;
/// - whatever jansson rejects — Python's `NaN`/`Infinity` tokens, integers beyond 64 bits, reals that
///   overflow, duplicate object keys (ForziumJSON keeps them all) — is parsed again by `JSONParser`, and
///   nesting deeper than the parser's `maxDepth` is handed to it too (it rejects it).
/// - A line with a raw NUL byte never reaches jansson (its lexer takes a 0 byte for the end of its unget buffer and
///   skipped a NUL right after a number or literal); no valid JSON contains one, so JSONParser rejects it.
/// - A rejected line gets JSONParser's error (offset, line, column), the same as `forzium-engine` reports.
///
/// So the verdict and the value are always JSONParser's; jansson only does the work for lines it accepts.
/// `forzium-engine-simd` uses this decoder only with `--json-decoder hybrid` (a documented comparison); by default
/// both engines decode requests with JSONParser.
public struct JanssonHybridDecoder: MessageDecoder {
    /// Lines shorter than this many bytes go through jansson.
    public let threshold: Int
    /// The parser for long lines and for what jansson rejects.
    public let parser: JSONParser

    /// Default threshold. Measured with `forzium-bench json-decoders` (2026-11-24, this machine): jansson took
    /// 0.8 µs on a 47-byte `engine.info` line (JSONParser 0.17 µs), 2.0 µs on a 96-byte 2×2 request (0.45 µs),
    /// 10 µs at 727 bytes (1.6 µs) and 9–20× JSONParser's time on matrix lines. jansson is never faster, so it is
    /// kept to lines where its extra cost stays within a few microseconds — small requests and envelopes.
    public static let defaultThreshold = 512

    /// Flags for `json_loadb`: any top-level value, `\u0000` in strings allowed (valid JSON), and duplicate
    /// keys rejected so that they go to JSONParser, which keeps every member.
    static let loadFlags = Int(JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES)

    public init(
        threshold: Int = JanssonHybridDecoder.defaultThreshold,
        parser: JSONParser = JSONParser(options: JSONParserDecoder.defaultOptions)
    ) {
        self.threshold = threshold
        self.parser = parser
    }

    /// A line read while it arrives is long (far over `threshold`): JSONParser's, as it streams in.
    public func decode(window: any JSONByteWindow) throws(JSONParseError) -> JSONValue? {
        try parser.parse(window: window)
    }

    public func decode(_ line: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        if line.count >= threshold || line.isEmpty || memchr(line.baseAddress!, 0, line.count) != nil {
            return try parser.parse(line)
        }
        switch Self.janssonDecode(line, maxDepth: parser.options.maxDepth) {
        case .value(let value):
            return value
        case .handOver, .rejected:
            // jansson refused it (or it is too deep): the extensions (NaN tokens, big numbers, duplicate keys) are
            // JSONParser's, and so is the error when it refuses the line too.
            return try parser.parse(line)
        }
    }

    /// What jansson made of a line.
    public enum JanssonOutcome: Sendable {
        case value(JSONValue)
        /// Valid for jansson but deeper than `maxDepth`: JSONParser decides (and rejects it).
        case handOver
        /// jansson's error, positions from `json_error_t`.
        case rejected(JSONParseError)
    }

    /// Parses `line` with jansson alone and converts the result (used by `decode` and the benchmarks).
    public static func janssonDecode(_ line: UnsafeRawBufferPointer, maxDepth: Int = 512) -> JanssonOutcome {
        var error = json_error_t()
        let base = line.baseAddress?.assumingMemoryBound(to: CChar.self)
        guard let root = json_loadb(base, line.count, loadFlags, &error) else {
            return .rejected(parseError(from: &error, lineLength: line.count))
        }
        defer { json_decref(root) }
        var converter = Converter(bytes: line, maxDepth: maxDepth)
        guard let value = converter.convert(root, depth: 0) else { return .handOver }
        return .value(value)
    }

    static func parseError(from error: inout json_error_t, lineLength: Int) -> JSONParseError {
        let text = withUnsafeBytes(of: &error.text) { raw -> String in
            let bytes = raw.bindMemory(to: UInt8.self)
            let end = bytes.firstIndex(of: 0) ?? bytes.count
            return String(decoding: bytes[..<end], as: UTF8.self)
        }
        // jansson's position counts the bytes read when it stopped, i.e. one past the offending byte.
        let offset = min(max(0, Int(error.position) - 1), lineLength)
        return JSONParseError(offset: offset, line: max(1, Int(error.line)), column: max(1, Int(error.column)), message: text)
    }
}

/// json_t → JSONValue, walking the tree in document order.
struct Converter {
    let bytes: UnsafeRawBufferPointer
    let maxDepth: Int
    /// Number tokens of the input in document order, found on first need (only scalars and integer zeros
    /// need their text).
    var tokens: [Range<Int>]? = nil
    /// Index of the next number token in document order.
    var nextToken = 0

    init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    mutating func token(_ index: Int) -> String {
        if tokens == nil { tokens = Self.numberTokens(bytes) }
        let range = tokens![index]
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    /// Ranges of every number token outside strings. The input is valid JSON (jansson accepted it).
    static func numberTokens(_ bytes: UnsafeRawBufferPointer) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var i = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                i += 1
                while i < n && bytes[i] != UInt8(ascii: "\"") {
                    i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1
                }
                i += 1
            } else if b == UInt8(ascii: "-") || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) {
                let start = i
                i += 1
                while i < n {
                    let c = bytes[i]
                    let isNumberByte = (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: ".")
                        || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") || c == UInt8(ascii: "+") || c == UInt8(ascii: "-")
                    if !isNumberByte { break }
                    i += 1
                }
                result.append(start ..< i)
            } else {
                i += 1
            }
        }
        return result
    }

    /// nil when nesting exceeds `maxDepth` (JSONParser then reports it).
    mutating func convert(_ node: UnsafeMutablePointer<json_t>, depth: Int) -> JSONValue? {
        switch node.pointee.type {
        case JSON_OBJECT:
            if depth >= maxDepth { return nil }
            var members: [(key: String, value: JSONValue)] = []
            members.reserveCapacity(json_object_size(node))
            var iterator = json_object_iter(node)
            while let it = iterator {
                let keyPointer = json_object_iter_key(it)!
                let keyLength = json_object_iter_key_len(it)
                let key = String(decoding: UnsafeRawBufferPointer(start: keyPointer, count: keyLength), as: UTF8.self)
                guard let value = convert(json_object_iter_value(it), depth: depth + 1) else { return nil }
                members.append((key, value))
                iterator = json_object_iter_next(node, it)
            }
            return .object(JSONObject(members))
        case JSON_ARRAY:
            if depth >= maxDepth { return nil }
            let count = json_array_size(node)
            var allNumbers = count > 0
            for index in 0 ..< count {
                let type = json_array_get(node, index).pointee.type
                if type != JSON_INTEGER && type != JSON_REAL { allNumbers = false; break }
            }
            if allNumbers {
                var values = [Double](repeating: 0, count: count)
                for index in 0 ..< count {
                    let element = json_array_get(node, index)!
                    if element.pointee.type == JSON_REAL {
                        values[index] = json_real_value(element)
                    } else {
                        let integer = json_integer_value(element)
                        // "-0" is the only integer token jansson cannot give back the sign of.
                        values[index] = integer == 0 && token(nextToken).hasPrefix("-") ? -0.0 : Double(integer)
                    }
                    nextToken += 1
                }
                return .numbers(values)
            }
            var elements: [JSONValue] = []
            elements.reserveCapacity(count)
            for index in 0 ..< count {
                guard let element = convert(json_array_get(node, index), depth: depth + 1) else { return nil }
                elements.append(element)
            }
            return .array(elements)
        case JSON_STRING:
            let length = json_string_length(node)
            let text = String(decoding: UnsafeRawBufferPointer(start: json_string_value(node), count: length), as: UTF8.self)
            return .string(text)
        case JSON_INTEGER:
            let integer = json_integer_value(node)
            let literal = integer == 0 ? token(nextToken) : String(integer)
            nextToken += 1
            return .number(JSONNumber(literal.hasPrefix("-") && integer == 0 ? -0.0 : Double(integer), literal: literal))
        case JSON_REAL:
            let literal = token(nextToken)
            nextToken += 1
            return .number(JSONNumber(json_real_value(node), literal: literal))
        case JSON_TRUE:
            return .bool(true)
        case JSON_FALSE:
            return .bool(false)
        default:
            return .null
        }
    }
}
