import ForziumJSON

/// Turns one protocol line into a JSON value. The engines plug in their own (the SIMD engine's is jansson-backed);
/// whatever the implementation, invalid UTF-8 and malformed JSON must throw, and scalar numbers must keep their
/// literal (`JSONNumber.literal`) so ids are echoed exactly as sent.
public protocol MessageDecoder: Sendable {
    func decode(_ line: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue
    /// The same, telling `release` now and then an offset below which `line` will not be read again (so its pages can
    /// be handed back while the rest is decoded). The default never calls it.
    func decode(_ line: UnsafeRawBufferPointer, release: @escaping (Int) -> Void) throws(JSONParseError) -> JSONValue
    /// Decodes a line while it arrives (`LineFrame.partial`): same value and errors as `decode(_:)` over the whole
    /// line; nil when the line is blank (only spaces, tabs and CRs). The default reads the whole line into the window
    /// first, then decodes it.
    func decode(window: any JSONByteWindow) throws(JSONParseError) -> JSONValue?
}

extension MessageDecoder {
    public func decode(_ line: UnsafeRawBufferPointer, release: @escaping (Int) -> Void) throws(JSONParseError) -> JSONValue {
        try decode(line)
    }

    public func decode(window: any JSONByteWindow) throws(JSONParseError) -> JSONValue? {
        while !window.isComplete { window.advance(keepFrom: 0, target: Int.max) }
        let line = UnsafeRawBufferPointer(start: window.bytes, count: window.available)
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return nil }
        return try decode(line)
    }
}

/// The default decoder: ForziumJSON's strict parser. By default it reads matrices (arrays of equal-length rows of
/// numbers) into one contiguous buffer each (`JSONParser.Options.contiguousRows`), the storage the kernels then use.
public struct JSONParserDecoder: MessageDecoder {
    /// The parser used for every line.
    public let parser: JSONParser

    /// The default parser's options: `contiguousRows` on.
    public static var defaultOptions: JSONParser.Options {
        var options = JSONParser.Options()
        options.contiguousRows = true
        return options
    }

    public init(parser: JSONParser = JSONParser(options: JSONParserDecoder.defaultOptions)) {
        self.parser = parser
    }

    /// The default options, with a matrix's rows read by `threads` threads (`JSONParser.Options.threads`).
    public init(threads: Int) {
        var options = Self.defaultOptions
        options.threads = threads
        self.init(parser: JSONParser(options: options))
    }

    public func decode(window: any JSONByteWindow) throws(JSONParseError) -> JSONValue? {
        try parser.parse(window: window)
    }

    public func decode(_ line: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        try parser.parse(line)
    }

    public func decode(_ line: UnsafeRawBufferPointer, release: @escaping (Int) -> Void) throws(JSONParseError) -> JSONValue {
        try parser.parse(line, release: release)
    }
}
