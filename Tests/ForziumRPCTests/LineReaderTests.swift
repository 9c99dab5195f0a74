import Testing
@testable import ForziumRPC

/// Hands out preset bytes, at most `chunk` per read (1 = byte by byte), and counts reads.
struct ChunkedSource: ByteSource {
    var bytes: [UInt8]
    var chunk: Int
    var position = 0
    var reads = 0

    init(_ bytes: [UInt8], chunk: Int) {
        self.bytes = bytes
        self.chunk = chunk
    }

    init(_ text: String, chunk: Int) {
        self.init(Array(text.utf8), chunk: chunk)
    }

    mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        reads += 1
        let count = min(chunk, buffer.count, bytes.count - position)
        guard count > 0 else { return 0 }
        for index in 0..<count { buffer[index] = bytes[position + index] }
        position += count
        return count
    }
}

enum Frame: Equatable {
    case line(String)
    case oversize(Int)
}

/// Every frame until the end.
func frames<S: ByteSource>(_ reader: LineReader<S>) -> [Frame] {
    var result: [Frame] = []
    while true {
        switch reader.next() {
        case .line(let bytes): result.append(.line(String(decoding: bytes, as: UTF8.self)))
        case .oversize(let count): result.append(.oversize(count))
        case .end: return result
        }
    }
}

@Suite("Line framing")
struct LineReaderTests {
    @Test("LF and CRLF lines, any read size", arguments: [1, 2, 3, 7, 64, 4096])
    func splitsLines(chunk: Int) {
        let input = "{\"a\":1}\n{\"b\":2}\r\n\n[3]\r\nlast"
        let reader = LineReader(source: ChunkedSource(input, chunk: chunk), maxLineBytes: 1024, initialCapacity: 4)
        #expect(frames(reader) == [.line("{\"a\":1}"), .line("{\"b\":2}"), .line(""), .line("[3]"), .line("last")])
    }

    @Test("A final line without LF is returned; a lone CR before EOF is dropped")
    func finalPartialLine() {
        #expect(frames(LineReader(source: ChunkedSource("abc", chunk: 1), maxLineBytes: 8)) == [.line("abc")])
        #expect(frames(LineReader(source: ChunkedSource("abc\r", chunk: 2), maxLineBytes: 8)) == [.line("abc")])
        #expect(frames(LineReader(source: ChunkedSource("", chunk: 1), maxLineBytes: 8)) == [])
        #expect(frames(LineReader(source: ChunkedSource("x\n", chunk: 1), maxLineBytes: 8)) == [.line("x")])
    }

    @Test("A line over the limit is reported with its length and skipped; the next line is served", arguments: [1, 5, 1000])
    func oversize(chunk: Int) {
        let long = String(repeating: "x", count: 100)
        let input = "ok1\n\(long)\nok2\r\n\(long)\r\n12345678\n123456789\nend"
        let reader = LineReader(source: ChunkedSource(input, chunk: chunk), maxLineBytes: 8, initialCapacity: 2)
        #expect(frames(reader) == [
            .line("ok1"), .oversize(100), .line("ok2"), .oversize(100), .line("12345678"), .oversize(9), .line("end"),
        ])
    }

    @Test("An oversize line at end of input without LF")
    func oversizeAtEnd() {
        let reader = LineReader(source: ChunkedSource("a\n" + String(repeating: "y", count: 50), chunk: 3), maxLineBytes: 10)
        #expect(frames(reader) == [.line("a"), .oversize(50)])
    }

    /// Found by fuzz/FuzzLineFramer.swift: a skipped last line ending in CR reported the CR in its length, where a kept
    /// last line drops it.
    @Test("An oversize last line ending in CR (no LF) is measured without the CR, as a kept last line is", arguments: [1, 3, 16])
    func oversizeAtEndWithCR(chunk: Int) {
        let reader = LineReader(source: ChunkedSource("abc\r\n" + String(repeating: "y", count: 20) + "\r", chunk: chunk), maxLineBytes: 2)
        #expect(frames(reader) == [.oversize(3), .oversize(20)])
    }

    @Test("Exactly the limit, with CRLF, is accepted")
    func limitWithCRLF() {
        let reader = LineReader(source: ChunkedSource("abcd\r\nabcde\r\n", chunk: 1), maxLineBytes: 4, initialCapacity: 1)
        #expect(frames(reader) == [.line("abcd"), .oversize(5)])
    }

    @Test("An oversize line is never buffered whole: the buffer stays within the limit")
    func oversizeDoesNotBuffer() {
        // 10 MB line with a 1 KiB limit: reading it must not grow memory past the limit. The reader's buffer is
        // private, so check indirectly: the source is drained in buffer-sized reads of at most limit + 2 bytes.
        struct CountingSource: ByteSource {
            var remaining: Int
            var largestRead = 0
            var trailer: [UInt8] = Array("\nok\n".utf8)
            mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
                largestRead = max(largestRead, buffer.count)
                if remaining > 0 {
                    let count = min(remaining, buffer.count)
                    for index in 0..<count { buffer[index] = UInt8(ascii: "z") }
                    remaining -= count
                    return count
                }
                let count = min(trailer.count, buffer.count)
                for index in 0..<count { buffer[index] = trailer[index] }
                trailer.removeFirst(count)
                return count
            }
        }
        let reader = LineReader(source: CountingSource(remaining: 10_000_000), maxLineBytes: 1024)
        #expect(frames(reader) == [.oversize(10_000_000), .line("ok")])
        #expect(reader.source.largestRead <= 1026)
    }

    @Test("Partial lines are not rescanned: a line fed byte by byte costs one read per byte")
    func readsPerByte() {
        let line = String(repeating: "q", count: 300) + "\n"
        let reader = LineReader(source: ChunkedSource(line, chunk: 1), maxLineBytes: 1 << 20, initialCapacity: 16)
        #expect(frames(reader) == [.line(String(repeating: "q", count: 300))])
        #expect(reader.source.reads == 302)  // 301 bytes, then one read that sees end of input
    }
}

@Suite("LineReader: releasing a long line's pages")
struct LineReaderReleaseTests {
    @Test("the next lines read correctly after a long line's pages were released")
    func releaseThenRead() {
        let long = String(repeating: "abcdefgh", count: 300_000)  // 2.4 MB
        let input = long + "\nsecond\n" + long + "\nthird"
        let reader = LineReader(source: ChunkedSource(input, chunk: 100_000), maxLineBytes: 4 << 20)
        guard case .line(let first) = reader.next() else { Issue.record("no first line"); return }
        #expect(first.count == long.utf8.count)
        // Release all but the end of the line; its tail still holds what it held.
        reader.release(first, below: first.count - 10)
        #expect(String(decoding: UnsafeRawBufferPointer(rebasing: first[(first.count - 8)...]), as: UTF8.self) == "abcdefgh")
        #expect(frames(reader) == [.line("second"), .line(long), .line("third")])
    }
}
