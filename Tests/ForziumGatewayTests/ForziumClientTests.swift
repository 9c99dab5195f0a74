import Foundation
import OpenAPIRuntime
import Testing
@testable import ForziumClient

/// ForziumClient (generated from schemas/openapi.json, plus its hand-written layer) against the real gateway: every
/// route, typed bodies and results, a 422 decoded into the problem type, a non-finite result and the NDJSON stream.
@Suite("ForziumClient against the real gateway", .serialized)
struct ForziumClientTests {
    static func withGateway(_ body: (ForziumClient) async throws -> Void) async throws {
        let gateway = try GatewayProcess(engine: "forzium-engine")
        defer { gateway.stop() }
        try await body(ForziumClient(serverURL: URL(string: "http://127.0.0.1:\(gateway.port)")!))
    }

    @Test func everyOperationRouteThroughTheTypedMethods() async throws {
        try await Self.withGateway { client in
            let a: ForziumClient.Matrix = [[1, 2], [3, 4]]
            #expect(try await client.multiply(a, by: 3) == [[3, 6], [9, 12]])
            #expect(try await client.multiply(a) == [[1, 2], [3, 4]])
            #expect(try await client.add(a, 0.5) == [[1.5, 2.5], [3.5, 4.5]])
            #expect(try await client.matmul(a, [[5, 6], [7, 8]]) == [[19, 22], [43, 50]])
            #expect(try await client.transpose([[1, 2, 3], [4, 5, 6]]) == [[1, 4], [2, 5], [3, 6]])
            #expect(try await client.elementwiseAdd([[1, 2]], [[10, 20]]) == [[11, 22]])
            #expect(try await client.elementwiseSub([[1, 2]], [[10, 20]]) == [[-9, -18]])
            #expect(try await client.elementwiseMul([[1, 2]], [[10, 20]]) == [[10, 40]])
            #expect(try await client.elementwiseDiv([[1, 2]], [[4, 8]]) == [[0.25, 0.25]])
            #expect(try await client.conv2d([[1, 2, 3], [4, 5, 6], [7, 8, 9]], kernel: [[1, 0], [0, 1]]) == [[6, 8], [12, 14]])
            #expect(try await client.maxPool2d([[1, 2, 3, 4], [5, 6, 7, 8]], size: 2) == [[6, 8]])
            #expect(try await client.normalize([[0, 5], [10, 5]], mode: .minmax) == [[0, 0.5], [1, 0.5]])
            #expect(try await client.reshape([[1, 2, 3, 4]], rows: 2, cols: 2) == [[1, 2], [3, 4]])
            #expect(try await client.sum(a) == 10)
            #expect(try await client.sum(a, axis: .columns) == [[4, 6]])
            #expect(try await client.mean(a, axis: .columns) == [[2, 3]])
            #expect(try await client.mean(a) == 2.5)
            #expect(try await client.min(a, axis: .rows) == [[1], [3]])
            #expect(try await client.min(a) == 1)
            #expect(try await client.max(a) == 4)
            #expect(try await client.max(a, axis: .rows) == [[2], [4]])

            // Non-finite results are null on the wire and nil here.
            #expect(try await client.sum([[1e308, 1e308]]) == nil)
            #expect(try await client.elementwiseDiv([[1, -1, 0]], [[0, 0, 1]]) == [[nil, nil, 0]])
            // The same through the generated client: the result property is optional because the schema allows null.
            let raw = try await client.generated.postV1Sum(body: .json(.init(data: [[1e308, 1e308]])))
            #expect(try raw.ok.body.json.result == nil)
        }
    }

