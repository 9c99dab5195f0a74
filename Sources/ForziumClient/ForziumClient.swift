import AsyncHTTPClient
import Foundation
import HTTPTypes
import OpenAPIRuntime

/// A client of the Forzium gateway.
///
/// Every operation is a method with plain Swift types (`try await client.matmul(a, b)` → `[[Double?]]`, `nil` where a
/// value is not finite); errors come as `ForziumProblem`, the gateway's RFC 9457 problem. `generated` is the client
/// swift-openapi-generator made from `schemas/openapi.json`: every route, with every documented response as a case.
///
/// ```swift
/// let client = ForziumClient(serverURL: URL(string: "http://127.0.0.1:8000")!)
/// let product = try await client.matmul([[1, 2], [3, 4]], [[5, 6], [7, 8]])
/// let answer = try await client.compute(.sum(.init(data: [[1, 2]], operation: .sum)))
/// for try await row in try await client.stream(.transpose(.init(data: [[1, 2]], operation: .transpose))) { print(row.values) }
/// ```
public struct ForziumClient: Sendable {
    /// The generated client, without the error translation of the methods below.
    public let generated: Client
    /// The generated client with non-2xx answers thrown as `ForziumProblem`.
    private let checked: Client

    /// - Parameters:
    ///   - serverURL: The gateway, e.g. `http://127.0.0.1:8000`.
    ///   - apiKey: Sent as a bearer token (needed only when the gateway runs with `--api-keys`).
    ///   - timeoutMilliseconds: Sent as `X-Forzium-Timeout-Ms` with every request (the gateway answers 504 past it).
    ///   - transport: Default: `ForziumTransport()` (AsyncHTTPClient's shared client, bodies sent whole, one-minute
    ///     timeout); any `ClientTransport` works, e.g. swift-openapi-urlsession's `URLSessionTransport`.
    public init(serverURL: URL, apiKey: String? = nil, timeoutMilliseconds: Int? = nil,
                transport: any ClientTransport = ForziumTransport()) {
        var middlewares: [any ClientMiddleware] = []
        if apiKey != nil || timeoutMilliseconds != nil {
            middlewares.append(RequestHeaders(apiKey: apiKey, timeoutMilliseconds: timeoutMilliseconds))
        }
        generated = Client(serverURL: serverURL, transport: transport, middlewares: middlewares)
        checked = Client(serverURL: serverURL, transport: transport, middlewares: middlewares + [ProblemThrower()])
    }

    public typealias Matrix = [[Double]]
    /// A result matrix: `nil` where a value is not finite (NaN or an infinity; JSON has no token for them).
    public typealias ResultMatrix = [[Double?]]

    /// The axis of a reduction.
    public enum Axis: Int, Sendable {
        /// Down each column: a 1×cols result.
        case columns = 0
        /// Along each row: a rows×1 result.
        case rows = 1
    }

    public typealias NormalizeMode = Components.Schemas.NormalizeMode

    // MARK: /v1 operations

    public func multiply(_ data: Matrix, by factor: Double? = nil) async throws -> ResultMatrix {
        try await call { try await checked.postV1Multiply(body: .json(.init(data: data, factor: factor))).ok.body.json.result }
    }

    public func add(_ data: Matrix, _ addend: Double? = nil) async throws -> ResultMatrix {
        try await call { try await checked.postV1Add(body: .json(.init(data: data, addend: addend))).ok.body.json.result }
    }

    /// `a` × `b`.
    public func matmul(_ a: Matrix, _ b: Matrix) async throws -> ResultMatrix {
        try await call { try await checked.postV1Matmul(body: .json(.init(data: a, matrixB: b))).ok.body.json.result }
    }

    public func transpose(_ data: Matrix) async throws -> ResultMatrix {
        try await call { try await checked.postV1Transpose(body: .json(.init(data: data))).ok.body.json.result }
    }

    public func elementwiseAdd(_ a: Matrix, _ b: Matrix) async throws -> ResultMatrix {
        try await call { try await checked.postV1ElementwiseAdd(body: .json(.init(data: a, other: b))).ok.body.json.result }
    }

    public func elementwiseSub(_ a: Matrix, _ b: Matrix) async throws -> ResultMatrix {
        try await call { try await checked.postV1ElementwiseSub(body: .json(.init(data: a, other: b))).ok.body.json.result }
    }

    public func elementwiseMul(_ a: Matrix, _ b: Matrix) async throws -> ResultMatrix {
        try await call { try await checked.postV1ElementwiseMul(body: .json(.init(data: a, other: b))).ok.body.json.result }
    }

    public func elementwiseDiv(_ a: Matrix, _ b: Matrix) async throws -> ResultMatrix {
        try await call { try await checked.postV1ElementwiseDiv(body: .json(.init(data: a, other: b))).ok.body.json.result }
    }

    /// Valid 2-D convolution (cross-correlation, no padding, stride 1).
    public func conv2d(_ data: Matrix, kernel: Matrix) async throws -> ResultMatrix {
        try await call { try await checked.postV1Conv2d(body: .json(.init(data: data, kernel: kernel))).ok.body.json.result }
    }

