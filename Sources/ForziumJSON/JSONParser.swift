/// Where and why a JSON text was rejected.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Byte offset of the offending byte (0-based); the input length when the text ended too early.
    public var offset: Int
    /// 1-based line of `offset` (lines are separated by LF).
    public var line: Int
    /// 1-based column of `offset`, counted in bytes from the start of its line.
    public var column: Int
    /// What was wrong, in words.
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
///
/// What it accepts is exactly RFC 8259 `JSON-text` — one value surrounded by optional whitespace
/// (space, tab, LF, CR) — plus one documented extension, on by default: the tokens `NaN`, `Infinity`
/// and `-Infinity` where a number may stand, as Python's `json.dumps` emits them
/// (`Options.allowNonFiniteNumbers`). It rejects, with the byte offset, line and column of the offending byte:
/// invalid UTF-8 anywhere (overlong forms, UTF-8-encoded surrogates, code points above U+10FFFF, truncated
/// sequences), unescaped control characters in strings, unknown escapes, `\u` escapes that leave a surrogate
/// unpaired, numbers with leading zeros / a bare `.` / a leading `+` / a missing exponent, trailing commas,
/// anything but whitespace after the value, a byte-order mark, and nesting deeper than `Options.maxDepth`.
///
/// Representation: every non-empty array whose elements are all numbers becomes `.numbers([Double])`
/// (one contiguous buffer, no per-element enum); with `Options.contiguousRows`, an array of equal-length rows of
/// numbers (a matrix) becomes `.rows`, all its numbers in one row-major buffer; other arrays are `.array`. Every `.number` the parser makes
/// keeps its token text in `JSONNumber.literal` (elements of `.numbers` have no literal). Numbers convert to the nearest double (round-half-even), bit-exactly:
/// an exact fast path, then Eisel–Lemire, then the C library's `strtod` for the rare rest. Magnitudes beyond
/// the double range become ±infinity; tiny ones become ±0 or subnormals. Object members keep input order;
/// duplicate keys are kept (lookups return the last).
public struct JSONParser: Sendable {
    public struct Options: Sendable {
        /// Deepest array/object nesting accepted (a top-level `[]` has depth 1). The parser itself does not
        /// recurse, but code that walks a `JSONValue` (writing, comparing, even releasing the nested enum) does,
        /// so keep this in the hundreds or low thousands.
        public var maxDepth: Int = 512
        /// Accept Python's `NaN`, `Infinity`, `-Infinity` tokens (an extension; output never contains them).
        public var allowNonFiniteNumbers: Bool = true
        /// Threads for one document: with 2 or more, a document of at least `JSONParser.parallelThreshold` bytes has
        /// its matrix rows read from the middle on a second thread (`RowSpeculation`); with `contiguousRows`, streamed
        /// or not, a matrix's rows are read a block at a time on two threads (`JSONScanner.splitRows`). Either way the
        /// result and any error are exactly those of the one-thread parse.
        public var threads: Int = 1
        /// Read an array whose elements are all arrays of numbers of one length (a matrix) into one contiguous
        /// row-major buffer, `.rows`, instead of one `.numbers` array per row (which a consumer then copies into matrix
        /// storage again). Off by default; the RPC decoder turns it on.
        public var contiguousRows: Bool = false
        public init() {}
    }

    public var options: Options

    public init(options: Options = Options()) {
        self.options = options
    }

    public func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        guard let raw = bytes.baseAddress, bytes.count > 0 else {
            throw JSONParseError(offset: 0, line: 1, column: 1, message: "empty input: expected a JSON value")
        }
        var scanner = JSONScanner(
            base: raw.assumingMemoryBound(to: UInt8.self), count: bytes.count, options: options)
        guard options.threads > 1, !options.contiguousRows, bytes.count >= Self.parallelThreshold else {
            return try scanner.parseDocument()
        }
        let speculation = RowSpeculation(floor: bytes.count / 2)
        let helper = scanner
        scanner.speculation = speculation
        var result: Result<JSONValue, JSONParseError> = .failure(JSONParseError(offset: 0, line: 1, column: 1, message: "not parsed"))
        ForkJoinPool.shared(threads: 2).run(parts: 2) { worker in
            if worker == 0 {
                result = Result { () throws(JSONParseError) -> JSONValue in try scanner.parseDocument() }
                speculation.cancel()
            } else {
                speculation.speculate(helper)
            }
        }
        return try result.get()
    }

    /// Parses `bytes` like `parse(_:)`, and tells `release` as it goes (about every `releaseStep` bytes, at the end of an
    /// array element) an offset below which it will not read `bytes` again, so the caller can hand those pages back
    /// while the rest is parsed (a long request line need not stay resident next to the values made from it). The
    /// one-thread parse is used whatever `options.threads` says. Same value and errors as `parse(_:)`.
    public func parse(_ bytes: UnsafeRawBufferPointer, release: @escaping (Int) -> Void) throws(JSONParseError) -> JSONValue {
        guard let raw = bytes.baseAddress, bytes.count > 0 else {
            throw JSONParseError(offset: 0, line: 1, column: 1, message: "empty input: expected a JSON value")
        }
        var scanner = JSONScanner(
            base: raw.assumingMemoryBound(to: UInt8.self), count: bytes.count, options: options)
        scanner.release = release
        scanner.nextRelease = Self.releaseStep
        return try scanner.parseDocument()
    }

    /// Parses one document whose bytes arrive while it is parsed (see `JSONByteWindow`): the scanner asks the window
    /// for more as it goes and tells it what lies behind, so neither the whole text nor more than a window of it need
    /// ever be resident. Same value and errors (offset, message) as `parse(_:)` over the complete bytes — errors
    /// report line 1, as the window holds one line; nil when the document is only whitespace (a blank line).
    public func parse(window: any JSONByteWindow) throws(JSONParseError) -> JSONValue? {
        var scanner = JSONScanner(base: window.bytes, count: window.available, options: options)
        scanner.window = window
        scanner.complete = window.isComplete
        scanner.refillAt = scanner.complete ? Int.max : scanner.end - JSONScanner.windowAhead
        scanner.singleLine = true
        // Leading whitespace is not kept (a long blank line costs no more than a long line of anything else).
        while true {
            scanner.anchor = scanner.pos
            scanner.ensureWindow()
            while scanner.pos < scanner.end, JSONScanner.isWhitespace(scanner.base[scanner.pos]) { scanner.pos += 1 }
            if scanner.pos < scanner.end || scanner.complete { break }
        }
        if scanner.pos >= scanner.end { return nil }
        return try scanner.parseDocument()
    }

    /// Bytes parsed between calls of `parse(_:release:)`'s `release`.
    public static let releaseStep = 1 << 20

    public func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> = bytes.withUnsafeBytes { buffer in
            Result { () throws(JSONParseError) -> JSONValue in try parse(buffer) }
        }
        return try result.get()
    }

    public func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONParseError) -> JSONValue {
        try parse(UnsafeRawBufferPointer(bytes))
    }

    /// Parses a slice (e.g. one line of a larger buffer); offsets in errors count from the slice's start.
    public func parse(_ bytes: ArraySlice<UInt8>) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> = bytes.withUnsafeBytes { buffer in
            Result { () throws(JSONParseError) -> JSONValue in try parse(buffer) }
        }
        return try result.get()
    }

    public func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        var text = text
        let result: Result<JSONValue, JSONParseError> = text.withUTF8 { buffer in
            Result { () throws(JSONParseError) -> JSONValue in try parse(UnsafeRawBufferPointer(buffer)) }
        }
        return try result.get()
    }
}