    @Test func computeStreamAndProblems() async throws {
        try await Self.withGateway { client in
            // Typed per-operation bodies.
            let product = try await client.compute(.matmul(.init(data: [[1, 2], [3, 4]], operation: .matmul, parameters: .init(matrixB: [[5, 6], [7, 8]]))))
            #expect(product.result == .matrix([[19, 22], [43, 50]]))
            #expect(product.operation == "matmul")
            #expect(["simd", "fallback"].contains(product.engine))
            let total = try await client.compute(.sum(.init(data: [[1, 2], [3, 4]], operation: .sum)))
            #expect(total.result == .scalar(10))
            let overflow = try await client.compute(.sum(.init(data: [[1e308, 1e308]], operation: .sum, parameters: .init(axis: nil))))
            #expect(overflow.result == .scalar(nil))
            let scaled = try await client.compute(.multiply(.init(data: [[1, 2]], operation: .multiply, parameters: .init(factor: 2))))
            #expect(scaled.result == .matrix([[2, 4]]))

            // NDJSON, row by row.
            var rows: [RowStream.Row] = []
            for try await row in try await client.stream(.transpose(.init(data: [[1, 2], [3, 4], [5, 6]], operation: .transpose))) {
                rows.append(row)
            }
            #expect(rows == [.init(index: 0, values: [1, 3, 5]), .init(index: 1, values: [2, 4, 6])])
            var streamedDivision: [[Double?]] = []
            for try await row in try await client.stream(.elementwiseDiv(.init(data: [[1], [2]], operation: .elementwiseDiv, parameters: .init(other: [[0], [2]])))) {
                streamedDivision.append(row.values)
            }
            #expect(streamedDivision == [[nil], [1]])

            // A 422 from the engine (shapes that do not agree), decoded into the generated problem type...
            let mismatch = Components.Schemas.ComputeParams.matmul(.init(data: [[1, 2, 3]], operation: .matmul, parameters: .init(matrixB: [[1, 2]])))
            guard case .unprocessableContent(let refused) = try await client.generated.postCompute(body: .json(mismatch)) else {
                Issue.record("expected 422"); return
            }
            let problem = try refused.body.applicationProblemJson
            #expect(problem.status == 422)
            #expect(problem.errors?.first?.pointer.hasPrefix("/parameters/matrix_b") == true)
            #expect(!problem.requestId.isEmpty)
            // ... and thrown as ForziumProblem by the typed methods, the stream included.
            await #expect(throws: ForziumProblem.self) { _ = try await client.compute(mismatch) }
            do {
                _ = try await client.reshape([[1, 2, 3]], rows: 2, cols: 2)
                Issue.record("reshape of 3 elements into 2×2 was accepted")
            } catch let error as ForziumProblem {
                #expect(error.status == 422)
                #expect(error.problem.errors?.isEmpty == false)
            }
            await #expect(throws: ForziumProblem.self) { _ = try await client.stream(mismatch) }
            // A schema violation (422 from the gateway's validator) through the generated client: max_pool2d size 0.
            guard case .unprocessableContent(let invalid) = try await client.generated.postV1MaxPool2d(body: .json(.init(data: [[1]], size: 0))) else {
                Issue.record("expected 422"); return
            }
            #expect(try invalid.body.applicationProblemJson.errors?.map(\.pointer) == ["/size"])
        }
    }

    @Test func serviceRoutes() async throws {
        try await Self.withGateway { client in
            #expect(try await client.health() == "ok")
            #expect(try await client.live() == "ok")
            let ready = try await client.ready()
            #expect(ready.status == .ready)
            #expect(ready.engine == .fallback)
            #expect(ready.engines.count >= 1)
            #expect(ready.engines.first?.pid != nil)
            let info = try await client.info()
            #expect(info.name == "forzium-gateway")
            #expect(info.engineInfo.kind == .fallback)
            #expect(info.routes.contains("POST /compute"))
            #expect(try await client.metrics().contains("# TYPE"))
            let document = try await client.openAPIDocument()
            #expect(document.value["openapi"] as? String == "3.1.0")
            #expect(try await client.docs().contains("<html"))
        }
    }

    @Test func openInferenceProtocolRoutesThroughTheGeneratedClient() async throws {
        try await Self.withGateway { client in
            let v2 = client.generated
            let server = try await v2.getV2(.init()).ok.body.json
            #expect(server.extensions.contains("binary_tensor_data"))
            #expect(try await v2.getV2HealthLive(.init()).ok.body.json.live)
            #expect(try await v2.getV2HealthReady(.init()).ok.body.json.ready)
            let metadata = try await v2.getV2ModelsModel(.init(path: .init(model: .matmul))).ok.body.json
            #expect(metadata.inputs.map(\.name) == ["data", "matrix_b"])
            #expect(metadata.outputs.map(\.name) == ["result"])
            #expect(try await v2.getV2ModelsModelReady(.init(path: .init(model: .transpose))).ok.body.json.ready)
            // JSON tensors, flat and row-major.
            let request = Components.Schemas.InferRequestV2(id: "t1", inputs: [
                .init(name: "data", shape: [2, 2], datatype: "FP64", data: [1, 2, 3, 4]),
                .init(name: "matrix_b", shape: [2, 2], datatype: "FP64", data: [5, 6, 7, 8]),
            ])
            let answer = try await v2.postV2ModelsModelInfer(.init(path: .init(model: .matmul), body: .json(request))).ok.body.json
            #expect(answer.id == "t1" && answer.modelName == "matmul")
            #expect(answer.outputs.first?.shape == [2, 2])
            #expect(answer.outputs.first?.data == [19, 22, 43, 50])
        }
    }

