import ForziumJSON

/// What an engine sent back for one request: its whole response line, and where the raw `result` value sits.
public struct RPCReply: Sendable {
    /// The response line without its newline.
    public var line: [UInt8]
    /// Byte range of the raw `result` value when the engine succeeded; `nil` for an error response.
    public var resultRange: Range<Int>?
    /// The error object when the engine failed.
    public var error: RPCError?

    public init(line: [UInt8], resultRange: Range<Int>?, error: RPCError?) {
        self.line = line
        self.resultRange = resultRange
        self.error = error
    }

    /// The raw result bytes (valid JSON text) of a successful response.
    public var resultBytes: ArraySlice<UInt8> { resultRange.map { line[$0] } ?? [] }

    /// The result in the binary matrix form (`BinaryMatrix`), read without parsing the line as JSON when the engine
    /// wrote it (fixed member order); nil when the result is not one. A shared-memory result segment is removed once
    /// read — the reader owns it — unless it is `keeping`, a segment of the reader's own that the engine wrote into.
    public func takeBinaryResult(keeping: String? = nil) -> BinaryMatrix? {
        guard let range = resultRange else { return nil }
        let matrix = line.withUnsafeBytes { raw -> BinaryMatrix? in
            let text = UnsafeRawBufferPointer(rebasing: raw[range])
            if let fast = BinaryMatrix.scan(text) { return fast }
            guard text.first == UInt8(ascii: "{"), let value = try? JSONParser().parse(text) else { return nil }
            return try? BinaryMatrix(value, at: "")
        }
        if let name = matrix?.sharedName, name != keeping { SharedMatrixSegment.unlink(name) }
        return matrix
    }

    /// Removes the shared-memory segment a result names, if any: for a reply nobody will read (its request was
    /// cancelled or timed out).
    public func releaseSharedResult() {
        guard let range = resultRange else { return }
        let form = line.withUnsafeBytes { BinaryMatrix.scanForm(UnsafeRawBufferPointer(rebasing: $0[range])) }
        if case .shared(_, _, let name)? = form { SharedMatrixSegment.unlink(name) }
    }
}

/// Sorts the lines a client reads from an engine, without parsing large results.
///
/// Engines write a success as `{"jsonrpc":"2.0","id":N,"result":<value>}` (member order fixed by `RPCEncoder`), so it is
/// recognised by its prefix and the raw result is the bytes between that prefix and the final `}`. Error responses
/// and anything unusual are small and parsed in full.
public enum RPCReplyReader {
    /// One line from an engine.
    public enum Line: Sendable {
        /// The response to request `id` (ids the client assigned: non-negative integers).
        case response(id: Int, RPCReply)
        /// A `stream.rows` notification for request `request`.
        case rows(request: Int)
        /// Another notification (ignored by clients that do not know it).
        case otherNotification(method: String)
        /// Not a protocol line: the engine is broken.
        case garbage(String)
    }

    private static let responsePrefix = Array(#"{"jsonrpc":"2.0","id":"#.utf8)
    private static let resultKey = Array(#","result":"#.utf8)

    public static func classify(_ line: [UInt8]) -> Line {
        if line.starts(with: responsePrefix) {
            var i = responsePrefix.count
            if let id = readInt(line, &i), line.count > i + resultKey.count, line[i..<(i + resultKey.count)].elementsEqual(resultKey) {
                var end = line.count
                while end > 0, line[end - 1] == UInt8(ascii: " ") { end -= 1 }
                if end > i + resultKey.count, line[end - 1] == UInt8(ascii: "}") {
                    return .response(id: id, RPCReply(line: line, resultRange: (i + resultKey.count)..<(end - 1), error: nil))
                }
            }
        } else if line.starts(with: StreamRows.prefix) {
            var i = StreamRows.prefix.count
            if let id = readInt(line, &i) { return .rows(request: id) }
        }
        return classifyParsed(line)
    }

    /// Full parse: error responses, other member orders, notifications.
    private static func classifyParsed(_ line: [UInt8]) -> Line {
        let value: JSONValue
        do {
            value = try JSONParser().parse(line)
        } catch {
            return .garbage("not JSON: \(error.description)")
        }
        guard case .object(let object) = value else { return .garbage("not a JSON object") }
        if case .string(let method)? = object["method"] {
            if method == StreamRows.method, case .object(let params)? = object["params"],
               case .number(let n)? = params["request"], let id = Int(exactly: n.value) {
                return .rows(request: id)
            }
            return .otherNotification(method: method)
        }
        guard case .number(let idNumber)? = object["id"], let id = Int(exactly: idNumber.value) else {
            if let error = object["error"] {
                // An error without a usable id (e.g. the engine could not parse a line): nobody to route it to.
                var text: [UInt8] = []
                RPCEncoder.writeData(error, into: &text)
                return .garbage("error response without id: \(String(decoding: text.prefix(200), as: UTF8.self))")
            }
            return .garbage("response without a numeric id")
        }
        if let result = object["result"] {
            var bytes: [UInt8] = []
            RPCEncoder.writeData(result, into: &bytes)
            return .response(id: id, RPCReply(line: bytes, resultRange: 0..<bytes.count, error: nil))
        }
        guard case .object(let error)? = object["error"] else { return .garbage("response with neither result nor error") }
        var code = RPCErrorCode.internalError.rawValue
        if case .number(let c)? = error["code"], let ci = Int(exactly: c.value) { code = ci }
        var message = "engine error"
        if case .string(let m)? = error["message"] { message = m }
        return .response(id: id, RPCReply(line: line, resultRange: nil, error: RPCError(code: code, message: message, data: error["data"])))
    }

    /// Reads a non-negative decimal integer at `i` (advancing it).
    static func readInt(_ line: [UInt8], _ i: inout Int) -> Int? {
        var value = 0
        let start = i
        while i < line.count, line[i] >= UInt8(ascii: "0"), line[i] <= UInt8(ascii: "9"), i - start < 18 {
            value = value * 10 + Int(line[i] - UInt8(ascii: "0"))
            i += 1
        }
        return i > start ? value : nil
    }
}
