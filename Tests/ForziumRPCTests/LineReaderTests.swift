import ForziumJSON
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
        case .partial(let window):
            // Read the whole line through the window, then end it.
            while !window.isComplete { window.advance(keepFrom: 0, target: Int.max) }
            let text = String(decoding: UnsafeBufferPointer(start: window.bytes, count: window.available), as: UTF8.self)
            switch reader.finishStreamedLine() {
            case .line(let count):
                #expect(count == text.utf8.count)
                result.append(.line(text))
            case .oversize(let count):
                result.append(.oversize(count))
            }
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

@Suite("LineReader: streaming long lines")
struct LineReaderStreamingTests {
    static let input: String = {
        let long = String(repeating: "abcdefgh", count: 40)
        return "short\n" + long + "\r\n" + long + "x\n\n" + long + "\r" + long + "\n" + String(repeating: "z", count: 700)
            + "\r\nok\r\n" + long + "\r\r\n" + long
    }()

    @Test("Lines streamed through the window come out as when buffered whole, whatever the read size and limit",
          arguments: [1, 2, 3, 8, 64, 4096])
    func sameFrames(chunk: Int) {
        for maxLineBytes in [64, 321, 322, 330, 1 << 20] {
            for streamFrom in [1, 5, 100] {
                let plain = frames(LineReader(source: ChunkedSource(Self.input, chunk: chunk), maxLineBytes: maxLineBytes, initialCapacity: 4))
                let streamed = frames(LineReader(
                    source: ChunkedSource(Self.input, chunk: chunk), maxLineBytes: maxLineBytes, initialCapacity: 4,
                    streamLinesFrom: streamFrom))
                #expect(streamed == plain, "limit \(maxLineBytes), streaming from \(streamFrom)")
            }
        }
    }

    @Test("A streamed line left unread is skipped to its end; its length (and whether it is over the limit) is still told",
          arguments: [1, 7, 4096])
    func abandoned(chunk: Int) {
        let long = String(repeating: "q", count: 5000)
        let input = long + "\r\nnext\n" + long + "\nlast"
        for (limit, first) in [(1 << 20, StreamedLineEnd.line(byteCount: 5000)), (4999, .oversize(byteCount: 5000))] {
            let reader = LineReader(source: ChunkedSource(input, chunk: chunk), maxLineBytes: limit, initialCapacity: 4, streamLinesFrom: 16)
            guard case .partial(let window) = reader.next() else {
                Issue.record("long line not streamed")
                continue
            }
            #expect(window.available >= 16 && window.available < 5000)
            window.advance(keepFrom: 0, target: 100)
            #expect(window.bytes[99] == UInt8(ascii: "q"))
            #expect(reader.finishStreamedLine() == first)
            #expect(frames(reader) == [.line("next"), limit == 4999 ? .oversize(5000) : .line(long), .line("last")])
        }
    }

    @Test("A CR is held back until the byte after it is known")
    func heldBackCR() {
        let reader = LineReader(source: ChunkedSource("abcdefgh\r", chunk: 9), maxLineBytes: 100, streamLinesFrom: 4)
        // One read of 9 bytes ends in the CR: the window shows 8 until it is known what follows.
        guard case .partial(let window) = reader.next() else {
            Issue.record("not streamed")
            return
        }
        #expect(window.available == 8 && !window.isComplete)
        window.advance(keepFrom: 0, target: 9)
        #expect(window.available == 8 && window.isComplete)  // end of input: a CR last is dropped
        #expect(reader.finishStreamedLine() == .line(byteCount: 8))
        #expect(frames(reader) == [])
    }

    @Test("Pages behind the parser are handed back: the bytes below keepFrom read as zeros, the rest are intact")
    func releases() {
        let long = String(repeating: "0123456789", count: 400_000)  // 4 MB
        let reader = LineReader(source: ChunkedSource(long + "\nafter\n", chunk: 65_536), maxLineBytes: 8 << 20, streamLinesFrom: 1 << 20)
        guard case .partial(let window) = reader.next() else {
            Issue.record("not streamed")
            return
        }
        window.advance(keepFrom: 0, target: 3 << 20 + 100)
        #expect(window.bytes[0] == UInt8(ascii: "0") && window.bytes[(2 << 20) + 5] != 0)
        // Nothing more to read: only hands pages back, whole ones (2 MiB where the buffer has huge pages), below keepFrom.
        window.advance(keepFrom: (2 << 20) + 100, target: 3 << 20 + 100)
        #expect(window.bytes[0] == 0 && window.bytes[(1 << 20) + 5] == 0 && window.bytes[(2 << 20) - 1] == 0)
        #expect(window.bytes[2 << 20] == UInt8(ascii: "0") + UInt8((2 << 20) % 10))
        #expect(window.bytes[3 << 20] == UInt8(ascii: "0") + UInt8((3 << 20) % 10))
        while !window.isComplete { window.advance(keepFrom: 3 << 20, target: Int.max) }
        #expect(window.available == long.utf8.count)
        #expect(reader.finishStreamedLine() == .line(byteCount: long.utf8.count))
        #expect(frames(reader) == [.line("after")])
    }
}