    public func maxPool2d(_ data: Matrix, size: Int) async throws -> ResultMatrix {
        try await call { try await checked.postV1MaxPool2d(body: .json(.init(data: data, size: size))).ok.body.json.result }
    }

    public func normalize(_ data: Matrix, mode: NormalizeMode? = nil) async throws -> ResultMatrix {
        try await call { try await checked.postV1Normalize(body: .json(.init(data: data, mode: mode))).ok.body.json.result }
    }

    public func reshape(_ data: Matrix, rows: Int, cols: Int) async throws -> ResultMatrix {
        try await call { try await checked.postV1Reshape(body: .json(.init(data: data, rows: rows, cols: cols))).ok.body.json.result }
    }

    /// The sum of every element; `nil` when it is not finite.
    public func sum(_ data: Matrix) async throws -> Double? {
        try Self.scalar(try await call { try await checked.postV1Sum(body: .json(.init(data: data))).ok.body.json.result })
    }

    /// Sums along an axis (1×cols for `.columns`, rows×1 for `.rows`).
    public func sum(_ data: Matrix, axis: Axis) async throws -> ResultMatrix {
        try Self.matrix(try await call { try await checked.postV1Sum(body: .json(.init(data: data, axis: axis.rawValue))).ok.body.json.result })
    }

    public func mean(_ data: Matrix) async throws -> Double? {
        try Self.scalar(try await call { try await checked.postV1Mean(body: .json(.init(data: data))).ok.body.json.result })
    }

    public func mean(_ data: Matrix, axis: Axis) async throws -> ResultMatrix {
        try Self.matrix(try await call { try await checked.postV1Mean(body: .json(.init(data: data, axis: axis.rawValue))).ok.body.json.result })
    }

    public func min(_ data: Matrix) async throws -> Double? {
        try Self.scalar(try await call { try await checked.postV1Min(body: .json(.init(data: data))).ok.body.json.result })
    }

    public func min(_ data: Matrix, axis: Axis) async throws -> ResultMatrix {
        try Self.matrix(try await call { try await checked.postV1Min(body: .json(.init(data: data, axis: axis.rawValue))).ok.body.json.result })
    }

    public func max(_ data: Matrix) async throws -> Double? {
        try Self.scalar(try await call { try await checked.postV1Max(body: .json(.init(data: data))).ok.body.json.result })
    }

    public func max(_ data: Matrix, axis: Axis) async throws -> ResultMatrix {
        try Self.matrix(try await call { try await checked.postV1Max(body: .json(.init(data: data, axis: axis.rawValue))).ok.body.json.result })
    }

    // MARK: /compute and /stream

    /// The request of /compute and /stream: one typed case per operation, e.g.
    /// `.matmul(.init(data: a, operation: .matmul, parameters: .init(matrixB: b)))`.
    public typealias ComputeRequest = Components.Schemas.ComputeParams

    /// A /compute answer.
    public struct Computed: Sendable, Hashable {
        public enum Value: Sendable, Hashable {
            case matrix(ResultMatrix)
            /// Reductions without an axis; `nil` when not finite.
            case scalar(Double?)
        }

        public var result: Value
        public var operation: String
        /// The engine kind that ran it: `simd` or `fallback`.
        public var engine: String
        public var executionTimeMs: Double
    }

    /// Runs one operation with the ForziumAPI request shape.
    public func compute(_ request: ComputeRequest) async throws -> Computed {
        let body = try await call { try await checked.postCompute(body: .json(request)).ok.body.json }
        let value: Computed.Value
        if let result = body.result {
            if let matrix = result.value1 { value = .matrix(matrix) } else { value = .scalar(result.value2) }
        } else {
            value = .scalar(nil)
        }
        return Computed(result: value, operation: body.operation, engine: body.engine, executionTimeMs: body.executionTimeMs)
    }

    /// Runs one operation and reads the result row by row as the gateway streams it (NDJSON).
    public func stream(_ request: ComputeRequest) async throws -> RowStream {
        RowStream(body: try await call { try await checked.postStream(body: .json(request)).ok.body.applicationXNdjson })
    }

    // MARK: Service routes

    /// `/health`: the process is up.
    public func health() async throws -> String {
        try await call { try await checked.getHealth().ok.body.json.status.rawValue }
    }

    /// `/live`: the same answer as /health.
    public func live() async throws -> String {
        try await call { try await checked.getLive().ok.body.json.status.rawValue }
    }

    /// `/ready`, whether ready (200) or not (503): the body says which.
    public func ready() async throws -> Components.Schemas.Readiness {
        try await call {
            switch try await generated.getReady() {
            case .ok(let ok): return try ok.body.json
            case .serviceUnavailable(let unavailable): return try unavailable.body.json
            case .undocumented(let status, _): throw ForziumProblem(status: status, detail: "undocumented answer to /ready")
            }
        }
    }

