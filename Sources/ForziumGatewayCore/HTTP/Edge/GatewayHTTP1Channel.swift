import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Hummingbird's HTTP/1.1 child channel with the gateway's edge in it. The pipeline is
/// `RawActivityHandler` → HTTP/1 codec → `HTTPEdgeHandler` (which writes the hot route's answers, encoded by the
/// gateway, from the encoder's context: nothing between the encoder and the socket may expect HTTP parts) → (request decompressor, added by the edge once a request
/// has a `Content-Encoding`: gzip or deflate, limited to `--max-body-bytes` inflated, so a zip bomb stops at the
/// limit) → `InlineComputeHandler` (the hot route, small `POST /compute` and `/v1/{operation}`, answered from here) →
/// HTTPTypes codec → `additionalChannelHandlers` → Hummingbird's connection state handler → `InlineRequestHandler`
/// (other small requests answered from here) → the async channel the responder reads. The edge works on NIOHTTP1's
/// parts because the RFC 9112 checks need what the HTTPTypes conversion folds away (the number of Host fields,
/// transfer codings, the version) and because parser errors surface there; the hot route does because the
/// conversion, the handlers behind it and a task per request cost it more than its own work.
public struct GatewayHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    public typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    public let responder: HTTPChannelHandler.Responder
    /// The gateway's responder chain, called directly for requests served inline (`InlineRequestHandler`).
    let inline: any HTTPResponder<GatewayRequestContext>
    /// The hot route's task-free path (`InlineCompute`), served by `InlineComputeHandler`; nil leaves every request to
    /// the responder chain.
    let compute: InlineCompute?
    let edge: HTTPEdgeConfiguration
    let registry: ConnectionRegistry
    let maxBodyBytes: Int
    let additionalChannelHandlers: @Sendable () -> [any RemovableChannelHandler]

    init(responder: @escaping HTTPChannelHandler.Responder, inline: any HTTPResponder<GatewayRequestContext>,
         compute: InlineCompute?, edge: HTTPEdgeConfiguration, registry: ConnectionRegistry,
         maxBodyBytes: Int, additionalChannelHandlers: @escaping @Sendable () -> [any RemovableChannelHandler]) {
        self.responder = responder
        self.inline = inline
        self.compute = compute
        self.edge = edge
        self.registry = registry
        self.maxBodyBytes = maxBodyBytes
        self.additionalChannelHandlers = additionalChannelHandlers
    }

    /// Bytes per socket read: from 2 KiB, adapting up to 1 MiB.
    static let receiveSizes = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 1 << 20)

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            // Reads grow up to 1 MiB while a large body streams in (a 17 MB v2 request: ~20 reads and body parts instead
            // of ~270 at NIO's 64 KiB), and shrink back for small requests.
            try channel.syncOptions?.setOption(.recvAllocator, value: Self.receiveSizes)
            let activity = ConnectionActivity()
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(RawActivityHandler(activity: activity))
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: .init())
            let edgeHandler = HTTPEdgeHandler(configuration: edge, registry: registry, activity: activity, maxBodyBytes: maxBodyBytes)
            try pipeline.addHandler(edgeHandler)
            let answers = compute.map { _ in PrecomputedAnswers() }
            if let compute, let answers {
                try pipeline.addHandler(InlineComputeHandler(compute: compute, edge: edgeHandler, answers: answers, maxBodyBytes: maxBodyBytes))
            }
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try pipeline.addHandlers(additionalChannelHandlers())
            // Quiescing (SIGTERM) closes idle connections and busy ones after their last response; the edge keeps
            // those closes from cutting a response short.
            try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
            try pipeline.addHandler(InlineRequestHandler(responder: inline, answers: answers, maxBodyBytes: maxBodyBytes, logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    /// Serves the connection with its task preferring the connection's event loop as executor: reading the request,
    /// the middleware, the handler up to the engine call and writing the response all run on the thread that does the
    /// connection's I/O, with no hop to the cooperative pool and back per request. Heavy work (parsing and validating
    /// a large body) moves itself to the global executor (`EngineRequestReader`).
    public func handle(value asyncChannel: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, logger: Logger) async {
        let executor = EventLoopTaskExecutor(asyncChannel.channel.eventLoop)
        await withTaskExecutorPreference(executor) {
            await handleHTTP(asyncChannel: asyncChannel, logger: logger)
        }
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 with the gateway's edge (timeouts, limits, RFC 9112 checks, problem responses, lossless close).
    static func gatewayHTTP1(inline: any HTTPResponder<GatewayRequestContext>, compute: InlineCompute?, edge: HTTPEdgeConfiguration,
                             registry: ConnectionRegistry, maxBodyBytes: Int,
                             additionalChannelHandlers: @escaping @Sendable () -> [any RemovableChannelHandler]) -> HTTPServerBuilder {
        .init { responder in
            GatewayHTTP1Channel(responder: responder, inline: inline, compute: compute, edge: edge, registry: registry, maxBodyBytes: maxBodyBytes,
                                additionalChannelHandlers: additionalChannelHandlers)
        }
    }
}

// Responses are compressed by `CompressionMiddleware`, not here: NIOHTTPCompression's `HTTPResponseCompressor`
// (swift-nio-extras 1.35.2) pops one queued `Accept-Encoding` per response head, 1xx heads included, and traps on an
// empty queue — an interim `100 Continue` or a problem the edge writes before any request head would crash it.
