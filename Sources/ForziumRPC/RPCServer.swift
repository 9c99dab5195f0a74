import ForziumJSON

/// Receives complete protocol lines. `LineWriter` is the real one; tests collect lines in memory.
public protocol LineSink: AnyObject, Sendable {
    /// Writes one whole line (ending in LF); false once the output is closed.
    @discardableResult func write(_ line: [UInt8]) -> Bool
    /// True once output failed; the server then stops reading.
    var isClosed: Bool { get }
}

extension LineWriter: LineSink {}

/// How the serve loop runs requests.
public enum ServeConcurrency: Sendable, Equatable {
    /// One at a time, in order, on the reading thread; replies come in request order.
    case sequential
    /// The reader keeps reading while earlier requests compute on `workers` dedicated threads; each reply is written
    /// as soon as it is ready (out of order; ids tell replies apart). At most `maxInFlight` requests are queued or
    /// running: beyond that the reader waits for a slot (back-pressure: it stops reading, nothing is refused).
    /// Lines shorter than `inlineBelow` bytes are answered on the reading thread itself: such a request is at most a
    /// few microseconds of work, less than handing it to another thread, and it cannot hold up the reader for long.
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
    /// most a few hundred numbers).
    public static let defaultInlineBelow = 2048

    public init(dispatcher: RPCDispatcher, concurrency: ServeConcurrency = .sequential) {
        self.dispatcher = dispatcher
        self.concurrency = concurrency
    }

    /// Serves until input ends (returning once every request read has been answered) or output closes.
    /// Blank lines are ignored; an oversize line is answered with -32600 (id null) and serving goes on.
    /// `onOversize` hears the length of each line rejected for exceeding the limit (for logging).
    public func serve<Source: ByteSource>(
        reader: LineReader<Source>,
        sink: any LineSink,
        onOversize: (Int) -> Void = { _ in }
    ) -> ServeSummary {
        var summary = ServeSummary(end: .endOfInput, lines: 0, oversizeLines: 0)
        let context = RPCContext(sink: { line in sink.write(line) })
        var pool: WorkerPool?
        var inlineBelow = 0
        if case .concurrent(let maxInFlight, let workers, let inline) = concurrency {
            pool = WorkerPool(threads: max(1, workers), limit: max(1, maxInFlight))
            inlineBelow = inline
        }
        let dispatcher = self.dispatcher
        reading: while !sink.isClosed {
            switch reader.next() {
            case .end:
                break reading
            case .oversize(let byteCount):
                summary.oversizeLines += 1
                onOversize(byteCount)
                sink.write(RPCDispatcher.errorLine(id: .null, error: .oversizeLine(byteCount: byteCount, limit: reader.maxLineBytes)))
            case .line(let bytes):
                if Self.isBlank(bytes) { continue }
                summary.lines += 1
                if let pool, bytes.count >= Self.decodeOnReaderAbove {
                    // A large line (a matrix request) is parsed here, so its text is never copied for the worker: the
                    // worker gets the compact parsed value and the read buffer is released for the next line.
                    switch dispatcher.decode(bytes) {
                    case .rejected(let errorLine):
                        sink.write(errorLine)
                    case .message(let message):
                        pool.submit {
                            if let reply = dispatcher.reply(to: message, context: context) { sink.write(reply) }
                        }
                    }
                } else if let pool, bytes.count >= inlineBelow {
                    let line = [UInt8](bytes)
                    pool.submit {
                        let reply = line.withUnsafeBytes { dispatcher.reply(to: $0, context: context) }
                        if let reply { sink.write(reply) }
                    }
                } else if let reply = dispatcher.reply(to: bytes, context: context) {
                    sink.write(reply)
                }
            }
        }
        pool?.finish()
        if sink.isClosed { summary.end = .outputClosed }
        return summary
    }

    /// Lines at least this long are decoded on the reading thread in concurrent mode (see `serve`).
    static let decodeOnReaderAbove = 1 << 20

    /// Only spaces, tabs and CRs.
    static func isBlank(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for byte in bytes where byte != 0x20 && byte != 0x09 && byte != 0x0D { return false }
        return true
    }
}
