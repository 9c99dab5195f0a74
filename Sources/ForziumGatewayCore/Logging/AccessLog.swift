import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The optional access log (`--access-log`): one line at info per request once its response has been written —
/// method, path, status, bytes of the body sent, duration (request start to last byte), request id, engine.
/// Off, it passes requests straight through.
struct AccessLogMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let logger: Logger
    let enabled: Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard enabled else { return try await next(request, context) }
        let started = ContinuousClock.now
        var response = try await next(request, context)
        var fields: Logger.Metadata = [
            "method": .string(request.method.rawValue),
            "path": .string(request.uri.path),
            "status": .stringConvertible(response.status.code),
        ]
        if let id = response.headers[HTTPField.Name("X-Request-ID")!] { fields["request_id"] = .string(id) }
        if let engine = response.headers[HTTPField.Name("X-Forzium-Engine")!] { fields["engine"] = .string(engine) }
        let logger = self.logger
        let fixed = fields
        let body = response.body
        let sent = NIOLockedValueBox(0)
        response.body = ResponseBody(contentLength: body.contentLength) { writer in
            func record(_ outcome: String?) {
                var line = fixed
                line["bytes"] = .stringConvertible(sent.withLockedValue { $0 })
                line["duration_ms"] = .string(Self.milliseconds(started.duration(to: .now)))
                if let outcome { line["error"] = .string(outcome) }
                logger.info("request", metadata: line)
            }
            do {
                try await body.write(writer.map { buffer in
                    sent.withLockedValue { $0 += buffer.readableBytes }
                    return buffer
                })
                record(nil)
            } catch {
                record("\(error)")
                throw error
            }
        }
        return response
    }

    static func milliseconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let micros = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
        let whole = micros / 1000, fraction = micros % 1000
        let padded = String(fraction)
        return "\(whole)." + String(repeating: "0", count: 3 - padded.count) + padded
    }
}
