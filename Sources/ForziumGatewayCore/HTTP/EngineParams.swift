import ForziumJSON
import ForziumRPC
import NIOCore

/// The engine-side form of a validated request body: the same params, with every matrix in the binary form
/// (`BinaryMatrix`: a shared-memory segment, or base64 where no segment can be made) and `"$result":"shm"` asking
/// for the result in that form too. No decimal text crosses the pipe for matrices, and the engine never parses
/// numbers the gateway has already parsed. The segments belong to the request: `release()` removes them once the
/// engine has answered (or the request is abandoned).
///
/// A matrix here is an array of one or more rows, each a non-empty array of numbers, all of the same
/// length — what the parser holds as `.array` of `.numbers`. Anything else (a ragged matrix the schemas cannot rule
/// out, a row with a non-number) is written as JSON, so the engine finds the problem and reports it at the same
/// JSON Pointer as before.
///
/// A tiny body (`verbatimBodyLimit`) is the exception: it is sent as it came (`init(verbatim:)`), and its result comes
/// back as JSON text that the gateway copies into its answer. For a handful of numbers the binary envelope costs more
/// than it saves — the `{"dtype","shape","base64"}` objects read and checked on both ends, base64 both ways, and the
/// gateway printing a result it could have copied: a 2×2 `compute` line takes an engine 28.7k instructions as text
/// against 40.0k in binary form (100,000 piped lines), and the gateway no longer encodes the params nor decodes and
/// prints the result. From an 8×8 matrix of decimals on, the engine's side is dearer as text (70.1k against 62.2k).
/// Both forms give the same answer: the engine parses the same bytes with the same parser as the gateway, and prints
/// results with the same writer.
struct EngineParams: Sendable {
    /// The params text of the engine request.
    var text: ByteBuffer
    /// Shared-memory segments holding the request's matrices.
    var segments: [String]

    /// Bodies up to this size go to the engine as they came (`init(verbatim:)`).
    static let verbatimBodyLimit = 256

    /// The params of a validated body of at most `verbatimBodyLimit` bytes: the body itself, which asks for the
    /// result as JSON (no `"$result"`). Raw CR or LF in it (whitespace between tokens, as validated JSON has them
    /// nowhere else) become spaces when the request line is built (`EnginePool.requestParts`).
    init(verbatim body: ByteBuffer) {
        self.text = body
        self.segments = []
    }

    /// Builds the engine params from the parsed body `value`.
    init(_ value: JSONValue) {
        var bytes: [UInt8] = []
        var segments: [String] = []
        bytes.reserveCapacity(Self.estimatedSize(value) + 32)
        Self.write(value, into: &bytes, segments: &segments)
        if case .object(let object) = value {
            // The reserved member asking for the result in a segment too, last: `{…,"$result":"shm"}`.
            bytes.removeLast()
            if !object.members.isEmpty { bytes.append(UInt8(ascii: ",")) }
            bytes.append(contentsOf: #""$result":"shm"}"#.utf8)
        }
        self.text = ByteBuffer(bytes: bytes)
        self.segments = segments
    }

    /// Removes the request's segments (the engine has answered, or will not be asked).
    func release() {
        Self.release(segments)
    }

    /// Removes the segments named (those of a request whose params are gone).
    static func release(_ segments: [String]) {
        for name in segments { SharedMatrixSegment.unlink(name) }
    }

    private static func write(_ value: JSONValue, into bytes: inout [UInt8], segments: inout [String]) {
        switch value {
        case .array(let rows):
            if let cols = rectangularColumns(rows) {
                writeBinary(rows: rows, cols: cols, into: &bytes, segments: &segments)
                return
            }
            bytes.append(UInt8(ascii: "["))
            for (index, element) in rows.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                write(element, into: &bytes, segments: &segments)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let object):
            bytes.append(UInt8(ascii: "{"))
            for (index, member) in object.members.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                JSONWriter.writeString(member.key, into: &bytes)
                bytes.append(UInt8(ascii: ":"))
                write(member.value, into: &bytes, segments: &segments)
            }
            bytes.append(UInt8(ascii: "}"))
        default:
            RPCEncoder.writeData(value, into: &bytes)
        }
    }

    /// The column count when `rows` is a non-empty list of number rows of one non-zero length.
    static func rectangularColumns(_ rows: [JSONValue]) -> Int? {
        guard case .numbers(let first)? = rows.first, !first.isEmpty else { return nil }
        for row in rows {
            guard case .numbers(let numbers) = row, numbers.count == first.count else { return nil }
        }
        return first.count
    }

    /// Writes the rows' doubles as one binary matrix (the rows gathered once into row-major storage).
    private static func writeBinary(rows: [JSONValue], cols: Int, into bytes: inout [UInt8], segments: inout [String]) {
        var storage: [Double] = []
        storage.reserveCapacity(rows.count * cols)
        for case .numbers(let numbers) in rows { storage.append(contentsOf: numbers) }
        let name = storage.withUnsafeBufferPointer { BinaryMatrix.writeShared(rows: rows.count, cols: cols, $0, into: &bytes) }
        if let name { segments.append(name) }
    }

    /// A generous estimate of the encoded size, so the buffer grows once.
    private static func estimatedSize(_ value: JSONValue) -> Int {
        switch value {
        case .array(let items): items.reduce(2) { $0 + estimatedSize($1) + 1 }
        case .numbers(let numbers): numbers.count * 11 + 2
        case .object(let object): object.members.reduce(2) { $0 + $1.key.utf8.count + 4 + estimatedSize($1.value) }
        case .string(let s): s.utf8.count + 2
        default: 24
        }
    }
}

/// An engine's result as the JSON text of the HTTP response.
enum ResultText {
    /// Threads that format a large matrix (the codec's parallel writer; same bytes for any count).
    static let writerThreads = 2

    /// The result of `reply` as JSON: a binary result is printed from its doubles (non-finite → `null`, as everywhere
    /// in the JSON API), and its shared-memory segment removed; any other result is the engine's own text.
    static func text(_ reply: RPCReply) -> [UInt8] {
        text(reply, binary: reply.takeBinaryResult())
    }

    /// Calls `body` with the same text, for a binary result already taken from `reply`: other JSON is lent from the
    /// reply's line as it is, not copied.
    static func withText<R>(_ reply: RPCReply, binary: BinaryMatrix?, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        guard binary != nil else { return try reply.resultBytes.withUnsafeBytes(body) }
        return try text(reply, binary: binary).withUnsafeBytes(body)
    }

    /// The same, for a binary result already taken from `reply`.
    static func text(_ reply: RPCReply, binary: BinaryMatrix?) -> [UInt8] {
        guard let matrix = binary else { return Array(reply.resultBytes) }
        var text: [UInt8] = []
        if matrix.isScalar {
            JSONWriter.writeDouble(matrix.storage[0], into: &text)
        } else {
            matrix.storage.withUnsafeBufferPointer {
                JSONWriter.writeMatrix(rows: matrix.rows, cols: matrix.cols, $0, threads: writerThreads, into: &text)
            }
        }
        return text
    }
}
