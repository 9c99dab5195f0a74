import ArgumentParser
import CompressNIO
import HTTPTypes
import Hummingbird
import NIOCore

/// Response compression (`Accept-Encoding: gzip` or `deflate`) for text bodies: JSON, problem+json, NDJSON, HTML,
/// Prometheus text. Binary bodies (v2 tensors), small bodies (under `minBytes`), HEAD answers and bodies already
/// encoded pass as they are. A compressed body is streamed with chunked framing: it is deflated part by part as the
/// handler writes it (never collected first), and an NDJSON stream is flushed after every part so rows reach the
/// client as the engine produces them.
struct CompressionMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let configuration: ResponseCompression

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        // Cheapest checks first: most answers of a busy gateway are small (a 2×2 result is 90 bytes).
        guard configuration.isEnabled, response.body.contentLength.map({ $0 >= configuration.minBytes }) ?? true,
              request.method != .head, response.status.code >= 200,
              response.status != .noContent, response.status != .notModified,
              response.headers[.contentEncoding] == nil,
              let kind = Self.compressibleKind(response.headers.value(.contentType))
        else { return response }
        // Whether compressed or not, the answer depends on Accept-Encoding: caches must key on it.
        response.headers.append(HTTPField(name: .vary, value: "Accept-Encoding"))
        guard let coding = ContentCoding.preferred(in: request.headers[values: .acceptEncoding]) else { return response }

        let level = configuration.level
        let flushEachPart = kind == .stream
        let body = response.body
        response.headers[.contentEncoding] = coding.token
        response.headers[.contentLength] = nil
        // Deflating is CPU work: a large or open-ended body is deflated off the event loop.
        let heavy = (response.body.contentLength ?? Int.max) > Offload.inlineBytes
        response.body = ResponseBody { writer in
            try await Offload.run(if: heavy) {
                try await body.write(DeflatingBodyWriter(parent: writer, coding: coding, level: level, flushEachPart: flushEachPart))
            }
        }
        return response
    }

    enum BodyKind { case document, stream }

    /// Text media types worth compressing; nil for everything else (octet-stream tensors, images…).
    static func compressibleKind(_ contentType: String?) -> BodyKind? {
        guard let contentType else { return nil }
        if contentType == "application/json" { return .document }
        let media = contentType.split(separator: ";", maxSplits: 1)[0].trimmingCharacters(in: .whitespaces).lowercased()
        if media == "application/x-ndjson" { return .stream }
        if media.hasPrefix("text/") || media == "application/json" || media.hasSuffix("+json") { return .document }
        return nil
    }
}

/// The response compression settings (`--compress-min-bytes`, `--compress-level`).
public struct ResponseCompression: Sendable {
    /// Smallest body (by its Content-Length) compressed; bodies of unknown length always are. Negative: never.
    public var minBytes: Int
    /// zlib level 1…9. Decimal text of random doubles barely gains past level 1 but costs several times the CPU.
    public var level: Int32

    public init(minBytes: Int = 1024, level: Int32 = 1) {
        self.minBytes = minBytes
        self.level = level
    }

    public var isEnabled: Bool { minBytes >= 0 }
}

/// `--compress-min-bytes`: a byte count, or `off`.
public enum CompressionThreshold: ExpressibleByArgument, Sendable {
    case bytes(Int)
    case off

    public init?(argument: String) {
        if argument.lowercased() == "off" { self = .off; return }
        guard let bytes = Int(argument), bytes >= 0 else { return nil }
        self = .bytes(bytes)
    }

    public var defaultValueDescription: String {
        switch self {
        case .bytes(let bytes): "\(bytes)"
        case .off: "off"
        }
    }

    var minBytes: Int {
        switch self {
        case .bytes(let bytes): bytes
        case .off: -1
        }
    }
}

/// The content codings the gateway can produce.
enum ContentCoding: Equatable {
    case gzip, deflate

    var token: String { self == .gzip ? "gzip" : "deflate" }

