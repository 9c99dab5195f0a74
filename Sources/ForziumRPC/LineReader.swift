import ForziumJSON
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a `LineReader` gets its bytes from.
public protocol ByteSource {
    /// Reads at most `buffer.count` bytes into `buffer`; returns how many were read, 0 at end of input.
    /// A read error is reported as end of input.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int
}

/// Reads a file descriptor with read(2), retrying on EINTR. The caller keeps ownership of the descriptor.
public struct FileDescriptorSource: ByteSource {
    /// The descriptor read from (e.g. 0 for stdin).
    public let descriptor: Int32
    /// errno of the read error that ended input, if one did.
    public private(set) var readError: Int32?

    public init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        while true {
            #if canImport(Glibc)
            let count = Glibc.read(descriptor, buffer.baseAddress, buffer.count)
            #else
            let count = Darwin.read(descriptor, buffer.baseAddress, buffer.count)
            #endif
            if count >= 0 { return count }
            if errno == EINTR { continue }
            readError = errno
            return 0
        }
    }
}

/// What `LineReader.next()` found.
public enum LineFrame {
    /// One line without its terminating LF (and without a CR right before it). The bytes live in the reader's
    /// buffer and are valid only until the next call to `next()`.
    case line(UnsafeRawBufferPointer)
    /// The start of a line of at least `streamLinesFrom` bytes whose end has not arrived yet (only from a reader made
    /// with `streamLinesFrom`). Read the line through the window — its bytes are read from the source as the window
    /// is advanced, and the pages of those behind the reader are handed back — then call
    /// `LineReader.finishStreamedLine()` before anything else: it skips what was not read and says how the line ended.
    /// The window is valid until then.
    case partial(any JSONByteWindow)
    /// A line longer than `maxLineBytes`; its bytes were skipped as they streamed by (never buffered whole).
    /// `byteCount` is its length without the line terminator.
    case oversize(byteCount: Int)
    /// End of input: every line has been returned.
    case end
}

/// How a line handed out as `.partial` ended (`LineReader.finishStreamedLine()`).
public enum StreamedLineEnd: Equatable, Sendable {
    /// A line within the limit, of `byteCount` bytes (without its terminator).
    case line(byteCount: Int)
    /// A line longer than `maxLineBytes`; whatever was read from its window is to be dropped.
    case oversize(byteCount: Int)
}

/// Splits a byte stream into LF-terminated lines (CRLF tolerated) with a maximum line length.
///
/// Reads into one reusable buffer, finds LFs with `memchr`, and remembers how far it has scanned, so a line that
/// arrives in many small reads is never rescanned. A line longer than `maxLineBytes` is dropped while it streams in
/// and reported as `.oversize`; reading then goes on with the next line. A final line without LF at end of input is
/// returned like any other line.
///
/// Memory: the buffer is one anonymous mapping of `maxLineBytes + 2` bytes reserved up front (address space only);
/// pages become resident as bytes arrive, so a line costs its own length and never more than the cap — no doubling,
/// no copy into a bigger block (which held old and new blocks at once: 1.5–2× the cap). After a line longer than
/// `4 × initialCapacity` has been consumed the pages past `initialCapacity` are handed back (`MADV_DONTNEED`). The
/// buffer starts on a 2 MiB boundary and asks for huge pages; where it gets them, pages are handed back 2 MiB at a time.
///
/// Streaming (`streamLinesFrom`): a line that reaches that many bytes before its LF has arrived is not buffered whole.
/// It is moved to the front of the buffer and handed out as `.partial`, a `JSONByteWindow` that reads the rest of the
/// line as the parser asks for it and returns (`MADV_DONTNEED`) the pages the parser has left behind, so a line of
/// any length costs a window of about a megabyte, not its length.
public final class LineReader<Source: ByteSource> {
    /// Longest line accepted, in bytes, not counting the LF (or CRLF) that ends it.
    public let maxLineBytes: Int
    /// The byte source (exposed so callers can inspect e.g. a read error).
    public private(set) var source: Source

    /// The line buffer (`maxLineBytes + 2` bytes), at a 2 MiB boundary inside `reservation`.
    private let buffer: UnsafeMutableRawBufferPointer
    /// The whole mapping (the buffer's pages and up to 2 MiB before them to align it).
    private let reservation: UnsafeMutableRawBufferPointer
    /// Pages are handed back in whole multiples of this: 2 MiB where the buffer may have huge pages, else a page.
    private let releaseGranule: Int
    /// Bytes mapped (the reservation rounded up to whole pages).
    private let mappedBytes: Int
    /// Bytes the buffer is expected to keep resident; pages past it are returned after a long line.
    private let initialCapacity: Int
    /// Highest buffer offset written since the pages past `initialCapacity` were last returned.
    private var highWater = 0
    /// Unconsumed bytes are `buffer[start..<end]`.
    private var start = 0
    private var end = 0
    /// `buffer[start..<scanned]` is known to hold no LF.
    private var scanned = 0
    private var atEndOfInput = false
    /// Skipping an oversize line: bytes skipped so far.
    private var discarding: Int?
    /// Whether the last byte skipped was a CR (it belongs to the line terminator if an LF follows).
    private var skippedEndsWithCR = false

