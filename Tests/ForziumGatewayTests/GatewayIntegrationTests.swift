#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ForziumJSON
import Testing
@testable import ForziumGatewayCore

/// A slow request with a small body: a 400×400 valid convolution with a 150×150 kernel (~1.4 G multiply-adds).
let slowConvolutionBody: [UInt8] = {
    var data = "["
    for i in 0..<400 {
        if i > 0 { data += "," }
        data += "[" + (0..<400).map { String((i * 7 + $0 * 3) % 10) }.joined(separator: ",") + "]"
    }
    data += "]"
    var kernel = "["
    for i in 0..<150 {
        if i > 0 { kernel += "," }
        kernel += "[" + (0..<150).map { String((i + $0) % 3) }.joined(separator: ",") + "]"
    }
    kernel += "]"
    return json(#"{"data":\#(data),"kernel":\#(kernel)}"#)
}()

/// One small valid body per `/v1/{operation}` route and the exact result the engines must give.
let operationCases: [(op: String, body: String, result: String)] = [
    ("multiply", #"{"data":[[1,2],[3,4]],"factor":3}"#, "[[3.0,6.0],[9.0,12.0]]"),
    ("add", #"{"data":[[1,2],[3,4]],"addend":0.5}"#, "[[1.5,2.5],[3.5,4.5]]"),
    ("matmul", #"{"data":[[1,2],[3,4]],"matrix_b":[[0,1],[1,0]]}"#, "[[2.0,1.0],[4.0,3.0]]"),
    ("transpose", #"{"data":[[1,2,3],[4,5,6]]}"#, "[[1.0,4.0],[2.0,5.0],[3.0,6.0]]"),
    ("elementwise_add", #"{"data":[[1,2]],"other":[[10,20]]}"#, "[[11.0,22.0]]"),
    ("elementwise_sub", #"{"data":[[1,2]],"other":[[10,20]]}"#, "[[-9.0,-18.0]]"),
    ("elementwise_mul", #"{"data":[[1,2]],"other":[[10,20]]}"#, "[[10.0,40.0]]"),
    ("elementwise_div", #"{"data":[[1,2]],"other":[[4,8]]}"#, "[[0.25,0.25]]"),
    ("conv2d", #"{"data":[[1,2,3],[4,5,6],[7,8,9]],"kernel":[[1,0],[0,1]]}"#, "[[6.0,8.0],[12.0,14.0]]"),
    ("max_pool2d", #"{"data":[[1,2,3,4],[5,6,7,8]],"size":2}"#, "[[6.0,8.0]]"),
    ("normalize", #"{"data":[[0,5],[10,5]],"mode":"minmax"}"#, "[[0.0,0.5],[1.0,0.5]]"),
    ("reshape", #"{"data":[[1,2,3,4]],"rows":2,"cols":2}"#, "[[1.0,2.0],[3.0,4.0]]"),
    ("sum", #"{"data":[[1,2],[3,4]]}"#, "10.0"),
    ("mean", #"{"data":[[1,2],[3,4]],"axis":0}"#, "[[2.0,3.0]]"),
    ("min", #"{"data":[[1,2],[3,4]],"axis":1}"#, "[[1.0],[3.0]]"),
    ("max", #"{"data":[[1,2],[3,4]]}"#, "4.0"),
]

private func status(_ reply: HTTPReply, _ expected: Int, _ comment: @autoclosure () -> String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(reply.status == expected, "\(comment()) got \(reply.status): \(reply.text.prefix(400))", sourceLocation: sourceLocation)
}

/// Checks an error reply is RFC 9457 problem JSON with the right status and a request id.
private func expectProblem(_ reply: HTTPReply, _ expected: Int, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSONObject {
    status(reply, expected, sourceLocation: sourceLocation)
    #expect(reply.header("Content-Type") == "application/problem+json", sourceLocation: sourceLocation)
    let o = try object(reply)
    for key in ["type", "title", "status", "detail", "request_id"] {
        #expect(o[key] != nil, "problem lacks \(key)", sourceLocation: sourceLocation)
    }
    if case .number(let n)? = o["status"] { #expect(Int(n.value) == expected, sourceLocation: sourceLocation) }
    #expect(!reply.text.contains("Swift/") && !reply.text.contains("Fatal error"), sourceLocation: sourceLocation)
    return o
}

@Suite("Gateway over real sockets with real engines", .serialized)
struct GatewayIntegrationTests {
    @Test("every route answers", arguments: engineBinaries)
    func everyRoute(engine: String) throws {
        let gateway = try GatewayProcess(engine: engine)
        let client = gateway.client

        for path in ["/health", "/live"] {
            let reply = try client.request("GET", path)
            status(reply, 200, path)
            #expect(reply.text == #"{"status":"ok"}"#)
            #expect(reply.header("X-Request-ID")?.isEmpty == false)
        }
        let ready = try gateway.ready()
        #expect(ready.status == 200)
        guard case .string(let kind)? = ready.body["engine"] else { Issue.record("no engine kind in /ready"); return }
        #expect(["simd", "fallback"].contains(kind))

        let info = try client.request("GET", "/")
        status(info, 200)
        #expect(info.text.contains(#""name":"forzium-gateway""#))

        // The compute route, ForziumAPI shape.
        let compute = try client.request("POST", "/compute", body: json(#"{"data":[[1,2],[3,4]],"operation":"multiply","parameters":{"factor":2}}"#),
                                         headers: [("X-Request-ID", "req-compute-1")])
        status(compute, 200)
        #expect(compute.header("X-Request-ID") == "req-compute-1")
        #expect(compute.header("X-Forzium-Engine") == kind)
        let computed = try object(compute)
        #expect(computed.keys == ["result", "operation", "engine", "execution_time_ms"])
        #expect(compute.text.hasPrefix(#"{"result":[[2.0,4.0],[6.0,8.0]],"operation":"multiply","engine":""#))

        // Every typed route.
        for c in operationCases {
            let reply = try client.request("POST", "/v1/\(c.op)", body: json(c.body))
            status(reply, 200, c.op)
            #expect(reply.text.hasPrefix(#"{"result":\#(c.result),"operation":"\#(c.op)","#), "\(c.op): \(reply.text)")
        }

        // Streaming, small.
        let stream = try client.request("POST", "/stream", body: json(#"{"data":[[1,2],[3,4],[5,6]],"operation":"multiply","parameters":{"factor":10}}"#))
        status(stream, 200)
        #expect(stream.header("Content-Type") == "application/x-ndjson")
        let lines = stream.text.split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines.first == #"{"row":0,"values":[10.0,20.0]}"#)
        #expect(lines.last?.hasPrefix(#"{"done":true,"rows":3,"cols":2,"operation":"multiply""#) == true)

        // OpenAPI, docs, metrics.
        let openapi = try client.request("GET", "/openapi.json")
        status(openapi, 200)
        let committed = try Data(contentsOf: repositoryRoot.appendingPathComponent("schemas/openapi.json"))
        #expect(openapi.body == Array(committed), "served OpenAPI differs from schemas/openapi.json")
        let docs = try client.request("GET", "/docs")
        status(docs, 200)
        #expect(docs.header("Content-Type")?.hasPrefix("text/html") == true)
        // Self-contained: inline script, nothing loaded from elsewhere (the only link is the empty inline favicon).
        #expect(docs.text.contains("<script>") && !docs.text.contains("<script src") && !docs.text.contains("src=\"http"))
        #expect(docs.text.components(separatedBy: "<link").count == 2 && docs.text.contains(#"<link rel="icon" href="data:,">"#))
        #expect(docs.text.contains(#""openapi": "3.1.0""#))
        let metrics = try client.request("GET", "/metrics")
        status(metrics, 200)
        #expect(metrics.text.contains(#"forzium_http_requests_total{route="/compute",method="POST",status="200"}"#))
        #expect(metrics.text.contains("forzium_http_request_duration_seconds_bucket"))
        #expect(metrics.text.contains("forzium_queue_depth"))
        #expect(metrics.text.contains("forzium_engine_in_flight"))

        #expect(gateway.stop() == 0, "gateway did not exit cleanly on SIGTERM")
        #expect(gateway.log.contains("using engine"))
    }

    @Test("every error status as problem+json")
    func errorStatuses() throws {
        let gateway = try GatewayProcess(engine: "forzium-engine", arguments: ["--max-body-bytes", "65536"])
        let client = gateway.client

        let malformed = try expectProblem(try client.request("POST", "/compute", body: json("{\"data\": [[1,2],\n [3,4]")), 400)
        if case .string(let detail)? = malformed["detail"] { #expect(detail.contains("line 2, column")) }

        _ = try expectProblem(try client.request("GET", "/nope"), 404)

        let wrongMethod = try client.request("GET", "/compute")
        _ = try expectProblem(wrongMethod, 405)
        #expect(wrongMethod.header("Allow") == "POST")
        #expect(try client.request("DELETE", "/health").header("Allow")?.contains("GET") == true)

        let big = json(#"{"data":\#(matrixJSON(rows: 150, cols: 150)),"operation":"transpose"}"#)
        #expect(big.count > 65536)
        _ = try expectProblem(try client.request("POST", "/compute", body: big), 413)

        _ = try expectProblem(try client.request("POST", "/compute", body: json("data=1"), contentType: "application/x-www-form-urlencoded"), 415)
        _ = try expectProblem(try client.request("POST", "/compute", body: json("{}"), contentType: nil), 415)

        // Schema failure, located.
        let schema = try expectProblem(try client.request("POST", "/compute", body: json(#"{"data":[[1,"x"]],"operation":"multiply"}"#)), 422)
        guard case .array(let errors)? = schema["errors"], case .object(let first)? = errors.first,
              case .string(let pointer)? = first["pointer"] else { Issue.record("no errors[] in 422"); return }
        #expect(pointer == "/data/0/1")
        _ = try expectProblem(try client.request("POST", "/compute", body: json(#"{"data":[[1]],"operation":"nope"}"#)), 422)
        _ = try expectProblem(try client.request("POST", "/v1/matmul", body: json(#"{"data":[[1,2]]}"#)), 422)
        // Semantic failure only the engine can see (shapes): the engine's -32602 becomes 422 with its pointer.
        let shapes = try expectProblem(try client.request("POST", "/v1/matmul", body: json(#"{"data":[[1,2]],"matrix_b":[[1,2]]}"#)), 422)
        #expect(shapes["errors"] != nil)

        // Bad deadline header.
        _ = try expectProblem(try client.request("POST", "/v1/sum", body: json(#"{"data":[[1]]}"#), headers: [("X-Forzium-Timeout-Ms", "soon")]), 422)

        #expect(gateway.stop() == 0)
    }

    @Test("a tiny body sent to the engine as it came answers byte for byte as the same body in binary form", arguments: engineBinaries)
    func verbatimAndBinaryParamsAgree(engine: String) throws {
        let gateway = try GatewayProcess(engine: engine)
        var cases = operationCases.map { (path: "/v1/\($0.op)", body: $0.body) }
        cases += [
            #"{"data":[[1,2],[3,4]],\#r\#n"operation":"multiply",\#n"parameters":{"factor":2}}"#,
            #"{"operation":"mul\u0074iply","data":[[0.1,0.2,-0.0]],"parameters":{"factor":3}}"#,
            #"{"data":[[1e999,-1e999,5e-324]],"operation":"multiply","parameters":{"factor":0.5}}"#,
            #"{"data":[[NaN,1],[Infinity,2]],"operation":"sum","parameters":{"axis":0}}"#,
            #"{"data":[[1e308,1e308]],"operation":"sum"}"#,
            #"{"data":[[1]],"data":[[2,3]],"operation":"sum"}"#,
            #"{"data":[[1,2],[3]],"operation":"mean"}"#,
            #"{"data":[[1,2]],"operation":"matmul","parameters":{"matrix_b":[[1],[2],[3]]}}"#,
            #"{"data":[[0.30000000000000004,123456789012345678901234567890]],"operation":"transpose"}"#,
        ].map { (path: "/compute", body: $0) }
        try compare(cases, on: gateway.client)
        gateway.stop()
        // The engine's element limit holds for either form.
        let limited = try GatewayProcess(engine: engine, arguments: ["--engine-arg=--max-elements=4"])
        let overLimit = (path: "/compute", body: #"{"data":[[1,2,3,4,5]],"operation":"sum"}"#)
        #expect(try limited.client.request("POST", overLimit.path, body: json(overLimit.body)).status == 413)
        try compare([overLimit], on: limited.client)
        limited.stop()
    }

    /// Posts each body as it is and padded with whitespace past `EngineParams.verbatimBodyLimit` (the same JSON
    /// value, sent to the engine in binary form), and expects the same answer.
    private func compare(_ cases: [(path: String, body: String)], on client: TestHTTPClient) throws {
        // Pointers, status and result are all in the text; only the timing and the request id differ between two answers.
        func normalized(_ reply: HTTPReply) -> String {
            reply.text.replacingOccurrences(of: #""execution_time_ms":[0-9.]+"#, with: "", options: .regularExpression)
                .replacingOccurrences(of: #""request_id":"[^"]*""#, with: "", options: .regularExpression)
        }
        for c in cases {
            let tiny = json(c.body)
            #expect(tiny.count <= EngineParams.verbatimBodyLimit, "\(c.body) is not a tiny body")
            // Padded with whitespace past the limit: the same JSON value, sent in binary form.
            let padded = [tiny[0]] + [UInt8](repeating: UInt8(ascii: " "), count: EngineParams.verbatimBodyLimit) + tiny.dropFirst()
            let asText = try client.request("POST", c.path, body: tiny)
            let asBinary = try client.request("POST", c.path, body: padded)
            #expect(asText.status == asBinary.status, "\(c.body): \(asText.status) as text, \(asBinary.status) in binary form")
            #expect(normalized(asText) == normalized(asBinary), "\(c.body)")
            #expect(asText.status < 500, "\(c.body): \(asText.text)")
        }
    }

    @Test("bad input the schema cannot see: ragged matrices 422, element limit 413, invalid UTF-8 400", arguments: engineBinaries)
    func engineSideRejections(engine: String) throws {
        let gateway = try GatewayProcess(engine: engine, arguments: ["--engine-arg=--max-elements=100"])
        let client = gateway.client
        let ragged = try expectProblem(try client.request("POST", "/v1/transpose", body: json(#"{"data":[[1,2,3],[4,5]]}"#)), 422)
        guard case .array(let errors)? = ragged["errors"], case .object(let first)? = errors.first,
              case .string(let pointer)? = first["pointer"] else { Issue.record("no errors[] for a ragged matrix"); return }
        #expect(pointer.hasPrefix("/data"))
        _ = try expectProblem(try client.request("POST", "/compute", body: json(#"{"data":\#(matrixJSON(rows: 20, cols: 20)),"operation":"transpose"}"#)), 413)
        var invalidUTF8 = json(#"{"data":[[1]],"operation":"sum","parameters":{"note":""#)
        invalidUTF8 += [0xC3, 0x28] + json(#""}}"#)
        _ = try expectProblem(try client.request("POST", "/compute", body: invalidUTF8), 400)
        // Nothing was lost: the engine still answers.
        status(try client.request("POST", "/v1/sum", body: json(#"{"data":[[1,2]]}"#)), 200)
        gateway.stop()
    }

    @Test("Expect: 100-continue gets an interim 100, or an immediate 413 for a body over the limit")
    func expectContinue() throws {
        let gateway = try GatewayProcess(engine: "forzium-engine", arguments: ["--max-body-bytes", "4096"])
        let small = try gateway.client.expectContinue("/v1/sum", body: json(#"{"data":[[1,2],[3,4]]}"#))
        #expect(small.interim.hasPrefix("HTTP/1.1 100 Continue"))
        status(small.reply, 200)
        #expect(small.reply.text.hasPrefix(#"{"result":10.0,"#))
        let big = try gateway.client.expectContinue("/v1/sum", body: json(#"{"data":\#(matrixJSON(rows: 40, cols: 40))}"#))
        #expect(!big.interim.hasPrefix("HTTP/1.1 100"))
        _ = try expectProblem(big.reply, 413)
        gateway.stop()
    }

    @Test("API keys: 401 without a key, health and probes exempt")
    func apiKeys() throws {
        let gateway = try GatewayProcess(engine: "forzium-engine", environment: ["FORZIUM_API_KEYS": "alpha, beta"])
        let client = gateway.client
        let body = json(#"{"data":[[1,2]],"operation":"sum"}"#)
        let missing = try client.request("POST", "/compute", body: body)
        _ = try expectProblem(missing, 401)
        #expect(missing.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
        _ = try expectProblem(try client.request("POST", "/compute", body: body, headers: [("Authorization", "Bearer wrong")]), 401)
        _ = try expectProblem(try client.request("GET", "/metrics"), 401)
        status(try client.request("POST", "/compute", body: body, headers: [("Authorization", "Bearer alpha")]), 200)
        status(try client.request("POST", "/compute", body: body, headers: [("X-API-Key", "beta")]), 200)
        for path in ["/health", "/live", "/ready"] { status(try client.request("GET", path), 200, path) }
        #expect(gateway.stop() == 0)
    }

    @Test("CORS is off by default and answers configured origins")
    func cors() throws {
        let plain = try GatewayProcess(engine: "forzium-engine")
        let noCORS = try plain.client.request("GET", "/health", headers: [("Origin", "https://example.test")])
        #expect(noCORS.header("Access-Control-Allow-Origin") == nil)
        _ = try expectProblem(try plain.client.request("OPTIONS", "/compute", headers: [("Origin", "https://example.test")]), 405)
        plain.stop()

        let gateway = try GatewayProcess(engine: "forzium-engine", arguments: ["--cors-origin", "https://app.test"])
        let allowed = try gateway.client.request("GET", "/health", headers: [("Origin", "https://app.test")])
        #expect(allowed.header("Access-Control-Allow-Origin") == "https://app.test")
        let other = try gateway.client.request("GET", "/health", headers: [("Origin", "https://other.test")])
        #expect(other.header("Access-Control-Allow-Origin") == nil)
        let preflight = try gateway.client.request("OPTIONS", "/compute", headers: [("Origin", "https://app.test"), ("Access-Control-Request-Method", "POST")])
        status(preflight, 204)
        #expect(preflight.header("Access-Control-Allow-Methods") == "POST")
        gateway.stop()
    }

    @Test("an engine killed mid-request gives 502, then the pool recovers", arguments: engineBinaries)
    func engineCrash(engine: String) throws {
        let gateway = try GatewayProcess(engine: engine, arguments: ["--engines", "1"])
        let before = try gateway.slot0()
        let pending = Background { try gateway.client.request("POST", "/v1/conv2d", body: slowConvolutionBody) }
        #expect(try gateway.waitUntil { try gateway.slot0().inFlight == 1 })
        let pid = try #require(before.pid)
        #expect(kill(pid, SIGKILL) == 0)
        let reply = try pending.value()
        _ = try expectProblem(reply, 502)
        // Restarted with a new process; requests succeed again.
        #expect(try gateway.waitUntil { let s = try gateway.slot0(); return s.state == "ready" && s.pid != pid && s.pid != nil })
        status(try gateway.client.request("POST", "/v1/sum", body: json(#"{"data":[[1,2]]}"#)), 200)
        #expect(try gateway.slot0().restarts >= 1)
        let metrics = try gateway.client.request("GET", "/metrics")
        #expect(metrics.text.contains(#"forzium_engine_restarts_total{reason="crash"}"#))
        #expect(gateway.log.contains("engine crashed"))
        gateway.stop()
    }

    @Test("a request past its deadline gets 504 at once; its engine is cancelled, or replaced when it ignores the cancel")
    func deadline() throws {
        let gateway = try GatewayProcess(engine: "forzium-engine", arguments: ["--engines", "1"])
        let pid = try #require(try gateway.slot0().pid)
        let started = Date()
        let reply = try gateway.client.request("POST", "/v1/conv2d", body: slowConvolutionBody, headers: [("X-Forzium-Timeout-Ms", "300")])
        _ = try expectProblem(reply, 504)
        #expect(Date().timeIntervalSince(started) < 2, "the 504 was not immediate")
        // An engine that answers `$/cancelRequest` keeps its pid; one that ignores it past the grace period is replaced.
        #expect(try gateway.waitUntil { let s = try gateway.slot0(); return s.state == "ready" && s.inFlight == 0 && s.pid != nil })
        if try gateway.slot0().pid != pid { #expect(gateway.log.contains("replacing engine")) }
        status(try gateway.client.request("POST", "/v1/sum", body: json(#"{"data":[[1,2]]}"#)), 200)
        gateway.stop()
    }

    @Test("a full queue answers 503 with Retry-After")
    func fullQueue() throws {
        let gateway = try GatewayProcess(engine: "forzium-engine", arguments: ["--engines", "1", "--engine-concurrency", "1", "--queue-depth", "1"])
        let first = Background { try gateway.client.request("POST", "/v1/conv2d", body: slowConvolutionBody) }
        #expect(try gateway.waitUntil { try gateway.slot0().inFlight == 1 })
        let second = Background { try gateway.client.request("POST", "/v1/sum", body: json(#"{"data":[[1,2]]}"#)) }
        #expect(try gateway.waitUntil { try gateway.slot0().queued == 1 })
        let third = try gateway.client.request("POST", "/v1/sum", body: json(#"{"data":[[1,2]]}"#))
        _ = try expectProblem(third, 503)
        #expect(third.header("Retry-After") != nil)
        status(try first.value(), 200)
        status(try second.value(), 200)
        gateway.stop()
    }

    @Test("an engine killed from outside while it serves is restarted every time: answers in between keep the breaker shut")
    func killsBetweenAnswersDoNotOpenTheBreaker() throws {
        let gateway = try GatewayProcess(engine: "forzium-engine", arguments: ["--engines", "1", "--breaker-crashes", "2", "--breaker-window", "60"])
        var killed: [Int32] = []
        for _ in 0..<3 {
            let victim = try #require(try gateway.readyEngine(excluding: killed), "engine did not come back after a kill")
            #expect(try gateway.client.request("POST", "/v1/sum", body: json(#"{"data":[[1,2]]}"#)).status == 200)
            #expect(kill(victim, SIGKILL) == 0)
            killed.append(victim)
        }
        #expect(try gateway.waitUntil { let s = try gateway.slot0(); return s.state == "ready" && !killed.contains(s.pid ?? -1) })
        #expect(!gateway.log.contains("breaker open"))
        gateway.stop()
    }

    @Test("a crash-looping engine opens the breaker: no more restarts, /ready and engine routes 503")
    func breaker() throws {
        let gateway = try GatewayProcess(engine: "forzium-engine", arguments: ["--engines", "1", "--breaker-crashes", "2", "--breaker-window", "60"])
        var killed: [Int32] = []
        for _ in 0..<2 {
            let victim = try #require(try gateway.readyEngine(excluding: killed), "engine did not come back after a crash")
            #expect(kill(victim, SIGKILL) == 0)
            killed.append(victim)
        }
        #expect(try gateway.waitUntil { try gateway.slot0().state == "broken" })
        let ready = try gateway.ready()
        #expect(ready.status == 503)
        let reply = try gateway.client.request("POST", "/v1/sum", body: json(#"{"data":[[1,2]]}"#))
        _ = try expectProblem(reply, 503)
        #expect(reply.header("Retry-After") != nil)
        #expect(gateway.log.contains("breaker open"))
        gateway.stop()
    }

    @Test("no engine: /ready and engine routes answer 503")
    func noEngine() throws {
        let gateway = try GatewayProcess(engine: "/nonexistent/forzium-engine", arguments: ["--breaker-crashes", "1"])
        let ready = try gateway.ready()
        #expect(ready.status == 503)
        _ = try expectProblem(try gateway.client.request("POST", "/v1/sum", body: json(#"{"data":[[1,2]]}"#)), 503)
        status(try gateway.client.request("GET", "/health"), 200)
        gateway.stop()
    }

    @Test("an engine built from other schemas is refused at start-up, not on every request")
    func otherSchemasAreRefused() throws {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("forzium-old-engine-\(getpid()).py")
        try """
        #!/usr/bin/env python3
        import json, sys
        for line in sys.stdin:
            request = json.loads(line)
            if "id" in request:
                info = {"name": "old", "kind": "simd", "schema_digest": "0" * 64}
                print(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": info}), flush=True)
        """.write(to: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: script) }
        #expect(chmod(script.path, 0o755) == 0)
        let gateway = try GatewayProcess(engine: script.path, arguments: ["--breaker-crashes", "1"])
        #expect(try gateway.ready().status == 503)
        _ = try expectProblem(try gateway.client.request("POST", "/v1/sum", body: json(#"{"data":[[1,2]]}"#)), 503)
        #expect(gateway.log.contains("build the gateway and engines from the same sources"))
        gateway.stop()
    }

    @Test("streaming: the first rows arrive before the last row is computed", arguments: engineBinaries)
    func streamingIsIncremental(engine: String) throws {
        let gateway = try GatewayProcess(engine: engine)
        let n = 512
        let body = json(#"{"data":\#(matrixJSON(rows: n, cols: n)),"operation":"matmul","parameters":{"matrix_b":\#(matrixJSON(rows: n, cols: n, seed: 5))}}"#)
        var sawRowsBeforeDone = false
        var firstRowAt: Double?
        var doneAt: Double?
        let reply = try gateway.client.streaming("POST", "/stream", body: body) { raw, seconds in
            let text = String(decoding: raw, as: UTF8.self)
            let hasRow = text.contains(#"{"row":0,"#)
            let hasDone = text.contains(#"{"done":true"#)
            if hasRow, firstRowAt == nil { firstRowAt = seconds }
            if hasRow, !hasDone { sawRowsBeforeDone = true }
            if hasDone, doneAt == nil { doneAt = seconds }
        }
        status(reply, 200)
        let lines = reply.text.split(separator: "\n")
        #expect(lines.count == n + 1)
        #expect(sawRowsBeforeDone, "the first row lines and the done line arrived together")
        if let firstRowAt, let doneAt { #expect(firstRowAt < doneAt) }
        // Rows are complete and in order.
        for (i, line) in lines.dropLast().enumerated() where i % 97 == 0 {
            #expect(line.hasPrefix(#"{"row":\#(i),"values":["#))
        }
        gateway.stop()
    }

    @Test("a streaming client that goes away frees its engine slot; the gateway keeps serving")
    func streamingClientDisconnect() throws {
        let gateway = try GatewayProcess(engine: "forzium-engine", arguments: ["--engines", "1"])
        let n = 512
        let body = json(#"{"data":\#(matrixJSON(rows: n, cols: n)),"operation":"matmul","parameters":{"matrix_b":\#(matrixJSON(rows: n, cols: n, seed: 3))}}"#)
        let received = try gateway.client.abandon("/stream", body: body, after: 2000)
        #expect(received >= 2000)
        #expect(try gateway.waitUntil { try gateway.slot0().inFlight == 0 })
        status(try gateway.client.request("POST", "/v1/sum", body: json(#"{"data":[[1,2]]}"#)), 200)
        #expect(gateway.stop() == 0)
    }

    @Test("SIGTERM lets an in-flight request finish")
    func gracefulShutdown() throws {
        let gateway = try GatewayProcess(engine: "forzium-engine", arguments: ["--engines", "1"])
        let body = json(#"{"data":\#(matrixJSON(rows: 200, cols: 200)),"kernel":\#(matrixJSON(rows: 60, cols: 60))}"#)
        let pending = Background { try gateway.client.request("POST", "/v1/conv2d", body: body) }
        #expect(try gateway.waitUntil { try gateway.slot0().inFlight == 1 })
        kill(gateway.process.processIdentifier, SIGTERM)
        status(try pending.value(), 200)
        #expect(gateway.stop(timeout: 30) == 0)
        #expect(gateway.log.contains("engines stopped"))
    }
}