    /// `/`: the service, its routes and the engine's `engine.info`.
    public func info() async throws -> Components.Schemas.ServiceInfo {
        try await call { try await checked.getRoot().ok.body.json }
    }

    /// `/metrics`: Prometheus text.
    public func metrics() async throws -> String {
        try await call { try await String(collecting: checked.getMetrics().ok.body.plainText, upTo: 16 << 20) }
    }

    /// `/openapi.json`: the OpenAPI document the client was generated from (when the server is the same version).
    public func openAPIDocument() async throws -> OpenAPIObjectContainer {
        try await call { try await checked.getOpenapiJson().ok.body.json }
    }

    /// `/docs`: the HTML page.
    public func docs() async throws -> String {
        try await call { try await String(collecting: checked.getDocs().ok.body.html, upTo: 16 << 20) }
    }

    // MARK: Helpers

    /// Unwraps the generated client's `ClientError` around a `ForziumProblem`.
    private func call<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ClientError {
            if let problem = error.underlyingError as? ForziumProblem { throw problem }
            throw error
        }
    }

    private static func scalar(_ result: Components.Schemas.ReductionResult?) throws -> Double? {
        guard let result else { return nil }
        if result.value2 != nil { throw ForziumProblem(status: 200, detail: "expected a number, got a matrix") }
        return result.value1
    }

    private static func matrix(_ result: Components.Schemas.ReductionResult?) throws -> ResultMatrix {
        guard let matrix = result?.value2 else { throw ForziumProblem(status: 200, detail: "expected a matrix, got a number") }
        return matrix
    }
}

/// An error answer of the gateway (RFC 9457 problem details; `errors` locates each problem in an invalid body).
public struct ForziumProblem: Error, Sendable, CustomStringConvertible {
    public var problem: Components.Schemas.Problem

    public init(_ problem: Components.Schemas.Problem) { self.problem = problem }

    /// For an answer that carried no problem document.
    init(status: Int, detail: String) {
        problem = .init(_type: "about:blank", title: "Unexpected answer", status: status, detail: detail, requestId: "")
    }

    public var status: Int { problem.status }
    public var description: String {
        var text = "\(problem.status) \(problem.title): \(problem.detail)"
        for issue in problem.errors ?? [] { text += "\n  at \(issue.pointer.isEmpty ? "/" : issue.pointer): \(issue.message)" }
        return text
    }
}

/// The rows of a /stream answer, in order. Ends after the gateway's done line; throws `ForziumProblem` when the engine
/// failed mid-stream, and `RowStream.Incomplete` when the answer ended without a done line.
public struct RowStream: AsyncSequence, Sendable {
    public struct Row: Sendable, Hashable {
        /// Index of the row in the result.
        public var index: Int
        /// Its values; `nil` where not finite.
        public var values: [Double?]
    }

    public struct Incomplete: Error {}

    public typealias Element = Row
    let body: HTTPBody

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(lines: JSONLinesDeserializationSequence(upstream: body).makeAsyncIterator())
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var lines: JSONLinesDeserializationSequence<HTTPBody>.Iterator<HTTPBody.AsyncIterator>
        var finished = false
        let decoder = JSONDecoder()

        public mutating func next() async throws -> Row? {
            guard !finished else { return nil }
            guard let line = try await lines.next() else { throw Incomplete() }
            switch try decoder.decode(Components.Schemas.StreamLine.self, from: Data(line)) {
            case .StreamRow(let row):
                return Row(index: row.row, values: row.values)
            case .StreamDone:
                finished = true
                return nil
            case .StreamFailure(let failure):
                finished = true
                throw ForziumProblem(failure.error)
            }
        }
    }
}

/// Adds the API key and the deadline header to every request.
struct RequestHeaders: ClientMiddleware {
    let apiKey: String?
    let timeoutMilliseconds: Int?

    func intercept(_ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
                   next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        if let apiKey { request.headerFields[.authorization] = "Bearer \(apiKey)" }
        if let timeoutMilliseconds, let name = HTTPField.Name("X-Forzium-Timeout-Ms") { request.headerFields[name] = String(timeoutMilliseconds) }
        return try await next(request, body, baseURL)
    }
}

/// Throws a non-2xx answer as `ForziumProblem` (decoded from its problem+json body) before the generated code sees it.
struct ProblemThrower: ClientMiddleware {
    func intercept(_ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
                   next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)) async throws -> (HTTPResponse, HTTPBody?) {
        let (response, responseBody) = try await next(request, body, baseURL)
        guard response.status.kind != .successful else { return (response, responseBody) }
        var bytes = Data()
        if let responseBody { bytes = try await Data(collecting: responseBody, upTo: 1 << 20) }
        if let problem = try? JSONDecoder().decode(Components.Schemas.Problem.self, from: bytes) { throw ForziumProblem(problem) }
        throw ForziumProblem(status: response.status.code, detail: String(decoding: bytes.prefix(500), as: UTF8.self))
    }
}