    /// Lines that reach this many bytes before their LF are handed out as `.partial` (nil: never).
    public let streamLinesFrom: Int?
    /// The line handed out as `.partial`, while it is read (it starts at buffer offset 0).
    private var streamed: StreamedLine?

    /// State of a line being streamed.
    private struct StreamedLine {
        /// Bytes of the line the window shows (a CR that may belong to the terminator is held back).
        var available = 0
        /// No more bytes will be shown: the line's end is known, input ended, or the line is over the limit.
        var complete = false
        /// The line is over the limit: its parse is to stop.
        var oversize = false
        /// The line's LF, once found, and the line's length without its terminator.
        var lineFeed: Int?
        var length = 0
        /// Pages below this offset have been handed back.
        var releasedBelow = 0
    }

    /// - Parameters:
    ///   - source: where bytes come from.
    ///   - maxLineBytes: longest line accepted (at least 1).
    ///   - initialCapacity: bytes kept resident between long lines.
    ///   - streamLinesFrom: hand out lines that reach this many bytes before their end arrives as `.partial`
    ///     (nil: buffer every line whole).
    public init(source: Source, maxLineBytes: Int = 256 << 20, initialCapacity: Int = 64 << 10, streamLinesFrom: Int? = nil) {
        precondition(maxLineBytes >= 1, "maxLineBytes must be positive")
        precondition(streamLinesFrom.map { $0 >= 1 } ?? true, "streamLinesFrom must be positive")
        self.source = source
        self.streamLinesFrom = streamLinesFrom
        self.maxLineBytes = maxLineBytes
        let capacity = maxLineBytes + 2
        let page = Swift.max(4096, Int(sysconf(Int32(_SC_PAGESIZE))))
        mappedBytes = (capacity + page - 1) / page * page
        #if canImport(Glibc)
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
        #else
        let flags = MAP_PRIVATE | MAP_ANON
        #endif
        // Reserved with room to start on a 2 MiB boundary, so that the kernel can back the buffer with huge pages
        // where it allows them (`MADV_HUGEPAGE`; THP in `madvise` or `always` mode). Every page a line passes
        // through is written by `read` and, for a long line, handed back behind the parse: the next long line faults
        // them in again. In 4 KiB pages that is 2,600 faults for a 10 MB line (about 2 µs each on a virtual
        // machine); in 2 MiB pages, six.
        let hugePage = 2 << 20
        let reserved = mappedBytes + hugePage
        let mapped = mmap(nil, reserved, PROT_READ | PROT_WRITE, flags, -1, 0)
        guard let mapped, mapped != MAP_FAILED else { fatalError("LineReader: cannot reserve \(mappedBytes) bytes") }
        reservation = UnsafeMutableRawBufferPointer(start: mapped, count: reserved)
        let aligned = mapped + (hugePage - Int(bitPattern: mapped) % hugePage) % hugePage
        buffer = UnsafeMutableRawBufferPointer(start: aligned, count: capacity)
        #if os(Linux)
        releaseGranule = madvise(aligned, mappedBytes, Int32(MADV_HUGEPAGE)) == 0 ? hugePage : page
        #else
        releaseGranule = page
        #endif
        // Whole granules, so that handing back the pages past it never splits the huge page it ends in.
        self.initialCapacity = Swift.min((Swift.max(page, initialCapacity) + releaseGranule - 1) / releaseGranule * releaseGranule, mappedBytes)
    }

    deinit {
        munmap(reservation.baseAddress, reservation.count)
    }

    /// Whether a whole line is already buffered: `next()` would return it without reading.
    public var hasCompleteLine: Bool {
        guard discarding == nil, start < end else { return false }
        let base = buffer.baseAddress!
        return memchr(base + start, 0x0A, end - start) != nil
    }