// MARK: - Byte constants

@usableFromInline enum ASCII {
    static let quote: UInt8 = 0x22, backslash: UInt8 = 0x5C, slash: UInt8 = 0x2F
    static let comma: UInt8 = 0x2C, colon: UInt8 = 0x3A
    static let openBracket: UInt8 = 0x5B, closeBracket: UInt8 = 0x5D
    static let openBrace: UInt8 = 0x7B, closeBrace: UInt8 = 0x7D
    static let space: UInt8 = 0x20, tab: UInt8 = 0x09, lf: UInt8 = 0x0A, cr: UInt8 = 0x0D
    static let minus: UInt8 = 0x2D, plus: UInt8 = 0x2B, dot: UInt8 = 0x2E
    static let zero: UInt8 = 0x30, nine: UInt8 = 0x39
    static let lowerE: UInt8 = 0x65, upperE: UInt8 = 0x45
}

// MARK: - The scanner

/// One parse: a cursor over the input bytes.
struct JSONScanner {
    let base: UnsafePointer<UInt8>
    /// Bytes readable now: the whole input, or (streaming) what the window has made available so far.
    var end: Int
    var pos: Int = 0
    let maxDepth: Int
    let allowNonFinite: Bool
    /// `Options.contiguousRows`.
    let contiguousRows: Bool
    /// Streaming: where more bytes come from (nil: the whole input is `base[0..<end]`).
    var window: (any JSONByteWindow)?
    /// Whether `end` is the end of the input. While it is not, nothing may take `end` for the end of a token: a
    /// token that reaches it is read again once more bytes have arrived, and an error within `lookahead` bytes of it
    /// may be an artefact of the missing bytes (the same rule decides both, so the verdict is the whole input's).
    var complete = true
    /// `ensureWindow` refills once `pos` reaches this: `end - windowAhead` while streaming, never when `complete`
    /// (one comparison per element on the hot path).
    var refillAt = Int.max
    /// Streaming: the lowest offset that may still be read again (a value, token or row being read); the window may
    /// hand back what lies below it.
    var anchor = 0
    /// Streaming: about how many bytes the values made so far take (8 per number, 16 per other value, plus string
    /// bytes), and whether the window has been read to the end because they outgrew the text read (see `refill`).
    var valueBytes = 0
    var readWhole = false
    /// The input holds no LF (one line of a stream): an error is at line 1, column offset + 1, computed without
    /// reading the bytes before it (which a window may have handed back).
    var singleLine = false
    /// Reused for strings that contain escapes.
    var scratch: [UInt8] = []
    /// `Options.contiguousRows` with `Options.threads` ≥ 2: matrix rows are read on two threads (`splitRows`).
    var splitThreads = false
    /// Rows read ahead by a second thread (two-thread parse only).
    var speculation: RowSpeculation?
    /// Told an offset below which the input will not be read again, once `pos` passes `nextRelease` (see
    /// `JSONParser.parse(_:release:)`).
    var release: ((Int) -> Void)?
    var nextRelease = Int.max

    /// Tells `release` that nothing before `pos` will be read again, once `pos` has passed `nextRelease`.
    @inline(__always)
    mutating func releaseIfDue() {
        if pos >= nextRelease, let release {
            release(pos)
            nextRelease = pos + JSONParser.releaseStep
        }
    }

    init(base: UnsafePointer<UInt8>, count: Int, options: JSONParser.Options) {
        self.base = base
        self.end = count
        self.maxDepth = options.maxDepth
        self.allowNonFinite = options.allowNonFiniteNumbers
        self.contiguousRows = options.contiguousRows
        self.splitThreads = options.contiguousRows && options.threads > 1
    }

