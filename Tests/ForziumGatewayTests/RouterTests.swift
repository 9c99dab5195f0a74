import ForziumJSON
import ForziumSchemaBundle
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix
import Testing
@testable import ForziumGatewayCore

/// The gateway's middleware and handlers in process, through HummingbirdTesting's router framework (no socket),
/// with a real engine pool where a test needs one.
@Suite("Gateway router in process (HummingbirdTesting)")
struct RouterTests {
    static let openAPI = Array(#"{"openapi":"3.1.0"}"#.utf8)

    /// Runs `body` against the gateway's responder; `engine` nil leaves the pool without an engine (503s).
    func withGateway(engine: String? = nil, configure: (inout GatewayConfiguration) -> Void = { _ in },
                     _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        var config = GatewayConfiguration()
        configure(&config)
        var logger = Logger(label: "router-tests")
        logger.logLevel = .critical
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let metrics = GatewayMetrics()
        let candidate = engine.map { EngineCandidate(path: buildDirectory + "/" + $0, kind: $0.hasSuffix("simd") ? "simd" : "fallback") }
            ?? EngineCandidate(path: "/nonexistent/forzium-engine", kind: "none")
        let pool = EnginePool(engine: candidate, configuration: EnginePoolConfiguration(), metrics: metrics, logger: logger,
                              eventLoopGroup: group)
        if engine != nil { try await pool.start() } else { try? await pool.start() }
        let validator = try SchemaBodyValidator(files: GatewaySchemas.embedded)
        let responder = GatewayHTTP.responder(configuration: config, routes: .embedded, pool: pool, validator: validator,
                                              metrics: metrics, openAPI: Self.openAPI, logger: logger)
        let app = Application(responder: responder, eventLoopGroupProvider: .shared(group), logger: logger)
        do {
            try await app.test(.router) { client in try await body(client) }
        } catch {
            await pool.shutdown()
            try await group.shutdownGracefully()
            throw error
        }
        await pool.shutdown()
        try await group.shutdownGracefully()
    }

    static func problem(_ response: TestResponse) throws -> JSONObject {
        #expect(response.headers[.contentType] == "application/problem+json")
        guard case .object(let object) = try JSONParser().parse(Array(response.body.readableBytesView)) else {
            throw GatewayError(.malformedJSON, "not an object")
        }
        return object
    }

    @Test func unknownPathIs404AndWrongMethodIs405WithAllow() async throws {
        try await withGateway { client in
            try await client.execute(uri: "/nope", method: .get) { response in
                #expect(response.status == .notFound)
                let problem = try Self.problem(response)
                #expect(problem["status"] == .number(JSONNumber(404)))
            }
            try await client.execute(uri: "/compute", method: .get) { response in
                #expect(response.status == .methodNotAllowed)
                #expect(response.headers[.allow] == "POST")
            }
        }
    }

    @Test func requestIDIsEchoedOrGenerated() async throws {
        try await withGateway { client in
            try await client.execute(uri: "/health", method: .get, headers: [.xRequestID: "abc-123"]) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.xRequestID] == "abc-123")
            }
            try await client.execute(uri: "/nope", method: .get, headers: [.xRequestID: "has spaces"]) { response in
                let generated = response.headers[.xRequestID] ?? ""
                #expect(generated.count == 24)
                let problem = try Self.problem(response)
                #expect(problem["request_id"] == .string(generated))
            }
        }
    }

    @Test func apiKeysGuardEngineRoutesButNotProbes() async throws {
        try await withGateway(engine: "forzium-engine", configure: { $0.apiKeys = ["k1"] }) { client in
            try await client.execute(uri: "/health", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/v1/sum", method: .post, body: ByteBuffer(string: "{}")) { response in
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate] == #"Bearer realm="forzium""#)
            }
            try await client.execute(uri: "/v1/sum", method: .post, headers: [.xAPIKey: "wrong"], body: ByteBuffer(string: "{}")) {
                #expect($0.status == .unauthorized)
            }
            try await client.execute(uri: "/v1/sum", method: .post, headers: [.authorization: "Bearer k1", .contentType: "application/json"],
                                     body: ByteBuffer(string: #"{"data":[[1,2]]}"#)) {
                #expect($0.status == .ok)
            }
        }
    }

    @Test func corsPreflightAndMarkedProblems() async throws {
        try await withGateway(configure: { $0.corsOrigins = ["https://app.example"] }) { client in
            try await client.execute(uri: "/compute", method: .options, headers: [.origin: "https://app.example"]) { response in
                #expect(response.status == .noContent)
                #expect(response.headers[.accessControlAllowMethods] == "POST")
                #expect(response.headers[.accessControlAllowOrigin] == "https://app.example")
            }
            try await client.execute(uri: "/nope", method: .get, headers: [.origin: "https://app.example"]) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[.accessControlAllowOrigin] == "https://app.example")
            }
            try await client.execute(uri: "/health", method: .get, headers: [.origin: "https://evil.example"]) { response in
                #expect(response.headers[.accessControlAllowOrigin] == nil)
            }
        }
    }

    @Test func clientMistakesAre4xxProblems() async throws {
        try await withGateway { client in
            try await client.execute(uri: "/compute", method: .post, headers: [.contentType: "text/plain"], body: ByteBuffer(string: "x")) {
                #expect($0.status == .unsupportedMediaType)
            }
            try await client.execute(uri: "/compute", method: .post, headers: [.contentType: "application/json"],
                                     body: ByteBuffer(string: #"{"data":[[1,2],"#)) { response in
                #expect(response.status == .badRequest)
                let problem = try Self.problem(response)
                #expect(problem["type"] == .string("https://forzium.dev/problems/malformed-json"))
            }
            try await client.execute(uri: "/compute", method: .post, headers: [.contentType: "application/json"],
                                     body: ByteBuffer(string: #"{"data":[[1,"x"]],"operation":"sum"}"#)) { response in
                #expect(response.status == .unprocessableContent)
                let problem = try Self.problem(response)
                guard case .array(let errors)? = problem["errors"], case .object(let first)? = errors.first else {
                    Issue.record("no errors in \(problem)")
                    return
                }
                #expect(first["pointer"] == .string("/data/0/1"))
            }
            try await client.execute(uri: "/compute", method: .post, headers: [.contentType: "application/json", .xForziumTimeout: "soon"],
                                     body: ByteBuffer(string: "{}")) { #expect($0.status == .unprocessableContent) }
        }
    }

    @Test func computeThroughARealEngine() async throws {
        try await withGateway(engine: "forzium-engine") { client in
            try await client.execute(uri: "/compute", method: .post, headers: [.contentType: "application/json"],
                                     body: ByteBuffer(string: #"{"data":[[1,2],[3,4]],"operation":"multiply","parameters":{"factor":2}}"#)) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.xForziumEngine] == "fallback")
                guard case .object(let object) = try JSONParser().parse(Array(response.body.readableBytesView)) else {
                    Issue.record("not an object")
                    return
                }
                #expect(object["result"] == .array([.array([.number(JSONNumber(2)), .number(JSONNumber(4))]),
                                                    .array([.number(JSONNumber(6)), .number(JSONNumber(8))])]))
            }
            try await client.execute(uri: "/ready", method: .get) { response in
                #expect(response.status == .ok)
                #expect(!String(buffer: response.body).contains("/"))  // no paths on an open route
            }
        }
    }
}