    /// The next line, oversize line, or end of input.
    public func next() -> LineFrame {
        precondition(streamed == nil, "LineReader.next() while a .partial line is unfinished")
        while true {
            let base = buffer.baseAddress!
            if let skipped = discarding {
                if start < end, let found = memchr(base + start, 0x0A, end - start) {
                    let length = endDroppedLine(at: base.distance(to: found), skipped: skipped, skippedEndsWithCR: skippedEndsWithCR)
                    discarding = nil
                    return .oversize(byteCount: length)
                }
                let total = skipped + (end - start)
                if end > start { skippedEndsWithCR = buffer[end - 1] == 0x0D }
                start = 0
                end = 0
                scanned = 0
                if atEndOfInput {
                    // As for a last line kept (below): a CR at the very end is dropped like a line terminator's.
                    discarding = nil
                    return .oversize(byteCount: skippedEndsWithCR && total > 0 ? total - 1 : total)
                }
                discarding = total
                fill()
                continue
            }

            if scanned < end, let found = memchr(base + scanned, 0x0A, end - scanned) {
                let lf = base.distance(to: found)
                let lineStart = start
                var lineEnd = lf
                if lineEnd > lineStart, buffer[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                start = lf + 1
                scanned = start
                if lineEnd - lineStart > maxLineBytes { return .oversize(byteCount: lineEnd - lineStart) }
                return .line(UnsafeRawBufferPointer(start: base + lineStart, count: lineEnd - lineStart))
            }
            scanned = end

            let pending = end - start
            if pending > maxLineBytes + 1 {
                // Too long whatever follows (one byte of slack for a CR before the LF): skip it as it streams by.
                discarding = pending
                skippedEndsWithCR = buffer[end - 1] == 0x0D
                start = 0
                end = 0
                scanned = 0
                continue
            }
            if let streamFrom = streamLinesFrom, pending >= streamFrom, !atEndOfInput {
                return beginStreaming()
            }
            if atEndOfInput {
                guard pending > 0 else { return .end }
                var lineEnd = end
                if buffer[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                let lineStart = start
                start = end
                scanned = end
                if lineEnd - lineStart > maxLineBytes { return .oversize(byteCount: lineEnd - lineStart) }
                return .line(UnsafeRawBufferPointer(start: base + lineStart, count: lineEnd - lineStart))
            }
            makeRoom()
            fill()
        }
    }

    /// Hands back the whole pages of `line` (the last `.line` returned, not yet consumed) below its byte `offset`: its
    /// reader is done with them. They read as zeros afterwards; the buffer is written before it is read again.
    public func release(_ line: UnsafeRawBufferPointer, below offset: Int) {
        guard let lineStart = line.baseAddress, offset > 0 else { return }
        let base = UnsafeRawPointer(buffer.baseAddress!)
        let page = releaseGranule
        let from = (base.distance(to: lineStart) + page - 1) / page * page
        let to = (base.distance(to: lineStart) + Swift.min(offset, line.count)) / page * page
        guard from >= 0, to > from, to <= mappedBytes else { return }
        _ = madvise(buffer.baseAddress! + from, to - from, MADV_DONTNEED)
    }

    // MARK: Streaming a long line

    /// Moves the partial line to the front (so that it can grow to the cap in place) and hands it out.
    private func beginStreaming() -> LineFrame {
        if start > 0 {
            let base = buffer.baseAddress!
            memmove(base, base + start, end - start)
            end -= start
            scanned -= start
            start = 0
        }
        streamed = StreamedLine()
        updateStreamed()
        return .partial(StreamWindow(reader: self))
    }

    /// Brings the streamed line's view up to date with the bytes buffered (looking for its LF in the new ones).
    private func updateStreamed() {
        guard var line = streamed, !line.complete else { return }
        defer { streamed = line }
        let base = buffer.baseAddress!
        if scanned < end, let found = memchr(base + scanned, 0x0A, end - scanned) {
            let lf = base.distance(to: found)
            line.lineFeed = lf
            line.length = lf > 0 && buffer[lf - 1] == 0x0D ? lf - 1 : lf
            line.available = Swift.min(line.length, maxLineBytes)
            line.complete = true
            line.oversize = line.length > maxLineBytes
            return
        }
        scanned = end
        let pending = end - start
        if pending > maxLineBytes + 1 {
            // Over the limit whatever follows: the parser sees no more of it.
            line.complete = true
            line.oversize = true
        } else if atEndOfInput {
            line.length = pending > 0 && buffer[end - 1] == 0x0D ? pending - 1 : pending
            line.available = Swift.min(line.length, maxLineBytes)
            line.complete = true
            line.oversize = line.length > maxLineBytes
        } else {
            // A CR last may be the first half of the terminator: held back until the next byte is known.
            line.available = pending > 0 && buffer[end - 1] == 0x0D ? pending - 1 : pending
        }
    }

    /// The streamed line's window asks for bytes up to `target`, done with those below `keepFrom`.
    fileprivate func advanceStreamed(keepFrom: Int, target: Int) {
        guard var line = streamed else { return }
        let releasable = Swift.min(keepFrom, line.available) / releaseGranule * releaseGranule
        if releasable - line.releasedBelow >= Swift.max(Self.streamReleaseStep, releaseGranule) {
            _ = madvise(buffer.baseAddress! + line.releasedBelow, releasable - line.releasedBelow, MADV_DONTNEED)
            line.releasedBelow = releasable
            streamed = line
        }
        while let current = streamed, !current.complete, current.available < target {
            fill()
            updateStreamed()
        }
    }

    /// Bytes of a streamed line handed back at a time (fewer, larger `madvise` calls).
    static var streamReleaseStep: Int { 1 << 20 }

    fileprivate var streamedAvailable: Int { streamed?.available ?? 0 }
    fileprivate var streamedComplete: Bool { streamed?.complete ?? true }
    fileprivate var streamedOversize: Bool { streamed?.oversize ?? false }
    fileprivate var bufferStart: UnsafePointer<UInt8> {
        UnsafePointer(buffer.baseAddress!.assumingMemoryBound(to: UInt8.self))
    }

    /// Ends the line handed out as `.partial`: skips the rest of it if it was not read to its end, and says whether it
    /// was within the limit. `next()` then goes on with the next line.
    public func finishStreamedLine() -> StreamedLineEnd {
        guard let line = streamed else { preconditionFailure("finishStreamedLine() without a .partial line") }
        streamed = nil
        let length: Int
        if let lf = line.lineFeed {
            length = line.length
            start = lf + 1
            scanned = start
        } else if atEndOfInput && end - start <= maxLineBytes + 1 {
            length = line.length
            start = end
            scanned = end
        } else {
            length = skipRestOfLine()
        }
        return length > maxLineBytes ? .oversize(byteCount: length) : .line(byteCount: length)
    }

    /// Ends a line that was dropped as it streamed by at the LF at buffer offset `lf`: moves past it and returns the
    /// line's length without its terminator — the `skipped` bytes already dropped plus those before `lf`, less a CR
    /// right before the LF (in the buffer, or as the last byte dropped when the LF starts the buffer).
    private func endDroppedLine(at lf: Int, skipped: Int, skippedEndsWithCR: Bool) -> Int {
        var length = skipped + (lf - start)
        if lf > start ? buffer[lf - 1] == 0x0D : skippedEndsWithCR { length -= 1 }
        start = lf + 1
        scanned = start
        return length
    }

    /// Reads and drops bytes up to the end of the line at `start` (never holding more than a read's worth); returns
    /// the line's length without its terminator.
    private func skipRestOfLine() -> Int {
        var skipped = 0
        var skippedCR = false
        while true {
            let base = buffer.baseAddress!
            if scanned < end, let found = memchr(base + scanned, 0x0A, end - scanned) {
                return endDroppedLine(at: base.distance(to: found), skipped: skipped, skippedEndsWithCR: skippedCR)
            }
            if end > start { skippedCR = buffer[end - 1] == 0x0D }
            skipped += end - start
            start = 0
            end = 0
            scanned = 0
            if atEndOfInput { return skippedCR && skipped > 0 ? skipped - 1 : skipped }
            fill()
        }
    }

    /// Ensures there is free space after `end`: rewinds when empty, moves a partial line to the front, or grows.
    private func makeRoom() {
        if start == end {
            start = 0
            end = 0
            scanned = 0
            releaseLongLinePages()
            return
        }
        // The buffer spans the cap, so a full buffer holds a partial line that can be moved to the front (a line
        // filling it all is over the cap and already being skipped).
        guard end == buffer.count, start > 0 else { return }
        let base = buffer.baseAddress!
        memmove(base, base + start, end - start)
        end -= start
        scanned -= start
        start = 0
    }

    /// A long line has been handed out and consumed: give its pages back rather than hold them while idle.
    private func releaseLongLinePages() {
        guard highWater > 4 * initialCapacity else { return }
        let from = initialCapacity
        if mappedBytes > from { _ = madvise(buffer.baseAddress! + from, mappedBytes - from, MADV_DONTNEED) }
        highWater = 0
    }

    private func fill() {
        // Read in slices of at most 1 MiB (or what is free), so that a source that could return more at once (a file)
        // does not make more pages resident than the line needs.
        let free = UnsafeMutableRawBufferPointer(rebasing: buffer[end ..< Swift.min(buffer.count, end + (1 << 20))])
        let count = source.read(into: free)
        if count <= 0 {
            atEndOfInput = true
        } else {
            end += count
            highWater = Swift.max(highWater, end)
        }
    }
}

/// The window of a line being streamed: a view of the reader's buffer, which reads on as it is advanced.
private final class StreamWindow<Source: ByteSource>: JSONByteWindow {
    let reader: LineReader<Source>

    init(reader: LineReader<Source>) {
        self.reader = reader
    }

    var bytes: UnsafePointer<UInt8> { reader.bufferStart }
    var available: Int { reader.streamedAvailable }
    var isComplete: Bool { reader.streamedComplete }
    var isAbandoned: Bool { reader.streamedOversize }

    func advance(keepFrom: Int, target: Int) {
        reader.advanceStreamed(keepFrom: keepFrom, target: target)
    }
}