    /// The client's preferred coding among gzip and deflate per RFC 9110 §12.5.3 (q-values; `*` stands for any coding
    /// not named; q=0 refuses), gzip on a tie; nil when the client accepts neither.
    static func preferred(in fields: [String]) -> ContentCoding? {
        var gzipQ: Double?
        var deflateQ: Double?
        var anyQ: Double?
        for field in fields {
            for element in field.split(separator: ",") {
                let parts = element.split(separator: ";")
                guard let first = parts.first else { continue }
                let name = first.trimmingCharacters(in: .whitespaces).lowercased()
                var q = 1.0
                for parameter in parts.dropFirst() {
                    let pair = parameter.split(separator: "=", maxSplits: 1)
                    guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == "q" else { continue }
                    q = Double(pair[1].trimmingCharacters(in: .whitespaces)) ?? 0
                }
                switch name {
                case "gzip", "x-gzip": gzipQ = max(gzipQ ?? 0, q)
                case "deflate": deflateQ = max(deflateQ ?? 0, q)
                case "*": anyQ = max(anyQ ?? 0, q)
                default: break
                }
            }
        }
        let g = gzipQ ?? anyQ ?? 0
        let d = deflateQ ?? anyQ ?? 0
        if g <= 0, d <= 0 { return nil }
        return g >= d ? .gzip : .deflate
    }
}

/// Deflates what a handler writes and passes the compressed bytes on in parts of at most `windowBytes`.
struct DeflatingBodyWriter: ResponseBodyWriter {
    private var parent: any ResponseBodyWriter
    private let compressor: ZlibCompressor
    private let flushEachPart: Bool
    private var window: ByteBuffer
    private static var windowBytes: Int { 64 << 10 }

    init(parent: any ResponseBodyWriter, coding: ContentCoding, level: Int32, flushEachPart: Bool) throws {
        self.parent = parent
        // HTTP's "deflate" is the zlib format (RFC 9110 §8.4.1.2), not a raw deflate stream.
        self.compressor = try ZlibCompressor(algorithm: coding == .gzip ? .gzip : .zlib,
                                             configuration: ZlibConfiguration(compressionLevel: level))
        self.flushEachPart = flushEachPart
        self.window = ByteBufferAllocator().buffer(capacity: Self.windowBytes)
    }

    mutating func write(_ buffer: ByteBuffer) async throws {
        guard buffer.readableBytes > 0 else { return }
        var input = buffer
        try await deflate(&input, flush: flushEachPart ? .sync : .no)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        // zlib reads through the input's base address even when it is empty: give it real (empty) storage.
        var empty = ByteBufferAllocator().buffer(capacity: 16)
        try await deflate(&empty, flush: .finish)
        try await parent.finish(trailingHeaders)
    }

    /// Runs zlib until it has taken all of `input` (and, for a sync flush or the finish, emitted all it holds),
    /// passing each full window on.
    private mutating func deflate(_ input: inout ByteBuffer, flush: CompressNIOFlush) async throws {
        while true {
            if window.writableBytes == 0 { try await emitWindow() }
            let inputBefore = input.readableBytes
            let outputBefore = window.readableBytes
            let complete: Bool
            do {
                try compressor.deflate(from: &input, to: &window, flush: flush)
                // .finish returns only at the stream's end; otherwise zlib is done once input is gone with room left.
                complete = flush == .finish || (input.readableBytes == 0 && window.writableBytes > 0)
            } catch let error as CompressNIOError where error == .bufferOverflow {
                // zlib wants more room (Z_BUF_ERROR, or an unfinished finish). With room and no progress, a sync flush
                // is already complete; a finish that cannot move is a broken stream.
                let progressed = input.readableBytes != inputBefore || window.readableBytes != outputBefore
                if !progressed, window.writableBytes > 0 {
                    guard flush != .finish else { throw CompressNIOError.internalError }
                    complete = true
                } else {
                    complete = false
                }
            }
            if complete { break }
        }
        if flush != .no, window.readableBytes > 0 { try await emitWindow() }
    }

    private mutating func emitWindow() async throws {
        try await parent.write(window)
        window = ByteBufferAllocator().buffer(capacity: Self.windowBytes)
    }
}
