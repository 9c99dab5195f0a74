import ForziumJSON
import ForziumRPC
import NIOCore

/// Turns an engine's `stream.rows` notification (read by `StreamRows`) into NDJSON lines `{"row":i,"values":[...]}`:
/// a binary block is printed once from its doubles; JSON rows are copied as the engine wrote them.
enum NDJSONRows {
    static func write(notification line: [UInt8], into out: inout ByteBuffer) {
        switch StreamRows.read(line) {
        case (let start, .binary(let block))?:
            guard !block.isScalar else { return }
            var text: [UInt8] = []
            text.reserveCapacity(block.cols * 24 + 32)
            for row in 0..<block.rows {
                text.removeAll(keepingCapacity: true)
                text.append(contentsOf: #"{"row":"#.utf8)
                text.append(contentsOf: String(start + row).utf8)
                text.append(contentsOf: #","values":["#.utf8)
                for col in 0..<block.cols {
                    if col > 0 { text.append(UInt8(ascii: ",")) }
                    JSONWriter.writeDouble(block.storage[row * block.cols + col], into: &text)
                }
                text.append(contentsOf: "]}\n".utf8)
                out.writeBytes(text)
            }
        case (let start, .json(let rows))?:
            writeRows(rows, from: start, into: &out)
        case nil:
            return
        }
    }

    /// One NDJSON line per element of the JSON array `rows` (`[[…],…]`), each element copied as written.
    private static func writeRows(_ rows: ArraySlice<UInt8>, from first: Int, into out: inout ByteBuffer) {
        var i = rows.startIndex
        guard i < rows.endIndex, rows[i] == UInt8(ascii: "[") else { return }
        i += 1
        var row = first
        var depth = 0
        var elementStart = -1
        var inString = false
        while i < rows.endIndex {
            let c = rows[i]
            if inString {
                if c == UInt8(ascii: "\\") { i += 1 } else if c == UInt8(ascii: "\"") { inString = false }
            } else {
                switch c {
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    if depth == 0 { elementStart = i }
                    depth += 1
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    if depth == 0 { return } // end of the rows array
                    depth -= 1
                    if depth == 0 {
                        emit(row: row, element: rows[elementStart...i], into: &out)
                        row += 1
                    }
                case UInt8(ascii: "\""):
                    inString = true
                default:
                    break
                }
            }
            i += 1
        }
    }

    private static func emit(row: Int, element: ArraySlice<UInt8>, into out: inout ByteBuffer) {
        out.writeString(#"{"row":"#)
        out.writeString(String(row))
        out.writeString(#","values":"#)
        element.withUnsafeBytes { _ = out.writeBytes($0) }
        out.writeString("}\n")
    }
}
