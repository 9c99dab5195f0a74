import ForziumJSON

/// Turns one protocol line into a JSON value. The engines plug in their own (the SIMD engine's is jansson-backed);
/// whatever the implementation, invalid UTF-8 and malformed JSON must throw, and scalar numbers must keep their
/// literal (`JSONNumber.literal`) so ids are echoed exactly as sent.
public protocol MessageDecoder: Sendable {
    func decode(_ line: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue
    /// The same, telling `release` now and then an offset below which `line` will not be read again (so its pages can
    /// be handed back while the rest is decoded). The default never calls it.
    func decode(_ line: UnsafeRawBufferPointer, release: @escaping (Int) -> Void) throws(JSONParseError) -> JSONValue
}

extension MessageDecoder {
    public func decode(_ line: UnsafeRawBufferPointer, release: @escaping (Int) -> Void) throws(JSONParseError) -> JSONValue {
        try decode(line)
    }
}

/// The default decoder: ForziumJSON's strict parser.
public struct JSONParserDecoder: MessageDecoder {
    /// The parser used for every line.
    public let parser: JSONParser

    public init(parser: JSONParser = JSONParser()) {
        self.parser = parser
    }

    public func decode(_ line: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        try parser.parse(line)
    }

    public func decode(_ line: UnsafeRawBufferPointer, release: @escaping (Int) -> Void) throws(JSONParseError) -> JSONValue {
        try parser.parse(line, release: release)
    }
}
