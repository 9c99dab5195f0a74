import Foundation
import HTTPTypes
import Hummingbird

/// API keys (`--api-keys`): every route not marked public needs `Authorization: Bearer <key>` or `X-API-Key`.
/// Keys are compared in constant time.
struct APIKeyMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let keys: [[UInt8]]

    init(keys: [String]) {
        self.keys = keys.map { Array($0.utf8) }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if !keys.isEmpty, context.route?.isPublic != true { try authorize(request.headers) }
        return try await next(request, context)
    }

    /// Throws the 401 problem unless `headers` present one of the keys.
    func authorize(_ headers: HTTPFields) throws {
        try authorize(authorization: headers[.authorization], apiKey: headers[.xAPIKey])
    }

    /// The same check on the `Authorization` and `X-API-Key` values.
    func authorize(authorization: String?, apiKey: String?) throws {
        var presented: String?
        if let auth = authorization, auth.lowercased().hasPrefix("bearer ") {
            presented = String(auth.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        } else if let key = apiKey {
            presented = key.trimmingCharacters(in: .whitespaces)
        }
        guard let key = presented.map({ Array($0.utf8) }), keys.contains(where: { Self.constantTimeEqual($0, key) }) else {
            throw GatewayError(.unauthorized, presented == nil
                ? "an API key is required (Authorization: Bearer <key> or X-API-Key)"
                : "the API key is not valid")
        }
    }

    private static func constantTimeEqual(_ x: [UInt8], _ y: [UInt8]) -> Bool {
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in x.indices { diff |= x[i] ^ y[i] }
        return diff == 0
    }
}