    // MARK: Streaming

    /// Bytes kept available ahead of an element start while streaming (more than any ordinary token). A refill asks
    /// for just that much more, so that parsing goes on as soon as a read (a pipe holds 64 KiB) has brought it: the
    /// parse keeps pace with the bytes arriving rather than waiting for a larger batch.
    static let windowAhead = 16 << 10
    /// No error the scanner raises at an offset depends on bytes more than this far past it (the longest look-ahead:
    /// a `\uD800\uDC00` pair, 12 bytes).
    static let lookahead = 16

    /// Makes at least `windowAhead` bytes past `pos` readable when more can come (at an element start).
    @inline(__always)
    mutating func ensureWindow() {
        if pos >= refillAt { refill(target: pos + Self.windowAhead) }
    }

    /// Asks the window for bytes up to `target` (fewer when the input ends first); the bytes below `anchor` are not
    /// needed any more.
    ///
    /// While the values made take no more than the text read (matrices of decimals take about 0.4 of it), the parse
    /// keeps pace with the bytes arriving, and what is resident is the values and a window of text. Once they take
    /// more (and `readWholeFrom`), e.g. `[0,0,0,…]` (four times its text), the rest of the document is read before
    /// parsing goes on: a document too long to be used (a line over the limit) is then dropped having cost about its
    /// own length, as it would had it been buffered whole, not a multiple of it in values.
    @inline(never)
    mutating func refill(target: Int) {
        guard let window else {
            complete = true
            refillAt = Int.max
            return
        }
        var target = target
        if !readWhole && valueBytes > Swift.max(pos, Self.readWholeFrom) {
            readWhole = true
            target = Int.max
        }
        window.advance(keepFrom: anchor, target: target)
        end = window.available
        complete = window.isComplete
        if window.isAbandoned {
            // Not to be used: end the parse here (an error at `pos`, which the caller drops).
            end = Swift.min(end, pos)
            complete = true
        }
        refillAt = complete ? Int.max : end - Self.windowAhead
    }

    /// Value bytes from which a parse whose values outgrow its text reads the rest of the document first.
    static let readWholeFrom = 1 << 20

    /// A token starting at `start` needs bytes past `end`: reads on (at least doubling what the token has), so that a
    /// long token is re-read only a logarithmic number of times.
    @inline(never)
    mutating func growForToken(from start: Int) {
        refill(target: end + Swift.max(Self.windowAhead, end - start))
    }

    /// Whether a token that ended at `pos` — or failed with `error` — must be read again with more bytes.
    @inline(__always)
    func mustRetry(after error: JSONParseError? = nil) -> Bool {
        guard !complete else { return false }
        if let error { return error.offset + Self.lookahead >= end }
        return pos >= end
    }

    // MARK: Errors

    func error(_ message: String, at offset: Int) -> JSONParseError {
        if singleLine { return JSONParseError(offset: offset, line: 1, column: offset + 1, message: message) }
        var line = 1
        var lineStart = 0
        var i = 0
        let limit = min(offset, end)
        while i < limit {
            if base[i] == ASCII.lf {
                line += 1
                lineStart = i + 1
            }
            i += 1
        }
        return JSONParseError(offset: offset, line: line, column: offset - lineStart + 1, message: message)
    }

    /// "unexpected end of input" or "unexpected character 'x'" at `pos`, with what was expected.
    func unexpected(expected: String) -> JSONParseError {
        guard pos < end else { return error("unexpected end of input, expected \(expected)", at: pos) }
        return error("unexpected \(describeByte(at: pos)), expected \(expected)", at: pos)
    }

    func describeByte(at offset: Int) -> String {
        let b = base[offset]
        if b >= 0x21 && b < 0x7F { return "character '\(Character(Unicode.Scalar(b)))'" }
        if b == ASCII.space { return "space" }
        let hex = String(b, radix: 16, uppercase: true)
        return "byte 0x\(hex.count == 1 ? "0" + hex : hex)"
    }

