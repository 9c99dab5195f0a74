import ForziumJSON
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Receives complete protocol lines. `LineWriter` is the real one; tests collect lines in memory.
public protocol LineSink: AnyObject, Sendable {
    /// Writes one whole line (ending in LF); false once the output is closed.
    @discardableResult func write(_ line: [UInt8]) -> Bool
    /// True once output failed; the server then stops reading.
    var isClosed: Bool { get }
    /// Writes one line given in parts: `body` calls `emit` with each part in order (the last ends in LF), and no other
    /// line comes out in between. False once the output is closed. The default collects the parts and writes the line.
    @discardableResult func writeLine(parts body: (_ emit: (UnsafeRawBufferPointer) -> Void) -> Void) -> Bool
    /// Writes several whole lines at once (each ending in LF), in order, with nothing in between. The default writes
    /// them one by one; `LineWriter` writes them with one write(2).
    @discardableResult func write(lines: [UInt8]) -> Bool
}

extension LineSink {
    @discardableResult
    public func write(lines: [UInt8]) -> Bool {
        var start = 0
        while start < lines.count {
            let end = lines[start...].firstIndex(of: 0x0A).map { $0 + 1 } ?? lines.count
            guard write(Array(lines[start..<end])) else { return false }
            start = end
        }
        return true
    }

    @discardableResult
    public func writeLine(parts body: (_ emit: (UnsafeRawBufferPointer) -> Void) -> Void) -> Bool {
        var line: [UInt8] = []
        body { line.append(contentsOf: $0) }
        return write(line)
    }
}

extension LineWriter: LineSink {
    @discardableResult
    public func write(lines: [UInt8]) -> Bool { write(lines) }
}

/// How the serve loop runs requests. In both modes the reading thread keeps reading while requests compute, and
/// handles control messages (`ping`, `$/cancelRequest`) the moment it reads them, so a cancel reaches a request that
/// is queued or computing and a ping is answered while others compute. At most `maxInFlight` requests are queued or
/// computing: beyond that the reader waits for a slot (back-pressure: it stops reading, nothing is refused).
public enum ServeConcurrency: Sendable, Equatable {
    /// One compute thread takes the requests in order, so replies come in request order (a ping's reply may pass
    /// them). A line shorter than `inlineBelow` bytes that arrives while nothing is queued is answered on the reading
    /// thread itself (no hand-off; order is kept since nothing is pending) — unless it names a shared-memory matrix,
    /// whose work its length says nothing about.
    case ordered(maxInFlight: Int, inlineBelow: Int = RPCServer.defaultInlineBelow)
    /// Requests compute on `workers` dedicated threads; each reply is written as soon as it is ready (out of order;
    /// ids tell replies apart). Lines shorter than `inlineBelow` bytes are answered on the reading thread itself:
    /// such a request is at most a few microseconds of work, less than handing it to another thread, and it cannot
    /// hold up the reader for long (a line naming a shared-memory matrix always goes to a worker).
    case concurrent(maxInFlight: Int, workers: Int, inlineBelow: Int = RPCServer.defaultInlineBelow)
}

/// Why the serve loop stopped.
public enum ServeEnd: Sendable, Equatable {
    /// Input ended and every request read was answered.
    case endOfInput
    /// Output could not be written any more (the reader went away).
    case outputClosed
}

/// Counts of what the serve loop saw.
public struct ServeSummary: Sendable, Equatable {
    public var end: ServeEnd
    /// Lines handed to the dispatcher (blank lines not counted).
    public var lines: Int
    /// Lines rejected for exceeding the length limit.
    public var oversizeLines: Int
}

/// The stdio serve loop: frames lines, dispatches each, writes replies through one sink.
public struct RPCServer: Sendable {
    public let dispatcher: RPCDispatcher
    public let concurrency: ServeConcurrency

    /// Default size under which the concurrent loop answers a line on the reading thread (a 2 KiB request holds at
    /// most about a thousand numbers as decimal text). A line carrying its matrices in base64 may be
    /// `base64InlineFactor` times as long (see there).
    public static let defaultInlineBelow = 2048

