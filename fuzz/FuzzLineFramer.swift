// libFuzzer target: the line framer (LineReader). Built by scripts/fuzz.sh with `-sanitize=fuzzer`.
//
// The first two input bytes choose the cap (1…64 bytes) and how the rest arrives (reads of 1…16 bytes); the frames
// must equal a plain split on LF (a CR right before the LF dropped; a last line without LF kept when not empty), with
// every piece longer than the cap reported as oversize with its length — also when lines are streamed (`.partial`).
import ForziumRPC

struct ChoppedSource: ByteSource {
    let bytes: [UInt8]
    let step: Int
    var position = 0

    mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let count = min(step, buffer.count, bytes.count - position)
        if count <= 0 { return 0 }
        for i in 0 ..< count { buffer[i] = bytes[position + i] }
        position += count
        return count
    }
}

enum Frame: Equatable {
    case line([UInt8])
    case oversize(Int)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLineFramer(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let cap = Int(data[0] % 64) + 1
    let step = Int(data[1] % 16) + 1
    let body = Array(UnsafeBufferPointer(start: data + 2, count: size - 2))

    var expected: [Frame] = []
    var pieces = body.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
    if body.last == 0x0A || body.isEmpty { pieces.removeLast() }
    for var piece in pieces {
        if piece.last == 0x0D { piece.removeLast() }
        expected.append(piece.count > cap ? .oversize(piece.count) : .line(piece))
    }

    // Plain, and streaming lines from `step` bytes on (each streamed line read through its window a few bytes at a
    // time, or abandoned half way when the cap is odd: its length must still be told).
    for streamFrom in [nil, step] {
        let reader = LineReader(source: ChoppedSource(bytes: body, step: step), maxLineBytes: cap, initialCapacity: 8, streamLinesFrom: streamFrom)
        var got: [Frame] = []
        loop: while true {
            switch reader.next() {
            case .line(let bytes): got.append(.line(Array(bytes)))
            case .oversize(let count): got.append(.oversize(count))
            case .partial(let window):
                let abandon = cap % 2 == 1
                var target = 1
                while !window.isComplete && !(abandon && target > cap / 2) {
                    window.advance(keepFrom: 0, target: target)
                    target += step
                }
                let text = Array(UnsafeBufferPointer(start: window.bytes, count: window.available))
                let frame: Frame
                switch reader.finishStreamedLine() {
                case .line(let count):
                    precondition(count >= text.count, "a streamed line shorter than its window")
                    // An abandoned line is known by its length and the bytes read of it.
                    if count > text.count, case .line(let bytes)? = expected.dropFirst(got.count).first,
                       bytes.count == count, Array(bytes.prefix(text.count)) == text {
                        frame = .line(bytes)
                    } else {
                        frame = count == text.count ? .line(text) : .oversize(-count)
                    }
                case .oversize(let count):
                    frame = .oversize(count)
                }
                got.append(frame)
            case .end: break loop
            }
            precondition(got.count <= expected.count + 1, "more frames than lines")
        }
        precondition(got == expected, "cap \(cap), reads of \(step), streaming from \(String(describing: streamFrom)): got \(got), expected \(expected)")
    }
    return 0
}
