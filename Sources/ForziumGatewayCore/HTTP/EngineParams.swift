import ForziumJSON
import ForziumRPC
import NIOCore

/// The engine-side form of a validated request body: the same params, with every matrix in the binary form
/// (`BinaryMatrix`) and `"$result":"binary"` asking for the result in that form too. No decimal text crosses the pipe
/// for matrices, and the engine never parses numbers the gateway has already parsed.
///
/// A matrix here is an array of one or more rows, each a non-empty array of numbers, all of the same
/// length — what the parser holds as `.array` of `.numbers`. Anything else (a ragged matrix the schemas cannot rule
/// out, a row with a non-number) is written as JSON, so the engine finds the problem and reports it at the same
/// JSON Pointer as before.
enum EngineParams {
    /// The params text for an engine request built from the parsed body `value`.
    static func encode(_ value: JSONValue) -> ByteBuffer {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(estimatedSize(value) + 32)
        guard case .object(let object) = value else {
            RPCEncoder.writeData(value, into: &bytes)
            return ByteBuffer(bytes: bytes)
        }
        bytes.append(UInt8(ascii: "{"))
        for member in object.members {
            JSONWriter.writeString(member.key, into: &bytes)
            bytes.append(UInt8(ascii: ":"))
            write(member.value, into: &bytes)
            bytes.append(UInt8(ascii: ","))
        }
        bytes.append(contentsOf: #""$result":"binary"}"#.utf8)
        return ByteBuffer(bytes: bytes)
    }

    private static func write(_ value: JSONValue, into bytes: inout [UInt8]) {
        switch value {
        case .array(let rows):
            if let cols = rectangularColumns(rows) {
                writeBinary(rows: rows, cols: cols, into: &bytes)
                return
            }
            bytes.append(UInt8(ascii: "["))
            for (index, element) in rows.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                write(element, into: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let object):
            bytes.append(UInt8(ascii: "{"))
            for (index, member) in object.members.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                JSONWriter.writeString(member.key, into: &bytes)
                bytes.append(UInt8(ascii: ":"))
                write(member.value, into: &bytes)
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

    /// Writes the rows' doubles as one contiguous binary matrix (one copy of each row into the staging storage).
    private static func writeBinary(rows: [JSONValue], cols: Int, into bytes: inout [UInt8]) {
        var storage: [Double] = []
        storage.reserveCapacity(rows.count * cols)
        for case .numbers(let numbers) in rows { storage.append(contentsOf: numbers) }
        storage.withUnsafeBufferPointer { BinaryMatrix.write(rows: rows.count, cols: cols, $0, into: &bytes) }
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

/// Writes an engine's result into the HTTP response body.
enum ResultText {
    /// Threads that format a large matrix (the codec's parallel writer; same bytes for any count).
    static let writerThreads = 2

    /// Appends the result of `reply` as JSON: a binary result is printed from its doubles (non-finite → `null`, as
    /// everywhere in the JSON API); any other result is copied as the engine wrote it.
    static func append(_ reply: RPCReply, into out: inout ByteBuffer) {
        if let matrix = reply.binaryResult {
            var text: [UInt8] = []
            if matrix.isScalar {
                JSONWriter.writeDouble(matrix.storage[0], into: &text)
            } else {
                matrix.storage.withUnsafeBufferPointer {
                    JSONWriter.writeMatrix(rows: matrix.rows, cols: matrix.cols, $0, threads: writerThreads, into: &text)
                }
            }
            out.writeBytes(text)
        } else {
            reply.resultBytes.withUnsafeBytes { _ = out.writeBytes($0) }
        }
    }
}