    // MARK: Structure
    //
    // Containers are parsed without recursion: open arrays and objects live on explicit stacks, so nesting
    // costs heap, not thread stack, and any `maxDepth` is safe on any thread.

    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        if pos + 2 < end && base[pos] == 0xEF && base[pos + 1] == 0xBB && base[pos + 2] == 0xBF {
            throw error("byte-order mark is not allowed in JSON text", at: pos)
        }
        let value = try parseValue()
        anchor = pos
        skipWhitespace()
        if pos < end {
            throw error("unexpected \(describeByte(at: pos)) after the JSON value", at: pos)
        }
        return value
    }

    @inline(__always)
    static func isWhitespace(_ b: UInt8) -> Bool {
        b == ASCII.space || b == ASCII.lf || b == ASCII.cr || b == ASCII.tab
    }

    /// Steps over whitespace; while streaming, reads on until a non-blank byte or the end of the input.
    @inline(__always)
    mutating func skipWhitespace() {
        while true {
            while pos < end {
                let b = base[pos]
                if b == ASCII.space || b == ASCII.lf || b == ASCII.cr || b == ASCII.tab {
                    pos += 1
                } else {
                    return
                }
            }
            if complete { return }
            refill(target: pos + Self.windowAhead)
        }
    }

    /// Open objects the container stacks have room for before they grow (most messages nest a few objects deep).
    static let initialObjectDepth = 8
    /// Members an object has room for before its array grows (one allocation for a typical small object, where
    /// growing from empty would take three).
    static let initialObjectMembers = 4

    /// Parses one value (of any nesting) starting at `pos`, which must not be whitespace.
    mutating func parseValue() throws(JSONParseError) -> JSONValue {
        // Open containers, innermost last. `isObject[i]` says which stack holds container i's contents.
        var isObject: [Bool] = []
        var arrays: [[JSONValue]] = []
        var objects: [[(key: String, value: JSONValue)]] = []
        var keys: [String] = []
        var value: JSONValue

        while true {
            // At the start of a value.
            anchor = pos
            valueBytes &+= 16
            ensureWindow()
            guard pos < end else { throw unexpected(expected: "a JSON value") }
            if let speculation, pos >= speculation.floor, base[pos] == ASCII.openBracket, isObject.last == false,
               isObject.count < maxDepth, let run = speculation.take(at: pos) {
                // Rows of this array, read ahead from here by the other thread: the same values this loop would make.
                let top = arrays.count - 1
                arrays[top].reserveCapacity(arrays[top].count + run.rows.count)
                for row in run.rows.dropLast() { arrays[top].append(.numbers(row)) }
                value = .numbers(run.rows[run.rows.count - 1])
                pos = run.end
            } else {
                switch base[pos] {
                case ASCII.openBracket:
                    if isObject.count >= maxDepth {
                        throw error("nesting deeper than the limit of \(maxDepth)", at: pos)
                    }
                    pos += 1
                    skipWhitespace()
                    guard pos < end else { throw unexpected(expected: "a value or ']'") }
                    if base[pos] == ASCII.closeBracket {
                        pos += 1
                        value = .array([])
                    } else if contiguousRows && base[pos] == ASCII.openBracket && isObject.count + 1 < maxDepth {
                        switch try parseRows() {
                        case .rows(let rows):
                            value = .rows(rows)
                        case .general(let leading):
                            // Not a matrix after all: an ordinary array, its leading rows already read.
                            isObject.append(false)
                            arrays.append(leading)
                            continue
                        }
                    } else if startsNumber(base[pos]) {
                        let firstElement = pos
                        anchor = firstElement
                        if let numbers = try parseNumberRun() {
                            value = .numbers(numbers)
                        } else {
                            // A mixed array: read it again from the start as general values, so that its
                            // numbers keep their literals like every other scalar.
                            pos = firstElement
                            isObject.append(false)
                            arrays.append([])
                            continue
                        }
                    } else {
                        isObject.append(false)
                        arrays.append([])
                        continue
                    }
                case ASCII.openBrace:
                    if isObject.count >= maxDepth {
                        throw error("nesting deeper than the limit of \(maxDepth)", at: pos)
                    }
                    pos += 1
                    skipWhitespace()
                    guard pos < end else { throw unexpected(expected: "a string key or '}'") }
                    if base[pos] == ASCII.closeBrace {
                        pos += 1
                        value = .object(JSONObject())
                    } else {
                        if objects.isEmpty {
                            // The first object of this value: room for a few levels up front, not a regrowth per level.
                            objects.reserveCapacity(Self.initialObjectDepth)
                            keys.reserveCapacity(Self.initialObjectDepth)
                            isObject.reserveCapacity(Self.initialObjectDepth)
                        }
                        keys.append(try parseKey(afterComma: false))
                        isObject.append(true)
                        var members: [(key: String, value: JSONValue)] = []
                        members.reserveCapacity(Self.initialObjectMembers)
                        objects.append(members)
                        continue
                    }
                default:
                    value = try parseScalar()
                }
            }

            // A complete `value`: hand it to the innermost open container, closing containers as they end. Nothing
            // before `pos` is read again (a mixed array is re-read from its first element only before any element
            // is complete; strings and literals are copied out as they end).
            while true {
                guard let inObject = isObject.last else { return value }
                anchor = pos
                skipWhitespace()
                if inObject {
                    let top = objects.count - 1
                    objects[top].append((keys[top], value))
                    guard pos < end else { throw unexpected(expected: "',' or '}'") }
                    let b = base[pos]
                    if b == ASCII.comma {
                        pos += 1
                        skipWhitespace()
                        keys[top] = try parseKey(afterComma: true)
                        break
                    }
                    guard b == ASCII.closeBrace else { throw unexpected(expected: "',' or '}'") }
                    pos += 1
                    isObject.removeLast()
                    keys.removeLast()
                    value = .object(JSONObject(objects.removeLast()))
                } else {
                    let top = arrays.count - 1
                    arrays[top].append(value)
                    // A complete element: nothing before `pos` is read again (a mixed array is re-read from its first
                    // element only before any element is complete, strings and literals are copied out as they end).
                    releaseIfDue()
                    guard pos < end else { throw unexpected(expected: "',' or ']'") }
                    let b = base[pos]
                    if b == ASCII.comma {
                        pos += 1
                        skipWhitespace()
                        if pos < end && base[pos] == ASCII.closeBracket {
                            throw error("trailing comma in array", at: pos)
                        }
                        break
                    }
                    guard b == ASCII.closeBracket else { throw unexpected(expected: "',' or ']'") }
                    pos += 1
                    isObject.removeLast()
                    value = .array(arrays.removeLast())
                }
            }
        }
    }

    /// A member name and its colon; leaves `pos` at the member's value.
    mutating func parseKey(afterComma: Bool) throws(JSONParseError) -> String {
        guard pos < end, base[pos] == ASCII.quote else {
            if afterComma && pos < end && base[pos] == ASCII.closeBrace {
                throw error("trailing comma in object", at: pos)
            }
            throw unexpected(expected: "a string key")
        }
        let key = try readString()
        skipWhitespace()
        guard pos < end, base[pos] == ASCII.colon else { throw unexpected(expected: "':'") }
        pos += 1
        skipWhitespace()
        return key
    }

    /// A string (see `parseString`), read again with more bytes while streaming if it ran into the end of them.
    mutating func readString() throws(JSONParseError) -> String {
        let start = pos
        let oldAnchor = anchor
        anchor = Swift.min(anchor, start)
        defer { anchor = oldAnchor }
        while true {
            do {
                let text = try parseString()
                valueBytes &+= pos - start
                return text
            } catch {
                guard mustRetry(after: error) else { throw error }
            }
            pos = start
            growForToken(from: start)
        }
    }

    /// Numbers, strings and the literal names; while streaming, a token that ran into the end of the bytes read so
    /// far is read again once more have come.
    mutating func parseScalar() throws(JSONParseError) -> JSONValue {
        let start = pos
        while true {
            do {
                let value = try parseScalarToken()
                if !mustRetry() { return value }
            } catch {
                guard mustRetry(after: error) else { throw error }
            }
            pos = start
            growForToken(from: start)
        }
    }

    mutating func parseScalarToken() throws(JSONParseError) -> JSONValue {
        switch base[pos] {
        case ASCII.quote: return .string(try parseString())
        case 0x74: try expectWord("true"); return .bool(true)
        case 0x66: try expectWord("false"); return .bool(false)
        case 0x6E: try expectWord("null"); return .null
        default:
            if startsNumber(base[pos]) {
                let start = pos
                let value = try parseNumber()
                return .number(JSONNumber(value, literal: literal(from: start)))
            }
            throw unexpected(expected: "a JSON value")
        }
    }

    func literal(from start: Int) -> String {
        String(decoding: UnsafeBufferPointer(start: base + start, count: pos - start), as: UTF8.self)
    }

    @inline(__always)
    func startsNumber(_ b: UInt8) -> Bool {
        (b >= ASCII.zero && b <= ASCII.nine) || b == ASCII.minus
            || (allowNonFinite && (b == 0x4E /* N */ || b == 0x49 /* I */))
    }

    mutating func expectWord(_ word: StaticString) throws(JSONParseError) {
        let count = word.utf8CodeUnitCount
        let chars = word.utf8Start
        for i in 0..<count {
            guard pos + i < end else {
                throw error("unexpected end of input inside '\(word)'", at: pos + i)
            }
            if base[pos + i] != chars[i] {
                throw error("invalid literal, expected '\(word)'", at: pos + i)
            }
        }
        pos += count
    }

    /// The all-numbers fast path, entered at an array's first element (a number). Reads numbers straight into
    /// contiguous storage and returns them once `]` closes the array; returns nil as soon as an element
    /// turns out not to be a number (the caller then re-reads the array as general values).
    mutating func parseNumberRun() throws(JSONParseError) -> [Double]? {
        var numbers: [Double] = []
        return try appendNumberRun(to: &numbers) ? numbers : nil
    }

    /// `parseNumberRun`, appending the numbers to `numbers`; false (with some of them appended) when the array turns
    /// out not to be numbers only.
    ///
    /// Numbers are gathered in a small stack batch and appended to `numbers` a batch at a time: `Array.append` of one
    /// element checks the array's uniqueness with a runtime call every time (a sixth of the parse of a matrix).
    @inline(__always)
    mutating func appendNumberRun(to numbers: inout [Double]) throws(JSONParseError) -> Bool {
        let outcome: Result<Bool, JSONParseError> = withUnsafeTemporaryAllocation(of: Double.self, capacity: Self.numberBatch) { batch in
            var filled = 0
            // Numbers read, and how many of them `valueBytes` counts (brought up to date before a refill looks at it,
            // and at the end).
            var read = 0
            var counted = 0
            func flush() {
                numbers.append(contentsOf: UnsafeBufferPointer(rebasing: batch[..<filled]))
                filled = 0
            }
            defer { flush() }
            do throws(JSONParseError) {
                while true {
                    if pos >= refillAt {
                        valueBytes &+= (read &- counted) &* 8
                        counted = read
                        refill(target: pos + Self.windowAhead)
                    }
                    if filled == batch.count { flush() }
                    batch[filled] = try readNumber()
                    filled &+= 1
                    read &+= 1
                    skipWhitespace()
                    guard pos < end else { throw unexpected(expected: "',' or ']'") }
                    let b = base[pos]
                    if b == ASCII.closeBracket {
                        pos += 1
                        valueBytes &+= (read &- counted) &* 8
                        return .success(true)
                    }
                    guard b == ASCII.comma else { throw unexpected(expected: "',' or ']'") }
                    pos += 1
                    skipWhitespace()
                    guard pos < end else { throw unexpected(expected: "a JSON value") }
                    if !startsNumber(base[pos]) {
                        if base[pos] == ASCII.closeBracket { throw error("trailing comma in array", at: pos) }
                        return .success(false)
                    }
                }
            } catch {
                return .failure(error)
            }
        }
        return try outcome.get()
    }

    /// Numbers `appendNumberRun` gathers before appending them to the array.
    static let numberBatch = 64

    /// One number of a run; while streaming, read again with more bytes if it ran into the end of them.
    @inline(__always)
    mutating func readNumber() throws(JSONParseError) -> Double {
        let start = pos
        while true {
            do {
                let value = try parseNumber()
                if complete || pos < end { return value }
            } catch {
                guard mustRetry(after: error) else { throw error }
            }
            pos = start
            growForToken(from: start)
        }
    }

    /// `parseRows` reserves a square matrix's storage after the first row from this many columns...
    static let reserveSquareFrom = 64
    /// ...up to this many values (64 MiB).
    static let reserveSquareLimit = 1 << 23

    /// What `parseRows` found.
    enum RowsOutcome {
        /// The whole array, a matrix; `pos` is past its `]`.
        case rows(JSONNumberRows)
        /// An ordinary array: its leading elements (rows read before the one that broke the pattern, as `.numbers`);
        /// `pos` is at the start of the next element, to be read as a general value.
        case general([JSONValue])
    }

    /// The matrix fast path (`Options.contiguousRows`), entered at an array's first element, a `[`: reads rows of
    /// numbers straight into one row-major buffer for as long as each row is numbers only and as long as the first.
    /// Errors are exactly those of the general path (the same primitives, in the same order); a row that breaks the
    /// pattern is left to the general path, read again from its `[`.
    mutating func parseRows() throws(JSONParseError) -> RowsOutcome {
        var storage: [Double] = []
        var rows = 0
        var cols = 0
        // Rows are read on two threads (`splitRows`) from a row start at or past this offset.
        var splitFrom = splitThreads ? 0 : Int.max
        while true {
            // At a row's `[` (an element start).
            var helped = false
            if rows > 0 && pos >= splitFrom {
                let attempt = pos
                helped = splitRows(cols: cols, storage: &storage, rows: &rows) == .afterRow
                // Nothing gained: on alone for a block, rather than try again at every row.
                splitFrom = helped || pos > attempt ? pos : attempt + Self.splitBlock
            }
            if !helped {
                let rowStart = pos
                anchor = rowStart
                ensureWindow()
                pos += 1
                skipWhitespace()
                guard pos < end else { throw unexpected(expected: "a value or ']'") }
                var isRow = false
                if startsNumber(base[pos]) {
                    isRow = try appendNumberRun(to: &storage) && (rows == 0 || storage.count - rows * cols == cols)
                }
                guard isRow else {
                    pos = rowStart
                    return .general(Self.split(&storage, rows: rows, cols: cols))
                }
                if rows == 0 {
                    cols = storage.count
                    // Room for a square matrix from the start (most are), instead of doubling the buffer eleven times on
                    // the way to 512 × 512, copying it each time into fresh pages. Untouched capacity is address space
                    // only (buffers of 1 MiB and more are their own mappings), so a wide, short matrix costs nothing.
                    if cols >= Self.reserveSquareFrom {
                        storage.reserveCapacity(Swift.min(cols * cols, Self.reserveSquareLimit))
                        let capacity = storage.capacity
                        storage.withUnsafeMutableBufferPointer { values in
                            HugePages.advise(UnsafeMutableRawPointer(values.baseAddress!), bytes: capacity * 8)
                        }
                    }
                }
                rows += 1
            }
            anchor = pos
            skipWhitespace()
            releaseIfDue()
            guard pos < end else { throw unexpected(expected: "',' or ']'") }
            let b = base[pos]
            if b == ASCII.closeBracket {
                pos += 1
                return .rows(JSONNumberRows(rows: rows, cols: cols, storage: storage))
            }
            guard b == ASCII.comma else { throw unexpected(expected: "',' or ']'") }
            pos += 1
            skipWhitespace()
            if pos < end && base[pos] == ASCII.closeBracket { throw error("trailing comma in array", at: pos) }
            guard pos < end, base[pos] == ASCII.openBracket else {
                return .general(Self.split(&storage, rows: rows, cols: cols))
            }
        }
    }

    /// The first `rows` rows of `storage` as `.numbers` values (`storage` is emptied).
    static func split(_ storage: inout [Double], rows: Int, cols: Int) -> [JSONValue] {
        var values: [JSONValue] = []
        values.reserveCapacity(rows)
        for row in 0 ..< rows { values.append(.numbers(Array(storage[(row * cols) ..< ((row + 1) * cols)]))) }
        storage = []
        return values
    }

    // MARK: Strings

    /// Parses a string starting at the opening quote; leaves `pos` after the closing quote.
    mutating func parseString() throws(JSONParseError) -> String {
        pos += 1
        var segmentStart = pos
        var escaped = false
        while true {
            guard pos < end else { throw error("unterminated string", at: end) }
            let b = base[pos]
            if b == ASCII.quote {
                let text: String
                if escaped {
                    scratch.append(contentsOf: UnsafeBufferPointer(start: base + segmentStart, count: pos - segmentStart))
                    text = String(decoding: scratch, as: UTF8.self)
                } else {
                    text = String(
                        decoding: UnsafeBufferPointer(start: base + segmentStart, count: pos - segmentStart),
                        as: UTF8.self)
                }
                pos += 1
                return text
            }
            if b == ASCII.backslash {
                if !escaped {
                    escaped = true
                    scratch.removeAll(keepingCapacity: true)
                }
                scratch.append(contentsOf: UnsafeBufferPointer(start: base + segmentStart, count: pos - segmentStart))
                try parseEscape()
                segmentStart = pos
                continue
            }
            if b < 0x20 {
                throw error("control character U+00\(hex2(b)) must be escaped in a string", at: pos)
            }
            if b < 0x80 {
                pos += 1
                continue
            }
            try skipUTF8Sequence()
        }
    }

    func hex2(_ b: UInt8) -> String {
        let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D", "E", "F"]
        return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
    }

    /// Validates one multi-byte UTF-8 sequence at `pos` (Unicode Table 3-7) and steps over it.
    @inline(__always)
    mutating func skipUTF8Sequence() throws(JSONParseError) {
        let b0 = base[pos]
        let length: Int
        var lower: UInt8 = 0x80
        var upper: UInt8 = 0xBF
        switch b0 {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; upper = 0x9F
        case 0xF0: length = 4; lower = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; upper = 0x8F
        case 0x80...0xBF: throw error("invalid UTF-8: unexpected continuation byte", at: pos)
        case 0xC0, 0xC1: throw error("invalid UTF-8: overlong encoding", at: pos)
        default: throw error("invalid UTF-8: byte 0x\(hex2(b0)) never appears in UTF-8", at: pos)
        }
        guard pos + 1 < end else { throw error("invalid UTF-8: truncated sequence", at: pos) }
        let b1 = base[pos + 1]
        if b1 < lower || b1 > upper {
            if b1 >= 0x80 && b1 <= 0xBF {
                let why = b0 == 0xED ? "UTF-8-encoded surrogate" : (b0 == 0xF4 ? "code point above U+10FFFF" : "overlong encoding")
                throw error("invalid UTF-8: \(why)", at: pos)
            }
            throw error("invalid UTF-8: truncated sequence", at: pos)
        }
        for i in 2..<length {
            guard pos + i < end else { throw error("invalid UTF-8: truncated sequence", at: pos) }
            let c = base[pos + i]
            if c < 0x80 || c > 0xBF { throw error("invalid UTF-8: truncated sequence", at: pos) }
        }
        pos += length
    }

    /// Parses the escape at `pos` (a backslash), appending its UTF-8 to `scratch`.
    mutating func parseEscape() throws(JSONParseError) {
        let start = pos
        guard pos + 1 < end else { throw error("unterminated string", at: end) }
        let c = base[pos + 1]
        pos += 2
        switch c {
        case ASCII.quote: scratch.append(ASCII.quote)
        case ASCII.backslash: scratch.append(ASCII.backslash)
        case ASCII.slash: scratch.append(ASCII.slash)
        case 0x62: scratch.append(0x08)  // b
        case 0x66: scratch.append(0x0C)  // f
        case 0x6E: scratch.append(0x0A)  // n
        case 0x72: scratch.append(0x0D)  // r
        case 0x74: scratch.append(0x09)  // t
        case 0x75:  // u
            var scalar = try parseHex4(escapeStart: start)
            if scalar >= 0xD800 && scalar <= 0xDBFF {
                guard pos + 1 < end, base[pos] == ASCII.backslash, base[pos + 1] == 0x75 else {
                    throw error("lone high surrogate \\u\(hex4(scalar)) (must be followed by a low surrogate escape)", at: start)
                }
                let second = pos
                pos += 2
                let low = try parseHex4(escapeStart: second)
                guard low >= 0xDC00 && low <= 0xDFFF else {
                    throw error("high surrogate \\u\(hex4(scalar)) followed by \\u\(hex4(low)), not a low surrogate", at: second)
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                throw error("lone low surrogate \\u\(hex4(scalar))", at: start)
            }
            appendUTF8(scalar)
        default:
            if c < 0x20 || c >= 0x80 {
                throw error("invalid escape sequence", at: start)
            }
            throw error("invalid escape sequence '\\\(Character(Unicode.Scalar(c)))'", at: start)
        }
    }

    func hex4(_ v: UInt32) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }

    mutating func parseHex4(escapeStart: Int) throws(JSONParseError) -> UInt32 {
        var v: UInt32 = 0
        for i in 0..<4 {
            guard pos + i < end else { throw error("unterminated \\u escape", at: end) }
            let b = base[pos + i]
            let d: UInt32
            switch b {
            case 0x30...0x39: d = UInt32(b - 0x30)
            case 0x41...0x46: d = UInt32(b - 0x41 + 10)
            case 0x61...0x66: d = UInt32(b - 0x61 + 10)
            default: throw error("invalid \\u escape: expected 4 hex digits", at: pos + i)
            }
            v = v << 4 | d
        }
        pos += 4
        return v
    }

    mutating func appendUTF8(_ s: UInt32) {
        if s < 0x80 {
            scratch.append(UInt8(s))
        } else if s < 0x800 {
            scratch.append(UInt8(0xC0 | (s >> 6)))
            scratch.append(UInt8(0x80 | (s & 0x3F)))
        } else if s < 0x10000 {
            scratch.append(UInt8(0xE0 | (s >> 12)))
            scratch.append(UInt8(0x80 | ((s >> 6) & 0x3F)))
            scratch.append(UInt8(0x80 | (s & 0x3F)))
        } else {
            scratch.append(UInt8(0xF0 | (s >> 18)))
            scratch.append(UInt8(0x80 | ((s >> 12) & 0x3F)))
            scratch.append(UInt8(0x80 | ((s >> 6) & 0x3F)))
            scratch.append(UInt8(0x80 | (s & 0x3F)))
        }
    }

    // MARK: Numbers

    /// The run of ASCII digits from `p`, folded into `mantissa` (× 10 per digit, wrapping exactly as one digit at a time
    /// would; `digitCount` still sends a mantissa of more than 19 significant digits to the slow path): eight at a time
    /// while eight are there, then byte by byte. Returns the offset after the run.
    @inline(__always)
    func digits(from start: Int, into mantissa: inout UInt64) -> Int {
        var p = start
        while p + 8 <= end, let eight = Self.eightDigits(base + p) {
            mantissa = mantissa &* 100_000_000 &+ eight
            p += 8
        }
        while p < end && base[p] &- ASCII.zero <= 9 {
            mantissa = mantissa &* 10 &+ UInt64(base[p] &- ASCII.zero)
            p += 1
        }
        return p
    }

    /// The value of the 8 bytes at `p` when all are ASCII digits (the first is the most significant), else nil: one
    /// 64-bit load and a few multiplies instead of 8 rounds of the byte loop (a matrix number has 16-17 digits).
    @inline(__always)
    static func eightDigits(_ p: UnsafePointer<UInt8>) -> UInt64? {
        let chunk = UInt64(littleEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt64.self))
        // Every byte is 0x30...0x39: its high nibble is 3, and still 3 after adding 6 (a byte that does not pass the
        // first test cannot hide behind a carry: only bytes from 0xFA carry, and their high nibble is F).
        let high: UInt64 = 0xF0F0_F0F0_F0F0_F0F0
        guard chunk & high == 0x3030_3030_3030_3030,
              (chunk &+ 0x0606_0606_0606_0606) & high == 0x3030_3030_3030_3030 else { return nil }
        // Digit values, the first digit in the lowest byte. Pairs: byte 2i of each 16-bit lane = 10·d(2i) + d(2i+1).
        var v = chunk &- 0x3030_3030_3030_3030
        v = v &* 10 &+ (v >> 8)
        // Lanes 0 and 2 (pairs 1 and 3) and lanes 1 and 3 (pairs 2 and 4), each pair below 100; one multiply each
        // puts 10⁶·pair1 + 10²·pair3 and 10⁴·pair2 + pair4 into bits 32 and up.
        let pairs13 = v & 0x0000_00FF_0000_00FF
        let pairs24 = (v >> 16) & 0x0000_00FF_0000_00FF
        return (pairs13 &* (100 &+ (1_000_000 << 32)) &+ pairs24 &* (1 &+ (10_000 << 32))) >> 32
    }

    /// Parses one number token at `pos` (grammar of RFC 8259 §6, plus the non-finite extension).
    ///
    /// One pass: all digits are folded into a UInt64 as they go by (wrapping is harmless: a token with more
    /// than 19 significant digits goes to the slow path, which re-reads the text).
    @inline(__always)
    mutating func parseNumber() throws(JSONParseError) -> Double {
        let start = pos
        var p = pos
        // The sign without a branch (random signs would mispredict half the time): it moves `p` on by 0 or 1 and is
        // put into the result's sign bit at the end.
        let negative = base[p] == ASCII.minus
        p &+= negative ? 1 : 0
        guard p < end, base[p] &- ASCII.zero <= 9 else {
            pos = p
            return try parseNonDigitNumber(negative: negative)
        }
        let digitsStart = p
        var mantissa: UInt64 = 0
        if base[p] == ASCII.zero {
            p += 1
            if p < end && base[p] &- ASCII.zero <= 9 {
                throw error("leading zeros are not allowed in numbers", at: start)
            }
        } else {
            p = digits(from: p, into: &mantissa)
        }
        var digitCount = p - digitsStart
        var exponent = 0
        if p < end && base[p] == ASCII.dot {
            p += 1
            let fractionStart = p
            guard p < end, base[p] &- ASCII.zero <= 9 else {
                throw error("expected a digit after '.'", at: p)
            }
            p = digits(from: p, into: &mantissa)
            exponent = fractionStart - p
            digitCount += p - fractionStart
        }
        if p < end && (base[p] | 0x20) == ASCII.lowerE {
            p += 1
            var exponentNegative = false
            if p < end && (base[p] == ASCII.minus || base[p] == ASCII.plus) {
                exponentNegative = base[p] == ASCII.minus
                p += 1
            }
            guard p < end, base[p] &- ASCII.zero <= 9 else {
                throw error("expected a digit in the exponent", at: p)
            }
            var e = 0
            repeat {
                if e < 100_000_000 { e = e &* 10 &+ Int(base[p] &- ASCII.zero) }
                p += 1
            } while p < end && base[p] &- ASCII.zero <= 9
            exponent += exponentNegative ? -e : e
        }
        pos = p
        if digitCount > 19 {
            // Leading zeros ("0.000…") do not count; more than 19 significant digits need the slow path.
            var q = digitsStart
            var significant = digitCount
            while q < p && (base[q] == ASCII.zero || base[q] == ASCII.dot) {
                if base[q] == ASCII.zero { significant -= 1 }
                q += 1
            }
            if significant > 19 {
                return DecimalConversion.slowDouble(base + start, count: p - start)
            }
        }
        // Through a 0-or-1 byte, so that it compiles to a flag and a shift: `negative ? 1 << 63 : 0` became a branch
        // (the whole parse 14 % slower on random signs).
        let sign = UInt64(truncatingIfNeeded: UInt8(truncatingIfNeeded: negative ? 1 : 0)) << 63
        if mantissa == 0 { return Double(bitPattern: sign) }
        guard let value = DecimalConversion.fastDouble(mantissa: mantissa, exponent: exponent, digits: digitCount) else {
            return DecimalConversion.slowDouble(base + start, count: p - start)
        }
        return Double(bitPattern: value.bitPattern | sign)
    }

    /// A number token whose first character (after an optional '-') is not a digit: `NaN`, `Infinity`,
    /// `-Infinity` when allowed, otherwise an error. `pos` is at that character.
    mutating func parseNonDigitNumber(negative: Bool) throws(JSONParseError) -> Double {
        guard pos < end else { throw error("unexpected end of input, expected a digit after '-'", at: pos) }
        let b = base[pos]
        if allowNonFinite {
            if b == 0x49 {  // I
                try expectWord("Infinity")
                return negative ? -Double.infinity : Double.infinity
            }
            if b == 0x4E && !negative {  // N
                try expectWord("NaN")
                return Double.nan
            }
        }
        if b == ASCII.dot { throw error("a number needs a digit before '.'", at: pos) }
        throw error(negative ? "expected a digit after '-'" : "invalid number", at: pos)
    }
}
