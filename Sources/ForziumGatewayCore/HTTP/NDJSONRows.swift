import ForziumJSON
import NIOCore

/// Turns an engine's `stream.rows` notification into NDJSON lines `{"row":i,"values":[...]}` by scanning the raw
/// bytes: the rows are copied as written by the engine, never parsed into numbers and printed again.
enum NDJSONRows {
    private static let startKey = Array(#""start":"#.utf8)
    private static let rowsKey = Array(#""rows":"#.utf8)

    static func write(notification line: [UInt8], into out: inout ByteBuffer) {
        guard let paramsAt = find(Array(#""params":"#.utf8), in: line, from: 0),
              let startAt = find(startKey, in: line, from: paramsAt),
              let rowsAt = find(rowsKey, in: line, from: paramsAt) else { return }
        var i = startAt + startKey.count
        var first = 0
        while i < line.count, line[i] >= UInt8(ascii: "0"), line[i] <= UInt8(ascii: "9") {
            first = first * 10 + Int(line[i] - UInt8(ascii: "0"))
            i += 1
        }
        i = rowsAt + rowsKey.count
        while i < line.count, line[i] == UInt8(ascii: " ") { i += 1 }
        guard i < line.count, line[i] == UInt8(ascii: "[") else { return }
        i += 1
        var row = first
        var depth = 0
        var elementStart = -1
        var inString = false
        while i < line.count {
            let c = line[i]
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
                        emit(row: row, element: line[elementStart...i], into: &out)
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

    /// The binary variant: the notification's `rows` is a `BinaryMatrix` block (the engine was asked for
    /// `"$result":"binary"`); each of its rows is printed once, straight from the doubles. Falls back to the text scan
    /// when the rows are JSON.
    static func write(binaryNotification line: [UInt8], into out: inout ByteBuffer) {
        guard let startAt = find(startKey, in: line, from: 0),
              let rowsAt = find(rowsKey, in: line, from: startAt), line.count >= rowsAt + rowsKey.count + 2 else { return }
        var i = startAt + startKey.count
        var first = 0
        while i < line.count, line[i] >= UInt8(ascii: "0"), line[i] <= UInt8(ascii: "9") {
            first = first * 10 + Int(line[i] - UInt8(ascii: "0"))
            i += 1
        }
        // `…"rows":{binary}}}`: the block ends before the params' and the envelope's closing braces.
        let block = line.withUnsafeBytes { raw in
            BinaryMatrix.scan(UnsafeRawBufferPointer(rebasing: raw[(rowsAt + rowsKey.count)..<(line.count - 2)]))
        }
        guard let block, !block.isScalar else {
            write(notification: line, into: &out)
            return
        }
        var text: [UInt8] = []
        text.reserveCapacity(block.cols * 24 + 32)
        for row in 0..<block.rows {
            text.removeAll(keepingCapacity: true)
            text.append(contentsOf: #"{"row":"#.utf8)
            text.append(contentsOf: String(first + row).utf8)
            text.append(contentsOf: #","values":["#.utf8)
            for col in 0..<block.cols {
                if col > 0 { text.append(UInt8(ascii: ",")) }
                JSONWriter.writeDouble(block.storage[row * block.cols + col], into: &text)
            }
            text.append(contentsOf: "]}\n".utf8)
            out.writeBytes(text)
        }
    }

    private static func emit(row: Int, element: ArraySlice<UInt8>, into out: inout ByteBuffer) {
        out.writeString(#"{"row":"#)
        out.writeString(String(row))
        out.writeString(#","values":"#)
        element.withUnsafeBytes { _ = out.writeBytes($0) }
        out.writeString("}\n")
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        var i = from
        let last = haystack.count - needle.count
        while i <= last {
            if haystack[i] == needle[0] {
                var match = true
                for k in 1..<needle.count where haystack[i + k] != needle[k] { match = false; break }
                if match { return i }
            }
            i += 1
        }
        return nil
    }
}
