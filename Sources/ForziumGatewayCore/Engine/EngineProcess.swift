#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ForziumRPC
import Logging
import NIOCore
import NIOPosix

/// One running engine: the child process, its stdin/stdout as one NIO pipe channel (line decoder + `EngineRPCHandler`),
/// and its stderr as another channel whose lines go to the gateway log.
///
/// Requests are multiplexed on the pipe by gateway-assigned ids. When stdout closes (the engine exited, or was killed)
/// the channel closes, the child is reaped off the event loop, and `exit` completes.
package final class EngineProcess: Sendable {
    /// How the process ended.
    package struct Exit: Sendable {
        /// Raw wait status.
        package var status: CInt
        package var description: String
    }

    package let pid: pid_t
    /// Pool slot this process fills (-1 for a probe).
    package let slot: Int
    /// Incremented on each restart of the slot.
    package let generation: Int
    private let child: EngineChild
    private let channel: any Channel
    /// The channel's `EngineRPCHandler`, which `submit` hands requests to directly.
    private let rpc: NIOLoopBoundBox<EngineRPCHandler?>
    /// The event loop serving this engine's pipes (the channel's, kept here: the pool compares it per request).
    package let eventLoop: any EventLoop
    /// Completes once the child has been reaped.
    package let exit: EventLoopFuture<Exit>

    private init(child: EngineChild, channel: any Channel, rpc: NIOLoopBoundBox<EngineRPCHandler?>, slot: Int, generation: Int,
                 exit: EventLoopFuture<Exit>) {
        self.child = child
        self.pid = child.pid
        self.channel = channel
        self.rpc = rpc
        self.eventLoop = channel.eventLoop
        self.slot = slot
        self.generation = generation
        self.exit = exit
    }

    /// Spawns `executable` and connects its pipes. `onEvent` hears the channel's events on its event loop.
    package static func start(
        executable: String, arguments: [String], slot: Int, generation: Int, group: any EventLoopGroup,
        settings: EngineWatchSettings = EngineWatchSettings(), logger: Logger,
        onEvent: @escaping @Sendable (EngineEvent) -> Void = { _ in }
    ) async throws -> EngineProcess {
        let (child, pipes) = try EngineChild.spawn(executable: executable, arguments: arguments)
        var logger = logger
        logger[metadataKey: "engine.pid"] = "\(child.pid)"
        if slot >= 0 { logger[metadataKey: "engine.slot"] = "\(slot)" }
        let loop = group.next()
        let engineLogger = logger

        let stderrChannel: any Channel
        do {
            stderrChannel = try await NIOPipeBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(EngineLineDecoder(maxLineBytes: 16 << 10, overflow: .split)))
                        try channel.pipeline.syncOperations.addHandler(EngineLogHandler(logger: engineLogger))
                    }
                }
                .takingOwnershipOfDescriptor(input: pipes.stderr).get()
        } catch {
            close(pipes.stdin); close(pipes.stdout); close(pipes.stderr)
            child.signal(SIGKILL)
            _ = try? await child.waitForExit(threadPool: .singleton, eventLoop: loop, killAfter: .seconds(1)).get()
            throw EngineSpawnError(message: "cannot watch the engine's stderr: \(error)")
        }
        let rpc = NIOLoopBoundBox.makeEmptyBox(valueType: EngineRPCHandler.self, eventLoop: loop)
        let channel: any Channel
        do {
            channel = try await NIOPipeBootstrap(group: loop)
                .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 64 << 10, maximum: 1 << 20))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(EngineLineDecoder(maxLineBytes: settings.maxLineBytes)))
                        let handler = EngineRPCHandler(settings: settings, child: child, logger: engineLogger, onEvent: onEvent)
                        try channel.pipeline.syncOperations.addHandler(handler)
                        rpc.value = handler
                    }
                }
                .takingOwnershipOfDescriptors(input: pipes.stdout, output: pipes.stdin).get()
        } catch {
            close(pipes.stdin); close(pipes.stdout)
            child.signal(SIGKILL)
            stderrChannel.close(promise: nil)
            _ = try? await child.waitForExit(threadPool: .singleton, eventLoop: loop, killAfter: .seconds(1)).get()
            throw EngineSpawnError(message: "cannot connect the engine's pipes: \(error)")
        }
        // Reap once stdout is gone: an engine that closed its stdout without exiting gets `exitGrace`, then SIGKILL.
        let exit = channel.closeFuture
            .flatMap { child.waitForExit(threadPool: .singleton, eventLoop: loop, killAfter: settings.exitGrace) }
            .map { Exit(status: $0, description: EngineChild.describe(status: $0)) }
        return EngineProcess(child: child, channel: channel, rpc: rpc, slot: slot, generation: generation, exit: exit)
    }

    /// Queues `request` for the engine. `rejected` runs when the channel cannot take it (closed, unresponsive): the
    /// request was not written and may go elsewhere.
    package func submit(_ request: EngineRequest, rejected: @escaping @Sendable (EngineRequest) -> Void) {
        if eventLoop.inEventLoop {
            Self.hand(request, to: rpc, rejected: rejected)
        } else {
            eventLoop.execute { [rpc] in Self.hand(request, to: rpc, rejected: rejected) }
        }
    }

    /// On the engine's loop: the handler takes `request`, or `rejected` gets it back.
    private static func hand(_ request: EngineRequest, to rpc: NIOLoopBoundBox<EngineRPCHandler?>,
                             rejected: (EngineRequest) -> Void) {
        if rpc.value?.enqueue(request) != true { rejected(request) }
    }

    /// The caller of request `id` is gone: withdraw it if unwritten, else send `$/cancelRequest`.
    package func cancel(id: Int) {
        channel.writeAndFlush(EngineCommand.cancel(id: id), promise: nil)
    }

    /// Starts the liveness watch (after the handshake).
    package func startLiveness(answersPingsWhileBusy: Bool) {
        channel.writeAndFlush(EngineCommand.startLiveness(answersPingsWhileBusy: answersPingsWhileBusy), promise: nil)
    }

    /// Closes the engine's stdin after what is queued on the channel: a well-behaved engine finishes and exits.
    package func closeInput() {
        channel.close(mode: .output, promise: nil)
    }

    /// SIGKILL; the channel then closes and in-flight requests fail (unwritten ones are given back).
    package func kill() {
        child.signal(SIGKILL)
    }

    /// Sends `signal` to the engine (tests, diagnostics).
    package func signal(_ signal: CInt) {
        child.signal(signal)
    }

    /// Whether the channel is still open.
    package var isOpen: Bool { channel.isActive }

    /// Sends `method` (no params) and waits for the reply, up to `timeout` (then 504 and a cancel).
    package func call(id: Int, method: String, timeout: Duration) async throws -> EngineResponse {
        let line = RPCEncoder.requestLine(id: id, method: method, params: nil)
        let request = EngineRequest(id: id, parts: [ByteBuffer(bytes: line)], deadline: .now + timeout, sink: ReplySink())
        let timer = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) { [self] in
            if request.sink.fail(GatewayError(.deadline, "\(method) timed out")) { cancel(id: id) }
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            request.sink.attach(continuation)
            submit(request) { request in
                request.sink.fail(GatewayError(.engineFailed, "the engine exited before \(method) could be sent"))
            }
        }
    }
}

/// Forwards an engine's stderr lines to the gateway log.
final class EngineLogHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        let text = String(buffer: line)
        if !text.isEmpty { EngineLogRelay.relay(text, logger: logger) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
