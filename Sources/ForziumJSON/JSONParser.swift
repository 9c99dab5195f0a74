// API shape only; the JSON codec work replaces the bodies.

/// Where and why a JSON text was rejected.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Byte offset of the offending byte (0-based).
    public var offset: Int
    /// 1-based line and column (column counts bytes).
    public var line: Int
    public var column: Int
    public var message: String

    public init(offset: Int, line: Int, column: Int, message: String) {
        self.offset = offset
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "\(message) at line \(line), column \(column) (byte \(offset))" }
}

/// Strict RFC 8259 parser over UTF-8 bytes.
public struct JSONParser: Sendable {
    public struct Options: Sendable {
        /// Deepest array/object nesting accepted.
        public var maxDepth: Int = 512
        /// Accept Python's `NaN`, `Infinity`, `-Infinity` tokens (an extension; output never contains them).
        public var allowNonFiniteNumbers: Bool = true
        public init() {}
    }

    public var options: Options

    public init(options: Options = Options()) {
        self.options = options
    }

    public func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        fatalError("JSON parser not written yet")
    }

    public func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> = bytes.withUnsafeBytes { buffer in
            Result { () throws(JSONParseError) -> JSONValue in try parse(buffer) }
        }
        return try result.get()
    }

    public func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8))
    }
}