    @Test func apiKeysAndDeadlineHeadersAreSent() async throws {
        let gateway = try GatewayProcess(engine: "forzium-engine", arguments: ["--api-keys", "secret-key-1"])
        defer { gateway.stop() }
        let url = URL(string: "http://127.0.0.1:\(gateway.port)")!
        await #expect(throws: ForziumProblem.self) { _ = try await ForziumClient(serverURL: url).transpose([[1]]) }
        let keyed = ForziumClient(serverURL: url, apiKey: "secret-key-1", timeoutMilliseconds: 30_000)
        #expect(try await keyed.transpose([[1, 2]]) == [[1], [2]])
    }
}

/// The generated code in Sources/ForziumClient/Generated is committed: it must come from the committed document.
@Suite("ForziumClient generated code")
struct ForziumClientGeneratedTests {
    static let generatedDirectory = repositoryRoot.appendingPathComponent("Sources/ForziumClient/Generated")

    static func sha256(_ path: String) throws -> String {
        let result = try runTool("/usr/bin/env", ["sha256sum", path])
        return String(result.output.prefix(64))
    }

    @Test func generatedFromTheCommittedOpenAPIDocument() throws {
        #expect(try Self.sha256("schemas/openapi.json") == GeneratedFrom.openAPIDocumentSHA256,
                "Sources/ForziumClient/Generated is stale: run bash scripts/gen-swift-client.sh")
        #expect(try Self.sha256("clients/swift/openapi-generator-config.yaml") == GeneratedFrom.configurationSHA256,
                "Sources/ForziumClient/Generated is stale: run bash scripts/gen-swift-client.sh")
    }

    /// The issue's bar: typed inputs and outputs. An untyped container appears only for /openapi.json (any JSON object).
    @Test func operationsAreTyped() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.generatedDirectory.path).filter { $0.hasSuffix(".swift") }
        var untyped: [String] = []
        for file in files {
            let text = try String(contentsOf: Self.generatedDirectory.appendingPathComponent(file), encoding: .utf8)
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where line.contains("OpenAPIValueContainer") || line.contains("OpenAPIObjectContainer") || line.contains("OpenAPIArrayContainer") {
                untyped.append("\(file):\(number + 1): \(line.trimmingCharacters(in: .whitespaces))")
            }
        }
        // /openapi.json's body, and the params of the engine-only methods ping and engine.info (empty objects).
        let allowed = ["case json(OpenAPIRuntime.OpenAPIObjectContainer)", "public var json: OpenAPIRuntime.OpenAPIObjectContainer",
                       "OpenAPIRuntime.OpenAPIObjectContainer.self", "typealias PingParams", "typealias EngineInfoParams"]
        let unexpected = untyped.filter { entry in !allowed.contains { entry.contains($0) } }
        #expect(unexpected.isEmpty, "\(unexpected.joined(separator: "\n"))")
        let operations = try String(contentsOf: Self.generatedDirectory.appendingPathComponent("Types+Operations.swift"), encoding: .utf8)
        #expect(operations.components(separatedBy: "OpenAPIObjectContainer").count - 1 <= 3)
        // /compute's body: one typed case per operation, each with typed data, operation and parameters.
        let schemas = try String(contentsOf: Self.generatedDirectory.appendingPathComponent("Types+Components+Schemas.swift"), encoding: .utf8)
        #expect(schemas.contains("case matmul(Components.Schemas.MatmulComputeRequest)"))
        #expect(schemas.contains("public var parameters: Components.Schemas.MatmulParameters"))
    }
}