    /// How much longer than `inlineBelow` a line whose matrices are base64 (and none in shared memory) may be and still
    /// be answered on the reading thread. A double takes 10⅔ bytes of base64 against as few as 2 of decimal text, so
    /// such a line holds no more numbers, and no more work, than a decimal line under the limit — and handing a line
    /// to a worker and waking it costs more than that work on a busy machine: a 16×16 multiply sent through the
    /// gateway in binary form (2.7 KiB) took 68–90 µs of engine CPU per request handed over, 28–33 µs answered on
    /// the reading thread (2-vCPU AMD EPYC, wrk, five alternating pairs).
    public static let base64InlineFactor = 4

    /// Inline replies gathered before they are written together (see `serve`).
    static let batchBytes = 64 << 10

    /// Lines at least this long have their pages released while they are parsed (`LineReader.release(_:below:)`).
    public static let releaseLinesFrom = 4 << 20

    /// Lines that reach this many bytes before their end has arrived are parsed as they are read (give the reader
    /// `LineReader(…, streamLinesFrom: RPCServer.streamLinesFrom)`): such a line is never resident whole, and its
    /// parse overlaps its transfer.
    public static let streamLinesFrom = 1 << 20

    public init(dispatcher: RPCDispatcher, concurrency: ServeConcurrency) {
        self.dispatcher = dispatcher
        self.concurrency = concurrency
    }

    /// Serves until input ends (returning once every request read has been answered) or output closes.
    /// Blank lines are ignored; an oversize line is answered with -32600 (id null) and serving goes on.
    /// `onOversize` hears the length of each line rejected for exceeding the limit (for logging).
    ///
    /// Every line that is not answered inline is decoded on the reading thread: its text is never copied for a
    /// worker (the worker gets the compact parsed value and the read buffer is free for the next line), and its
    /// requests are registered as in flight before the next line is read, so a `$/cancelRequest` right behind
    /// finds them.
    public func serve<Source: ByteSource>(
        reader: LineReader<Source>,
        sink: any LineSink,
        onOversize: (Int) -> Void = { _ in }
    ) -> ServeSummary {
        var summary = ServeSummary(end: .endOfInput, lines: 0, oversizeLines: 0)
        let context = RPCContext(sink: { line in sink.write(line) })
        let pool: WorkerPool
        let inlineBelow: Int
        let ordered: Bool
        switch concurrency {
        case .ordered(let maxInFlight, let inline):
            pool = WorkerPool(threads: 1, limit: max(1, maxInFlight))
            inlineBelow = inline
            ordered = true
        case .concurrent(let maxInFlight, let workers, let inline):
            pool = WorkerPool(threads: max(1, workers), limit: max(1, maxInFlight))
            inlineBelow = inline
            ordered = false
        }
        let dispatcher = self.dispatcher
        /// Writes a reply that needs no computing: at once, unless request order makes it wait for the replies
        /// queued before it.
        func emit(_ line: [UInt8]) {
            if ordered && !pool.isIdle {
                pool.submit { sink.write(line) }
            } else {
                sink.write(line)
            }
        }
        // Replies answered inline on the reading thread while more lines are already buffered go out together, in
        // one write, once the buffered lines are answered (or 64 KiB of replies have gathered): a client keeping many
        // small requests in flight gets one write(2) per read(2), not one per reply. Only where replies may come in
        // any order (the concurrent loop); the ordered loop writes each as it goes.
        let batching = !ordered
        var batch: [UInt8] = []
        func flushBatch() {
            guard !batch.isEmpty else { return }
            sink.write(lines: batch)
            batch.removeAll(keepingCapacity: true)
        }
        /// Answers a decoded line that is not answered inline: a parse error at once, a control message here and now,
        /// a request on the pool.
        func admit(_ decoded: RPCDispatcher.DecodedLine) {
            switch decoded {
            case .rejected(let errorLine):
                emit(errorLine)
            case .message(let message):
                switch dispatcher.intake(message, context: context) {
                case .handled(let reply):
                    if let reply { sink.write(reply) }
                case .admitted(let admitted):
                    pool.submit { dispatcher.send(admitted, context: context, to: sink) }
                }
            }
        }
        reading: while !sink.isClosed {
            switch reader.next() {
            case .end:
                break reading
            case .oversize(let byteCount):
                flushBatch()
                summary.oversizeLines += 1
                onOversize(byteCount)
                emit(RPCDispatcher.errorLine(id: .null, error: .oversizeLine(byteCount: byteCount, limit: reader.maxLineBytes)))
            case .partial(let window):
                // A long line, parsed as it arrives on this thread (as any long line is): its pages go back as the parser
                // leaves them. Whatever the parse made of it, a line over the limit is answered as such.
                flushBatch()
                let decoded = dispatcher.decode(window: window)
                switch reader.finishStreamedLine() {
                case .oversize(let byteCount):
                    summary.oversizeLines += 1
                    onOversize(byteCount)
                    emit(RPCDispatcher.errorLine(id: .null, error: .oversizeLine(byteCount: byteCount, limit: reader.maxLineBytes)))
                case .line:
                    guard let decoded else { continue }  // blank
                    summary.lines += 1
                    admit(decoded)
                }
            case .line(let bytes):
                if Self.isBlank(bytes) { continue }
                summary.lines += 1
                if bytes.count < inlineBelow * Self.base64InlineFactor, !ordered || pool.isIdle,
                   case let form = Self.matrixForm(bytes), form != .shared, bytes.count < inlineBelow || form == .base64 {
                    let reply = dispatcher.reply(to: bytes, context: context)
                    if batching {
                        if let reply { batch.append(contentsOf: reply) }
                        if batch.count >= Self.batchBytes || !reader.hasCompleteLine { flushBatch() }
                    } else if let reply {
                        sink.write(reply)
                    }
                    continue
                }
                flushBatch()
                // A long line's pages go back to the system as the parser leaves them behind: the text and the values
                // made from it are never both resident in full.
                admit(bytes.count >= Self.releaseLinesFrom
                    ? dispatcher.decode(bytes, release: { [reader] offset in reader.release(bytes, below: offset) })
                    : dispatcher.decode(bytes))
            }
        }
        flushBatch()
        pool.finish()
        if sink.isClosed { summary.end = .outputClosed }
        return summary
    }

