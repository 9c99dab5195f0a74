#if canImport(Glibc)
import ForziumJSON
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import ForziumRPC
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// An engine's reply to one request (the protocol module's type).
package typealias EngineResponse = RPCReply

/// Events of a streamed request: row-block notifications, then the final response.
package enum EngineStreamEvent: Sendable {
    /// A `stream.rows` notification line (whole line, no newline).
    case rows([UInt8])
    /// The final response.
    case done(EngineResponse)
}

/// Where an engine's answer to one request goes.
package enum EngineSink: Sendable {
    case single(CheckedContinuation<EngineResponse, any Error>)
    case stream(AsyncThrowingStream<EngineStreamEvent, any Error>.Continuation)

    func fail(_ error: GatewayError) {
        switch self {
        case .single(let c): c.resume(throwing: error)
        case .stream(let c): c.finish(throwing: error)
        }
    }

    func complete(_ response: EngineResponse) {
        switch self {
        case .single(let c): c.resume(returning: response)
        case .stream(let c):
            c.yield(.done(response))
            c.finish()
        }
    }
}

/// One running engine child process: pipes on its stdin/stdout/stderr, a reader thread that drains stdout
/// continuously (so the child never blocks on a full pipe) and frames lines, a stderr thread that forwards
/// to the gateway log, and a serial writer. Requests are multiplexed on the pipe by gateway-assigned ids.
///
/// Ownership: this object owns all three descriptors and closes them; it reaps the child (`waitpid`) on its
/// reader thread after stdout reaches EOF, then calls `onExit` exactly once.
package final class EngineProcess: @unchecked Sendable {
    /// Why the process went away, as seen by the reader thread.
    package struct Exit: Sendable {
        /// Raw `waitpid` status.
        package var status: Int32
        /// True when the gateway asked for it (deadline replacement, shutdown): not counted as a crash.
        package var expected: Bool
        package var description: String
    }

    /// Child process id.
    package let pid: pid_t
    /// Pool slot this process fills.
    package let slot: Int
    /// Incremented on each restart of the slot.
    package let generation: Int
    /// Longest line accepted from the engine before it is treated as broken.
    package let maxLineBytes: Int

    private let stdinFD: Int32
    private let stdoutFD: Int32
    private let stderrFD: Int32
    private let logger: Logger
    private let writeQueue: DispatchQueue
    private let state = NIOLockedValueBox(State())
    private let onExit: @Sendable (EngineProcess, Exit) -> Void

    private struct Pending {
        var sink: EngineSink
        var deadline: ContinuousClock.Instant
    }

    private struct State {
        var pending: [Int: Pending] = [:]
        var closed = false
        var inputClosed = false
        var expectedExit = false
        var exitReason: String?
        /// Lines (or their unwritten tails) waiting for the pipe to drain, in order.
        var writeBacklog: [ByteBuffer] = []
        /// True while the writer queue owns the pipe (backlog being drained).
        var writerActive = false
        /// Close stdin once the backlog is written.
        var closeAfterBacklog = false
    }

    /// Starts `executable` with `arguments`.
    /// - Parameters:
    ///   - onExit: called once from the reader thread after the child is reaped and all its requests failed.
    package init(
        executable: String, arguments: [String], slot: Int, generation: Int, maxLineBytes: Int = 512 << 20,
        logger: Logger, onExit: @escaping @Sendable (EngineProcess, Exit) -> Void
    ) throws {
        var inPipe: [Int32] = [-1, -1], outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        guard forziumPipe2(&inPipe, O_CLOEXEC) == 0 else { throw EngineSpawnError(message: "pipe: \(String(cString: strerror(errno)))") }
        guard forziumPipe2(&outPipe, O_CLOEXEC) == 0 else {
            close(inPipe[0]); close(inPipe[1])
            throw EngineSpawnError(message: "pipe: \(String(cString: strerror(errno)))")
        }
        guard forziumPipe2(&errPipe, O_CLOEXEC) == 0 else {
            close(inPipe[0]); close(inPipe[1]); close(outPipe[0]); close(outPipe[1])
            throw EngineSpawnError(message: "pipe: \(String(cString: strerror(errno)))")
        }
        // 1 MiB pipes instead of 64 KiB: a 10 MB request or result crosses in ten wake-ups, not 160.
        // (Best effort: F_SETPIPE_SZ may be capped by /proc/sys/fs/pipe-max-size.)
        for fd in [inPipe[1], outPipe[0]] { _ = fcntl(fd, 1031 /* F_SETPIPE_SZ */, Int32(1 << 20)) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Children start with default signal dispositions (the gateway ignores SIGPIPE; engines should not).
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        close(inPipe[0]); close(outPipe[1]); close(errPipe[1])
        guard rc == 0 else {
            close(inPipe[1]); close(outPipe[0]); close(errPipe[0])
            throw EngineSpawnError(message: "cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        self.pid = child
        self.slot = slot
        self.generation = generation
        self.maxLineBytes = maxLineBytes
        _ = fcntl(inPipe[1], F_SETFL, fcntl(inPipe[1], F_GETFL) | O_NONBLOCK)
        self.stdinFD = inPipe[1]
        self.stdoutFD = outPipe[0]
        self.stderrFD = errPipe[0]
        var logger = logger
        logger[metadataKey: "engine.pid"] = "\(child)"
        logger[metadataKey: "engine.slot"] = "\(slot)"
        self.logger = logger
        self.onExit = onExit
        self.writeQueue = DispatchQueue(label: "forzium.engine.\(slot).writer")

        let stdoutThread = Thread { [self] in self.readStdout() }
        stdoutThread.name = "engine-\(slot)-stdout"
        stdoutThread.start()
        let stderrThread = Thread { [self] in self.readStderr() }
        stderrThread.name = "engine-\(slot)-stderr"
        stderrThread.start()
    }

    /// Requests sent and not yet answered.
    package var inFlight: Int { state.withLockedValue { $0.pending.count } }

    /// Whether the reader has seen stdout close.
    package var isClosed: Bool { state.withLockedValue { $0.closed } }

    /// Registers `sink` under `id` and writes `line` (one complete JSON-RPC message ending in `\n`).
    /// The write is attempted at once on the non-blocking pipe; whatever does not fit is handed to this engine's
    /// writer queue, which waits for the pipe to drain (so no caller ever blocks on a busy engine).
    /// Fails the sink at once with 502 when the engine is already gone.
    package func send(id: Int, line: [UInt8], deadline: ContinuousClock.Instant, sink: EngineSink) {
        send(id: id, parts: [ByteBuffer(bytes: line)], deadline: deadline, sink: sink)
    }

    /// Like `send(id:line:...)` with the line given as consecutive parts (so a large request body is written from
    /// the buffer it arrived in, never copied into a line first).
    package func send(id: Int, parts: [ByteBuffer], deadline: ContinuousClock.Instant, sink: EngineSink) {
        let fd = stdinFD
        enum Outcome { case done, rejected, handOff }
        let outcome = state.withLockedValue { state -> Outcome in
            guard !state.closed, !state.inputClosed else { return .rejected }
            state.pending[id] = Pending(sink: sink, deadline: deadline)
            if state.writerActive {
                state.writeBacklog.append(contentsOf: parts)
                return .done
            }
            for (index, part) in parts.enumerated() {
                var part = part
                let written = part.withUnsafeReadableBytes { Self.writeSome(fd, $0) }
                if written == part.readableBytes { continue }
                if written > 0 { part.moveReaderIndex(forwardBy: written) }
                state.writeBacklog.append(part)
                state.writeBacklog.append(contentsOf: parts[(index + 1)...])
                state.writerActive = true
                return .handOff
            }
            return .done
        }
        switch outcome {
        case .done: return
        case .rejected:
            sink.fail(GatewayError(.engineFailed, "the engine process exited before the request could be sent"))
        case .handOff:
            writeQueue.async { self.drainBacklog() }
        }
    }

    /// Writes as much of `bytes` as the non-blocking pipe takes now; -1 when the pipe is broken.
    private static func writeSome(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n > 0 { offset += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return offset }
            return offset == 0 ? -1 : offset // EPIPE: the reader sees EOF and fails the pending requests.
        }
        return offset
    }

    /// Runs on the writer queue: writes the backlog in order, waiting (poll) whenever the pipe is full.
    private func drainBacklog() {
        let fd = stdinFD
        while true {
            let next = state.withLockedValue { state -> ByteBuffer? in
                if state.writeBacklog.isEmpty {
                    state.writerActive = false
                    return nil
                }
                return state.writeBacklog.removeFirst()
            }
            guard var chunk = next else { break }
            while chunk.readableBytes > 0 {
                let n = chunk.withUnsafeReadableBytes { Self.writeSome(fd, $0) }
                if n < 0 { break }
                chunk.moveReaderIndex(forwardBy: n)
                if chunk.readableBytes > 0 {
                    var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&pfd, 1, 1000)
                    if isClosed { break }
                }
            }
        }
        let closeNow = state.withLockedValue { state -> Bool in
            guard state.closeAfterBacklog, !state.writerActive else { return false }
            state.closeAfterBacklog = false
            return true
        }
        if closeNow { close(fd) }
    }

    /// Removes the pending request `id` and fails it with `error`; false when it already completed.
    @discardableResult
    package func cancel(id: Int, error: GatewayError) -> Bool {
        let entry = state.withLockedValue { $0.pending.removeValue(forKey: id) }
        guard let entry else { return false }
        entry.sink.fail(error)
        return true
    }

    /// Fails every request whose deadline is before `now` with 504; returns how many.
    package func expire(now: ContinuousClock.Instant) -> Int {
        let expired = state.withLockedValue { state -> [Pending] in
            var out: [Pending] = []
            for (id, entry) in state.pending where entry.deadline <= now {
                out.append(entry)
                state.pending.removeValue(forKey: id)
            }
            return out
        }
        for entry in expired { entry.sink.fail(GatewayError(.deadline, "the request did not finish within its deadline")) }
        return expired.count
    }

    /// Closes the engine's stdin (after queued writes): a well-behaved engine finishes its work and exits.
    package func closeInput() {
        let fd = stdinFD
        let closeNow = state.withLockedValue { state -> Bool in
            if state.inputClosed { return false }
            state.inputClosed = true
            state.expectedExit = true
            if state.writerActive {
                state.closeAfterBacklog = true
                return false
            }
            return true
        }
        if closeNow { close(fd) }
    }

    /// Kills the child (SIGKILL); its in-flight requests then fail with `reason` (502) when the reader sees EOF.
    package func terminate(reason: String, expected: Bool) {
        state.withLockedValue { state in
            if state.exitReason == nil { state.exitReason = reason }
            if expected { state.expectedExit = true }
        }
        kill(pid, SIGKILL)
    }

    // MARK: Reader threads

    private func readStdout() {
        let chunkSize = 1 << 20
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { chunk.deallocate() }
        var partial: [UInt8] = []
        var failure: String?
        readLoop: while true {
            let n = read(stdoutFD, chunk.baseAddress!, chunkSize)
            if n < 0 {
                if errno == EINTR { continue }
                failure = "reading engine stdout failed: \(String(cString: strerror(errno)))"
                break
            }
            if n == 0 { break }
            var start = 0
            let bytes = UnsafeRawBufferPointer(rebasing: chunk[0..<n])
            while start < n {
                guard let nl = memchr(bytes.baseAddress! + start, 0x0A, n - start) else {
                    partial.append(contentsOf: bytes[start..<n])
                    if partial.count > maxLineBytes {
                        failure = "engine sent a line longer than \(maxLineBytes) bytes"
                        break readLoop
                    }
                    break
                }
                let end = bytes.baseAddress!.distance(to: UnsafeRawPointer(nl))
                var line: [UInt8]
                if partial.isEmpty {
                    line = Array(bytes[start..<end])
                } else {
                    partial.append(contentsOf: bytes[start..<end])
                    // Copy out and keep the buffer's capacity: the next large line reuses warm pages.
                    line = Array(partial)
                    partial.removeAll(keepingCapacity: partial.capacity <= 64 << 20)
                }
                if line.last == 0x0D { line.removeLast() }
                start = end + 1
                if !line.isEmpty, let problem = handle(line: line) {
                    failure = problem
                    break readLoop
                }
            }
        }
        finish(failure: failure)
    }

    /// Routes one line; returns a description when the line is protocol garbage.
    private func handle(line: [UInt8]) -> String? {
        switch RPCReplyReader.classify(line) {
        case .response(let id, let response):
            let entry = state.withLockedValue { $0.pending.removeValue(forKey: id) }
            // A response for an id nobody waits on (e.g. the request timed out): drop it.
            entry?.sink.complete(response)
            return nil
        case .rows(let request):
            let sink = state.withLockedValue { $0.pending[request]?.sink }
            if case .stream(let c) = sink { c.yield(.rows(line)) }
            return nil
        case .otherNotification:
            return nil
        case .garbage(let why):
            let preview = String(decoding: line.prefix(120), as: UTF8.self)
            logger.error("engine protocol error: \(why)", metadata: ["line": "\(preview)"])
            return "engine sent an invalid protocol line (\(why))"
        }
    }

    private func finish(failure: String?) {
        if failure != nil { kill(pid, SIGKILL) }
        let (pending, reason, expected) = state.withLockedValue { state in
            state.closed = true
            let pending = state.pending
            state.pending = [:]
            return (pending, state.exitReason ?? failure ?? "the engine process exited", state.expectedExit && failure == nil)
        }
        for (_, entry) in pending {
            entry.sink.fail(GatewayError(.engineFailed, "\(reason) while handling the request"))
        }
        close(stdoutFD)
        // Reap: give a closing engine a moment, then make sure.
        var status: Int32 = 0
        var reaped = false
        for _ in 0..<200 {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid || (r < 0 && errno != EINTR) { reaped = true; break }
            usleep(10_000)
        }
        if !reaped {
            kill(pid, SIGKILL)
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
        let closeNow = state.withLockedValue { s -> Bool in
            let was = s.inputClosed
            s.inputClosed = true
            if was { return false }
            if s.writerActive { s.closeAfterBacklog = true; return false }
            return true
        }
        if closeNow { close(stdinFD) }
        onExit(self, Exit(status: status, expected: expected, description: Self.describe(status: status)))
    }

    private static func describe(status: Int32) -> String {
        let signal = status & 0x7f
        if signal == 0 { return "exit code \((status >> 8) & 0xff)" }
        return "signal \(signal)"
    }

    private func readStderr() {
        let chunkSize = 64 << 10
        var buffer = [UInt8](repeating: 0, count: chunkSize)
        var partial: [UInt8] = []
        while true {
            let n = buffer.withUnsafeMutableBytes { read(stderrFD, $0.baseAddress!, chunkSize) }
            if n < 0 { if errno == EINTR { continue }; break }
            if n == 0 { break }
            partial.append(contentsOf: buffer[0..<n])
            while let nl = partial.firstIndex(of: 0x0A) {
                let text = String(decoding: partial[..<nl], as: UTF8.self)
                partial.removeSubrange(...nl)
                if !text.isEmpty { logger.info("engine: \(text)") }
            }
            if partial.count > 16 << 10 {
                logger.info("engine: \(String(decoding: partial, as: UTF8.self))")
                partial = []
            }
        }
        if !partial.isEmpty { logger.info("engine: \(String(decoding: partial, as: UTF8.self))") }
        close(stderrFD)
    }
}

/// An engine could not be started.
package struct EngineSpawnError: Error, CustomStringConvertible {
    package var message: String
    package var description: String { message }
}

/// `pipe2(2)`: a pipe whose ends are close-on-exec from the start, so no other child inherits them.
@_silgen_name("pipe2")
private func forziumPipe2(_ fds: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32

/// A cancellable timer callback (a `DispatchWorkItem` shared across tasks; cancel is thread-safe).
package struct DeadlineTimer: @unchecked Sendable {
    private let item: DispatchWorkItem

    /// Runs `action` at `deadline` unless cancelled first.
    package init(deadline: ContinuousClock.Instant, action: @escaping @Sendable () -> Void) {
        item = DispatchWorkItem(block: action)
        let nanos = max(0, ContinuousClock.now.duration(to: deadline).nanoseconds)
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(clamping: nanos)), execute: item)
    }

    package func cancel() { item.cancel() }
}
