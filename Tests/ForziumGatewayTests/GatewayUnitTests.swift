import Foundation
import ForziumJSON
import ForziumRPC
import NIOCore
import NIOHTTP1
import Testing
@testable import ForziumGatewayCore

@Suite("Request line splicing")
struct RequestLineTests {
    @Test func splicesBodyAndTurnsNewlinesIntoSpaces() throws {
        let body = Array("{\r\n  \"data\": [[1, 2]],\n  \"operation\": \"transpose\"\n}".utf8)
        let line = EnginePool.requestParts(id: 9, method: "compute", params: ByteBuffer(bytes: body)).flatMap { Array($0.readableBytesView) }
        #expect(line.last == 0x0A)
        #expect(!line.dropLast().contains(0x0A))
        #expect(!line.contains(0x0D))
        let parsed = try JSONParser().parse(Array(line.dropLast()))
        guard case .object(let o) = parsed, case .object(let params)? = o["params"], case .string(let op)? = params["operation"],
              case .number(let id)? = o["id"], case .string(let method)? = o["method"] else {
            Issue.record("bad request line"); return
        }
        #expect(id.value == 9)
        #expect(method == "compute")
        #expect(op == "transpose")
    }
}

extension RequestLineTests {
    @Test func largeBodiesAreSentFromTheirOwnBufferUnlessTheyHoldNewlines() throws {
        let big = "{\"data\":[" + Array(repeating: "[1.5,2.5]", count: 10_000).joined(separator: ",") + "],\"operation\":\"sum\"}"
        let parts = EnginePool.requestParts(id: 5, method: "compute", params: ByteBuffer(string: big))
        #expect(parts.count == 3)
        let joined = parts.flatMap { Array($0.readableBytesView) }
        #expect(joined.last == 0x0A)
        let parsed = try JSONParser().parse(Array(joined.dropLast()))
        guard case .object(let o) = parsed, case .object(let params)? = o["params"], case .string(let op)? = params["operation"] else {
            Issue.record("bad spliced line"); return
        }
        #expect(op == "sum")

        let withNewlines = ByteBuffer(string: big.replacingOccurrences(of: "],[", with: "],\n["))
        let single = EnginePool.requestParts(id: 6, method: "compute", params: withNewlines)
        #expect(single.count == 1)
        #expect(!single[0].readableBytesView.dropLast().contains(0x0A))
        let small = EnginePool.requestParts(id: 7, method: "compute", params: ByteBuffer(string: #"{"data":[[1]],"operation":"sum"}"#))
        #expect(small.count == 1)
    }
}

@Suite("NDJSON rows")
struct NDJSONRowsTests {
    @Test func oneLinePerRowWithIndexesFromStart() {
        let line = Array(#"{"jsonrpc":"2.0","method":"stream.rows","params":{"request":1,"start":4,"rows":[[1.0,2.0],[3.0,-4e-7]]}}"#.utf8)
        var out = ByteBuffer()
        NDJSONRows.write(notification: line, into: &out)
        let text = out.getString(at: 0, length: out.readableBytes)!
        #expect(text == "{\"row\":4,\"values\":[1.0,2.0]}\n{\"row\":5,\"values\":[3.0,-4e-7]}\n")
    }
}

@Suite("Routing and problems")
struct RoutingTests {
    @Test func unknownPathIs404AndWrongMethodIs405WithAllow() {
        let table = RouteTable.embedded
        #expect(throws: GatewayError.self) { try table.match(method: "GET", path: "/nope") }
        do {
            _ = try table.match(method: "GET", path: "/compute")
            Issue.record("GET /compute matched")
        } catch {
            #expect(error.status.code == 405)
            guard case .methodNotAllowed(let allow) = error.code else { Issue.record("not 405"); return }
            #expect(allow == ["POST"])
        }
        #expect((try? table.match(method: "POST", path: "/v1/matmul"))?.engineMethod == "matmul")
    }

    @Test func everyOperationHasItsOwnRoute() {
        let operations = ["multiply", "add", "matmul", "transpose", "elementwise_add", "elementwise_sub", "elementwise_mul",
                          "elementwise_div", "conv2d", "max_pool2d", "normalize", "reshape", "sum", "mean", "min", "max"]
        for op in operations {
            let route = try? RouteTable.embedded.match(method: "POST", path: "/v1/\(op)")
            #expect(route?.params == "methods/\(op).params.json")
        }
    }

    @Test func problemDocumentHasTheRFC9457Members() throws {
        let error = GatewayError(.validation, "bad body", errors: [PointerIssue(pointer: "/data/0", message: "expected array")])
        let doc = try JSONParser().parse(error.problemBody(requestID: "abc", instance: "/compute"))
        guard case .object(let o) = doc else { Issue.record("not an object"); return }
        #expect(o.keys == ["type", "title", "status", "detail", "request_id", "instance", "errors"])
        guard case .number(let status)? = o["status"] else { Issue.record("no status"); return }
        #expect(status.value == 422)
        #expect(error.status.code == 422)
    }

    @Test func statusTable() {
        let table: [(GatewayError.Code, Int)] = [
            (.malformedJSON, 400), (.unauthorized, 401), (.notFound, 404), (.methodNotAllowed(allow: ["GET"]), 405),
            (.bodyTooLarge, 413), (.unsupportedMediaType, 415), (.validation, 422), (.engineInternal, 500),
            (.engineFailed, 502), (.unavailable(retryAfterSeconds: 1), 503), (.deadline, 504),
        ]
        for (code, status) in table { #expect(GatewayError(code, "x").status.code == status) }
        #expect(EngineAnswer.map(engineError: RPCError(code: -32000, message: "big")).status.code == 413)
        #expect(EngineAnswer.map(engineError: RPCError(code: -32602, message: "bad")).status.code == 422)
        #expect(EngineAnswer.map(engineError: RPCError(code: -32603, message: "oops")).status.code == 500)
    }

    @Test func contentTypes() {
        #expect(EngineRequestReader.isJSON("application/json"))
        #expect(EngineRequestReader.isJSON("Application/JSON; charset=utf-8"))
        #expect(EngineRequestReader.isJSON("application/merge-patch+json"))
        #expect(!EngineRequestReader.isJSON("text/plain"))
        #expect(!EngineRequestReader.isJSON(nil))
    }

    @Test func requestIDIsKeptOrGenerated() {
        #expect(RequestIDGenerator.isValid("client-id-1"))
        #expect(!RequestIDGenerator.isValid("bad id with spaces"))
        #expect(!RequestIDGenerator.isValid(String(repeating: "x", count: 129)))
        #expect(RequestIDGenerator.next().count == 24)
        #expect(RequestIDGenerator.next() != RequestIDGenerator.next())
        #expect(RequestIDGenerator.length(of: 1) == 24)
        #expect(RequestIDGenerator.length(of: UInt64.max) == 32)
    }
}

@Suite("HTTP Date values")
struct HTTPDateTests {
    @Test func knownInstants() {
        #expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")  // RFC 9110's example
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(951_782_400) == "Tue, 29 Feb 2000 00:00:00 GMT")
        #expect(HTTPDate.format(4_102_444_799) == "Thu, 31 Dec 2099 23:59:59 GMT")
        #expect(HTTPDate.format(Int.max) == "Thu, 01 Jan 1970 00:00:00 GMT")  // beyond struct tm: the epoch, 29 bytes
    }

    @Test func agreesWithFoundationAcrossTheCentury() {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        var generator = SystemRandomNumberGenerator()
        for _ in 0 ..< 2_000 {
            let second = Int.random(in: 0 ..< 4_102_444_800, using: &generator)
            #expect(HTTPDate.format(second) == formatter.string(from: Date(timeIntervalSince1970: TimeInterval(second))))
        }
    }

    @Test func nowIsThisSecond() {
        let before = Int(Date().timeIntervalSince1970)
        let now = HTTPDate.now()
        let after = Int(Date().timeIntervalSince1970)
        #expect(now.utf8.count == HTTPDate.length)
        #expect((before ... after).map(HTTPDate.format).contains(now))
    }
}

@Suite("execution_time_ms digits")
struct MillisecondsTests {
    private func written(_ value: Double) -> String {
        var buffer = ByteBuffer()
        EngineAnswer.writeMilliseconds(value, into: &buffer)
        return String(buffer: buffer)
    }

    @Test func threeDecimalsRoundedHalfAwayFromZero() {
        #expect(written(0) == "0.000")
        #expect(written(1.5) == "1.500")
        #expect(written(12.3454) == "12.345")
        #expect(written(0.0005) == "0.001")
        #expect(written(0.00049) == "0.000")
        #expect(written(2.0004999) == "2.000")
        #expect(written(123_456.789) == "123456.789")
        #expect(written(-3) == "0.000")
        #expect(written(.nan) == "0.000")
    }

    @Test func matchesRoundingTheScaledValue() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0 ..< 5_000 {
            let value = Double.random(in: 0 ..< 100_000, using: &generator)
            let micros = Int((value * 1000).rounded())
            #expect(written(value) == "\(micros / 1000).\(String(micros % 1000).leftPadded(to: 3))")
        }
    }
}

private extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

@Suite("Inline answers encoded by the gateway")
struct InlineAnswerTests {
    /// Splits an encoded response into its status line, fields (in order) and body.
    private func parse(_ buffer: ByteBuffer) throws -> (status: String, fields: [(String, String)], body: String) {
        let text = String(decoding: buffer.readableBytesView, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        try #require(parts.count == 2)
        var lines = parts[0].components(separatedBy: "\r\n")
        let status = lines.removeFirst()
        let fields = lines.map { line -> (String, String) in
            let colon = line.firstIndex(of: ":")!
            return (String(line[..<colon]), String(line[line.index(after: colon)...].drop(while: { $0 == " " })))
        }
        return (status, fields, parts[1])
    }

    private func answer(_ body: String, id: String?) -> InlineAnswer {
        InlineAnswer(kind: "simd", clientRequestID: id, bodyCapacity: body.utf8.count) { $0.writeString(body) }
    }

    @Test func headAndBodyInOneBuffer() throws {
        let body = #"{"result":[[2.0]],"operation":"multiply"}"#
        let inline = answer(body, id: "client-7")
        #expect(String(buffer: inline.body) == body)
        let (status, fields, received) = try parse(inline.encoded(close: false))
        #expect(status == "HTTP/1.1 200 OK")
        #expect(fields.map(\.0) == ["Content-Type", "X-Forzium-Engine", "Content-Length", "X-Request-ID", "Date"])
        #expect(fields[0].1 == "application/json")
        #expect(fields[1].1 == "simd")
        #expect(fields[2].1 == String(body.utf8.count))
        #expect(fields[3].1 == "client-7")
        #expect(fields[4].1.count == 29 && fields[4].1.hasSuffix(" GMT"))
        #expect(received == body)
    }

    @Test func closingAnswerSaysSoAndGeneratedIDsAreFresh() throws {
        let first = try parse(answer("{}", id: nil).encoded(close: true))
        let second = try parse(answer("{}", id: nil).encoded(close: false))
        #expect(first.fields.last! == ("Connection", "close"))
        #expect(!second.fields.contains { $0.0 == "Connection" })
        let ids = [first, second].map { $0.fields.first { $0.0 == "X-Request-ID" }!.1 }
        #expect(ids.allSatisfy { RequestIDGenerator.isValid($0) && $0.count >= 24 })
        #expect(ids[0] != ids[1])
        #expect(answer("{}", id: nil).requestIDText.count >= 24)
    }

    @Test func longestClientIDAndLargeBodyFit() throws {
        let id = String(repeating: "x", count: 128)
        let body = String(repeating: "7", count: 100_000)
        let (_, fields, received) = try parse(answer(body, id: id).encoded(close: true))
        #expect(fields.first { $0.0 == "X-Request-ID" }?.1 == id)
        #expect(fields.first { $0.0 == "Content-Length" }?.1 == "100000")
        #expect(received == body)
    }

    @Test func headerLookupsIgnoreCaseAndJoinRepeats() {
        var headers = HTTPHeaders([("Host", "a"), ("CONTENT-length", "12"), ("x-Forzium-Timeout-Ms", "5"), ("host", "b")])
        #expect(headers.value("content-length") == "12")
        #expect(headers.value("host") == "a, b")
        #expect(headers.count("host") == 2)
        #expect(headers.count("content-type") == 0)
        #expect(headers.value("x-forzium-timeout-ms") == "5")
        #expect(headers.value("x-forzium-timeout-mx") == nil)
        headers.add(name: "Transfer-Encoding", value: "chunked")
        #expect(headers.count("transfer-encoding") == 1)
        #expect(!HTTPHeaders.isField("content-lengtH2", named: "content-length"))
    }
}

@Suite("OpenAPI refs")
struct OpenAPIRefTests {
    @Test func relativeRefsBecomeComponentRefs() {
        let builder = OpenAPIBuilder(routes: .embedded, files: [])
        #expect(builder.rewriteRef("../defs/matrix.json", base: "methods/matmul.params.json") == "#/components/schemas/Matrix")
        #expect(builder.rewriteRef("../parameters/matmul.json#/properties/x", base: "defs/x/y.json") == "#/components/schemas/MatmulParameters/properties/x")
        #expect(builder.rewriteRef("https://forzium.dev/schemas/defs/axis.json", base: "methods/sum.params.json") == "#/components/schemas/Axis")
        #expect(builder.rewriteRef("compute.params.json", base: "methods/stream.params.json") == "#/components/schemas/ComputeParams")
    }

    @Test func componentNamesReadWellInGeneratedCode() {
        #expect(OpenAPIBuilder.componentName("defs/parameters/conv2d.json") == "Conv2dParameters")
        #expect(OpenAPIBuilder.componentName("methods/engine.info.result.json") == "EngineInfoResult")
        #expect(OpenAPIBuilder.componentName("methods/max_pool2d.params.json") == "MaxPool2dParams")
        #expect(OpenAPIBuilder.componentName("defs/compute-request/elementwise_add.json") == "ElementwiseAddComputeRequest")
        #expect(OpenAPIBuilder.componentName("defs/scalar-result.json") == "ScalarResult")
        // Every component of the document: an identifier in every target language, unique by construction (build()
        // throws on a clash).
        for file in GatewaySchemas.embedded {
            let name = OpenAPIBuilder.componentName(file.path)
            #expect(name.wholeMatch(of: /[A-Z][A-Za-z0-9]*/) != nil, "\(file.path) → \(name)")
        }
    }

    @Test func twoSchemasWithOneComponentNameAreRefused() {
        let file = #"{"$id": "x", "type": "object"}"#
        let builder = OpenAPIBuilder(routes: .embedded, files: [(path: "defs/a-b.json", text: file), (path: "methods/a_b.json", text: file)])
        #expect(throws: OpenAPIBuilderError.self) { try builder.build() }
    }
}

@Suite("Answer summary")
struct AnswerSummaryTests {
    private func summary(_ operation: String, _ kind: String, _ milliseconds: Double) -> String {
        var out = ByteBuffer()
        ComputeHandler.writeSummary(operation: operation, kind: kind, milliseconds: milliseconds, into: &out)
        return String(buffer: out)
    }

    @Test("the summary fields: names as they are, the time with three decimals")
    func plainNames() {
        #expect(summary("multiply", "simd", 1.2345) == #","operation":"multiply","engine":"simd","execution_time_ms":1.235"#)
        #expect(summary("sum", "fallback", 0) == #","operation":"sum","engine":"fallback","execution_time_ms":0.000"#)
        #expect(summary("mean", "simd", 0.0004) == #","operation":"mean","engine":"simd","execution_time_ms":0.000"#)
        #expect(summary("max", "simd", 98_765.4321) == #","operation":"max","engine":"simd","execution_time_ms":98765.432"#)
        #expect(summary("min", "simd", -3) == #","operation":"min","engine":"simd","execution_time_ms":0.000"#)
    }

    @Test("a name that needs escaping is escaped, with the same fields around it")
    func escapedName() {
        #expect(summary("a\"b", "si\\md", 2) == #","operation":"a\"b","engine":"si\\md","execution_time_ms":2.000"#)
        #expect(summary("é", "simd", 2) == #","operation":"é","engine":"simd","execution_time_ms":2.000"#)
    }
}