    /// How a line carries its matrices, as far as the reading thread needs to know (`matrixForm`).
    enum MatrixForm {
        /// No binary matrix: decimal text, if any.
        case text
        /// Base64 binary matrices, none in shared memory.
        case base64
        /// At least one shared-memory matrix: a short line that can still carry any amount of work, so it is never
        /// answered on the reading thread (which must stay free for pings and cancels).
        case shared
    }

    /// Whether a line names a `"shm"` or a `"base64"` member (a binary matrix's), by the key before each colon.
    static func matrixForm(_ bytes: UnsafeRawBufferPointer) -> MatrixForm {
        // Every colon of the line is a candidate (a line has few: one per member).
        guard let base = bytes.baseAddress else { return .text }
        var form = MatrixForm.text
        var index = 0
        while index < bytes.count {
            guard let hit = memchr(base + index, Int32(UInt8(ascii: ":")), bytes.count - index) else { break }
            let colon = base.distance(to: UnsafeRawPointer(hit))
            if Self.endsWith(sharedMemoryKey, bytes, before: colon) { return .shared }
            if Self.endsWith(base64Key, bytes, before: colon) { form = .base64 }
            index = colon + 1
        }
        return form
    }

    private static func endsWith(_ key: [UInt8], _ bytes: UnsafeRawBufferPointer, before end: Int) -> Bool {
        end >= key.count && UnsafeRawBufferPointer(rebasing: bytes[(end - key.count)..<end]).elementsEqual(key)
    }

    /// What precedes the colon of a member naming a shared-memory matrix, and of a base64 matrix's payload.
    private static let sharedMemoryKey: [UInt8] = Array(#""shm""#.utf8)
    private static let base64Key: [UInt8] = Array(#""base64""#.utf8)

    /// Only spaces, tabs and CRs.
    static func isBlank(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for byte in bytes where byte != 0x20 && byte != 0x09 && byte != 0x0D { return false }
        return true
    }
}
