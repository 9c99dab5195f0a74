import NIOCore
import NIOHTTP1
import NIOPosix

// Usage: NIOPeer PORT — SwiftNIO's HTTP/1 server pipeline, one event loop per core, no Hummingbird: POST /compute
// echoes the collected body, GET /health answers {"status":"ok"}, anything else 404.
final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private static let health = ByteBuffer(string: #"{"status":"ok"}"#)

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
            body.clear()
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            guard let requestHead = head else { return }
            let answer: (HTTPResponseStatus, ByteBuffer)
            switch (requestHead.method, requestHead.uri) {
            case (.POST, "/compute"): answer = (.ok, body)
            case (.GET, "/health"): answer = (.ok, Self.health)
            default: answer = (.notFound, ByteBuffer())
            }
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "application/json")
            headers.add(name: "content-length", value: String(answer.1.readableBytes))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: requestHead.version, status: answer.0, headers: headers))),
                          promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(answer.1))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            if !requestHead.isKeepAlive { context.close(promise: nil) }
            head = nil
        }
    }
}

let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 8091
let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
let channel = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 256)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline()
            try channel.pipeline.syncOperations.addHandler(EchoHandler())
        }
    }
    .bind(host: "127.0.0.1", port: port).wait()
try channel.closeFuture.wait()
