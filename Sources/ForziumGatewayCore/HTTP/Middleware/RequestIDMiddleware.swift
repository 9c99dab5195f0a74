import HTTPTypes
import Hummingbird
import Synchronization

extension HTTPField.Name {
    static let xRequestID = Self("X-Request-ID")!
    static let xForziumEngine = Self("X-Forzium-Engine")!
    static let xForziumTimeout = Self("X-Forzium-Timeout-Ms")!
    static let xAPIKey = Self("X-API-Key")!
}

/// Gives every request an id — the client's `X-Request-ID` when it is valid, else a generated one — and echoes it
/// on the response (problems carry it in `request_id` too).
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.requestID = RequestIDGenerator.client(request.headers[.xRequestID]) ?? RequestIDGenerator.next()
        var response = try await next(request, context)
        response.headers[.xRequestID] = context.requestID
        return response
    }
}

/// Request ids: a random per-process prefix and a counter (no system call per request).
enum RequestIDGenerator {
    private static let prefix: String = {
        let value = UInt64.random(in: .min ... .max)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }()
    private static let counter = Atomic<UInt64>(0)

    /// A client's `X-Request-ID` is kept when it is 1–128 visible ASCII characters.
    static func isValid(_ id: String) -> Bool {
        (1...128).contains(id.utf8.count) && id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    /// The client's `X-Request-ID` value when it is valid, else nil.
    static func client(_ value: String?) -> String? {
        value.flatMap { isValid($0) ? $0 : nil }
    }

    /// The prefix and at least eight hex digits of the counter, built in place (one allocation).
    static func next() -> String {
        let n = nextNumber()
        return String(unsafeUninitializedCapacity: length(of: n)) { buffer in write(n, to: UnsafeMutableRawBufferPointer(buffer)) }
    }

    /// The counter's next value: the id `write` spells.
    static func nextNumber() -> UInt64 { counter.wrappingAdd(1, ordering: .relaxed).newValue }

    /// The length of the id of number `n`.
    static func length(of n: UInt64) -> Int { 16 + max(8, (64 - n.leadingZeroBitCount + 3) / 4) }

    /// Writes the id of number `n` (`length(of: n)` bytes) at the start of `out`; returns its length.
    @discardableResult
    static func write(_ n: UInt64, to out: UnsafeMutableRawBufferPointer) -> Int {
        let width = length(of: n) - 16
        var at = 0
        for byte in prefix.utf8 { out[at] = byte; at += 1 }
        for place in (0..<width).reversed() {
            let digit = UInt8(truncatingIfNeeded: n >> (UInt64(place) * 4)) & 0xF
            out[at] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
            at += 1
        }
        return at
    }
}
