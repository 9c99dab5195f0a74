import ForziumJSON
import ForziumRPC
import ForziumSchemaBundle
import ForziumTesting
import NIOCore
import Testing
@testable import ForziumGatewayCore

/// The Open Inference Protocol (v2) pieces in process: template routes, the model catalogue derived from the schemas,
/// the request reader (binary and JSON tensors into the engine's binary form, every client mistake a 400-class error)
/// and the response writer. The same routes over real sockets, and with tritonclient: Tests/python/test_v2_protocol.py.
@Suite("Open Inference Protocol (v2)")
struct V2Tests {
    static let validator = try! SchemaBodyValidator(files: SchemaBundle.files)
    static let catalogue = V2Catalogue(routes: .embedded, files: SchemaBundle.files)

    @Test func templateRoutesMatchOneSegment() throws {
        let table = RouteTable.embedded
        #expect(try table.match(method: "POST", path: "/v2/models/matmul/infer").handler == .v2)
        #expect(try table.match(method: "GET", path: "/v2/models/anything").path == "/v2/models/{model}")
        #expect(table.label(for: "/v2/models/sum/ready") == "/v2/models/{model}/ready")
        #expect(table.label(for: "/v2/models//ready") == "unmatched")
        #expect(table.methods(for: "/v2/models/sum/infer") == ["POST"])
        #expect(throws: GatewayError.self) { try table.match(method: "GET", path: "/v2/models/a/b/c") }
        do {
            _ = try table.match(method: "GET", path: "/v2/models/matmul/infer")
            Issue.record("GET infer matched")
        } catch {
            #expect(error.status.code == 405)
        }
        // Exact routes still win and are unchanged.
        #expect(try table.match(method: "POST", path: "/v1/matmul").engineMethod == "matmul")
    }

    @Test func catalogueComesFromTheSchemas() {
        let c = Self.catalogue
        #expect(c.names.count == 16)
        #expect(c.models["matmul"]?.inputs == ["data", "matrix_b"])
        #expect(c.models["matmul"]?.requiredInputs == ["data", "matrix_b"])
        #expect(c.models["conv2d"]?.inputs == ["data", "kernel"])
        #expect(c.models["elementwise_div"]?.inputs == ["data", "other"])
        #expect(c.models["reshape"]?.parameters.map(\.name) == ["rows", "cols"])
        #expect(c.models["sum"]?.parameters.map(\.name) == ["axis"])
        #expect(c.models["normalize"]?.parameters.map(\.name) == ["mode"])
        let metadata = c.metadata(c.models["matmul"]!)
        #expect(metadata["inputs"]?[1]?["name"] == .string("matrix_b"))
        #expect(metadata["inputs"]?[1]?["shape"] == .array([JSONValue(-1), JSONValue(-1)]))
        #expect(metadata["outputs"]?[0]?["name"] == .string("result"))
    }

    /// A binary request body: JSON then each array's little-endian bytes.
    static func binaryBody(_ header: String, _ arrays: [[Double]]) -> (ByteBuffer, Int) {
        var buffer = ByteBuffer(string: header)
        for array in arrays { for value in array { buffer.writeInteger(value.bitPattern, endianness: .little) } }
        return (buffer, header.utf8.count)
    }

    static func prepare(_ model: String, _ body: ByteBuffer, headerLength: Int?) throws -> V2PreparedCall {
        try V2InferRequest.prepare(body: body, headerLength: headerLength, model: catalogue.models[model]!, validator: validator)
    }

    @Test func binaryInputsBecomeBinaryMatricesWithNoDecimalText() throws {
        let a: [Double] = [1, .nan, -.infinity, -0.0, 5e-324, 6]
        let header = #"{"id":"x","inputs":[{"name":"data","datatype":"FP64","shape":[2,3],"parameters":{"binary_data_size":48}}],"# +
            #""parameters":{"factor":2},"outputs":[{"name":"result","parameters":{"binary_data":true}}]}"#
        let (body, length) = Self.binaryBody(header, [a])
        let call = try Self.prepare("multiply", body, headerLength: length)
        defer { call.release(engineAnswered: true) }
        #expect(call.id == "x" && call.binaryOutput)
        let params = try JSONParser().parse(Array(call.params.readableBytesView))
        #expect(params["factor"]?.doubleValue == 2)
        #expect(params["$result"] == .string("shm"))
        let matrix = try BinaryMatrix(params["data"]!, at: "/data")
        #expect(matrix.rows == 2 && matrix.cols == 3)
        #expect(matrix.storage.map(\.bitPattern) == a.map(\.bitPattern))
        // Only the doubles' bytes travel: no element appears as decimal text.
        #expect(!String(decoding: call.params.readableBytesView, as: UTF8.self).contains("5e-324"))
    }

    @Test("The binary part fed in pieces of any size gives the same call as the whole body, into pooled segments that the pool takes back")
    func binaryPartArrivingInPieces() throws {
        let pool = SharedSegmentPool(retainedBytes: 1 << 24)
        defer { pool.removeAll() }
        let (n, m) = (150, 120) // 18,000 elements: in segments
        var generator = SplitMix64(seed: 3)
        let a = (0..<(n * m)).map { _ in Double(bitPattern: generator.next()) }
        let b = (0..<(m * 2)).map { Double($0) - 7.25 } // small: base64
        let header = #"{"inputs":[{"name":"data","datatype":"FP64","shape":[\#(n),\#(m)],"parameters":{"binary_data_size":\#(n * m * 8)}},"# +
            #"{"name":"matrix_b","datatype":"FP64","shape":[\#(m),2],"parameters":{"binary_data_size":\#(m * 16)}}],"# +
            #""outputs":[{"name":"result","parameters":{"binary_data":true}}]}"#
        let (body, length) = Self.binaryBody(header, [a, b])
        let bytes = Array(body.readableBytesView)
        let model = Self.catalogue.models["matmul"]!
        for pieceSize in [1, 7, 4096, 65_536, bytes.count] {
            let parsed = try bytes.withUnsafeBytes { try V2InferRequest.header(UnsafeRawBufferPointer(rebasing: $0[0..<length]), binary: true,
                                                                                  model: model, validator: Self.validator) }
            let assembler = V2TensorAssembler(parsed, pool: pool)
            var offset = length
            while offset < bytes.count {
                let end = min(bytes.count, offset + pieceSize)
                try bytes.withUnsafeBytes { try assembler.feed(UnsafeRawBufferPointer(rebasing: $0[offset..<end])) }
                offset = end
            }
            let call = try assembler.finish()
            let params = try JSONParser().parse(Array(call.params.readableBytesView))
            #expect(call.pooled.count == 1 && call.created.isEmpty && call.binaryOutput)
            #expect(try BinaryMatrix(params["data"]!, at: "/data").storage.map(\.bitPattern) == a.map(\.bitPattern))
            #expect(params["matrix_b"]?["base64"] != nil)
            #expect(try BinaryMatrix(params["matrix_b"]!, at: "/matrix_b").storage == b)
            // The result is asked into a pooled segment too.
            #expect(params["$result"]?["shm"]?.stringValue == call.result?.name)
            call.release(engineAnswered: true)
        }
        // Two segments (input and result) went round the pool five times: no more than two were ever made.
        #expect(pool.heldBytes <= 2 * n * m * 8)

        // A body cut short, or longer than the inputs, is refused whatever the pieces.
        let parsed = try bytes.withUnsafeBytes { try V2InferRequest.header(UnsafeRawBufferPointer(rebasing: $0[0..<length]), binary: true,
                                                                              model: model, validator: Self.validator) }
        let short = V2TensorAssembler(parsed, pool: pool)
        try bytes.withUnsafeBytes { try short.feed(UnsafeRawBufferPointer(rebasing: $0[length..<(bytes.count - 1)])) }
        #expect(throws: GatewayError.self) { try short.finish() }
        let long = V2TensorAssembler(parsed, pool: pool)
        try bytes.withUnsafeBytes { try long.feed(UnsafeRawBufferPointer(rebasing: $0[length...])) }
        #expect(throws: GatewayError.self) { try [UInt8](repeating: 0, count: 3).withUnsafeBytes { try long.feed($0) } }
    }

    @Test func largeInputsGoThroughSharedMemoryAndFP32IsWidened() throws {
        let n = 200 * 100
        let values = (0..<n).map { Double($0) * 0.5 }
        let header = #"{"inputs":[{"name":"data","datatype":"FP64","shape":[200,100],"parameters":{"binary_data_size":160000}}]}"#
        let (body, length) = Self.binaryBody(header, [values])
        let call = try Self.prepare("transpose", body, headerLength: length)
        #expect(call.segments.count == 1 && !call.binaryOutput)
        let params = try JSONParser().parse(Array(call.params.readableBytesView))
        #expect(params["data"]?["shm"]?.stringValue == call.segments[0])
        #expect(try BinaryMatrix(params["data"]!, at: "").storage == values)
        call.release(engineAnswered: true)
        #expect(throws: PointerIssue.self) { try SharedMatrixSegment.read(call.segments[0], count: n) }

        var fp32 = ByteBuffer(string: #"{"inputs":[{"name":"data","datatype":"FP32","shape":[3],"parameters":{"binary_data_size":12}}]}"#)
        let headerLength = fp32.readableBytes
        for value: Float in [0.1, -2.5, .infinity] { fp32.writeInteger(value.bitPattern, endianness: .little) }
        let widened = try Self.prepare("transpose", fp32, headerLength: headerLength)
        let matrix = try BinaryMatrix(JSONParser().parse(Array(widened.params.readableBytesView))["data"]!, at: "")
        #expect(matrix.rows == 1 && matrix.cols == 3)  // 1-D: one row
        #expect(matrix.storage == [Double(Float(0.1)), -2.5, .infinity])
    }

    @Test func jsonTensors() throws {
        let body = ByteBuffer(string: #"{"inputs":[{"name":"data","datatype":"FP64","shape":[2,2],"data":[1,2,3,4]},"# +
                              #"{"name":"matrix_b","datatype":"FP64","shape":[2,1],"data":[5,6]}],"parameters":{"binary_data_output":true}}"#)
        let call = try Self.prepare("matmul", body, headerLength: nil)
        defer { call.release(engineAnswered: true) }
        #expect(call.binaryOutput)
        let params = try JSONParser().parse(Array(call.params.readableBytesView))
        #expect(try BinaryMatrix(params["data"]!, at: "").storage == [1, 2, 3, 4])
        #expect(try BinaryMatrix(params["matrix_b"]!, at: "").storage == [5, 6])
        // `data` is flat (the protocol's form): nested rows fail the request schema.
        let nested = ByteBuffer(string: #"{"inputs":[{"name":"data","datatype":"FP64","shape":[2,1],"data":[[1],[2]]}]}"#)
        #expect(throws: GatewayError.self) { try Self.prepare("transpose", nested, headerLength: nil) }
    }

    @Test(arguments: [
        (#"{"inputs":[{"name":"data","datatype":"FP64","shape":[2],"parameters":{"binary_data_size":16}}]}"#, 8, "short"),
        (#"{"inputs":[{"name":"data","datatype":"FP64","shape":[2],"parameters":{"binary_data_size":16}}]}"#, 24, "follow the last"),
        (#"{"inputs":[{"name":"data","datatype":"FP64","shape":[2],"parameters":{"binary_data_size":12}}]}"#, 12, "binary_data_size must be"),
        (#"{"inputs":[{"name":"data","datatype":"INT8","shape":[2],"data":[1,2]}]}"#, 0, "INT8"),
        (#"{"inputs":[{"name":"kernel","datatype":"FP64","shape":[1],"data":[1]}]}"#, 0, "not an input"),
        (#"{"inputs":[{"name":"data","datatype":"FP64","shape":[1],"data":[1]},{"name":"data","datatype":"FP64","shape":[1],"data":[1]}]}"#, 0, "twice"),
        (#"{"inputs":[{"name":"data","datatype":"FP64","shape":[4611686018427387904,4],"data":[1]}]}"#, 0, "too large"),
        (#"{"inputs":[{"name":"data","datatype":"FP64","shape":[1],"data":[1]}],"parameters":{"rows":"2"}}"#, 0, "no parameter"),
        (#"{"inputs":[{"name":"data","datatype":"FP64","shape":[100000000,100000000],"data":[1,2]}]}"#, 0, "data has 2 elements"),
        (#"{"inputs":[{"name":"data","datatype":"FP64","shape":[1],"data":[1]}],"outputs":[{"name":"other"}]}"#, 0, "one output"),
        (#"{"inputs":[{"name":"data","datatype":"FP64","shape":[1],"data":[1]}],"extra":1}"#, 0, "schema"),
    ])
    func clientMistakesAreValidationErrors(header: String, binaryBytes: Int, needle: String) {
        var body = ByteBuffer(string: header)
        body.writeRepeatingByte(0, count: binaryBytes)
        do {
            let call = try Self.prepare("transpose", body, headerLength: header.utf8.count)
            call.release(engineAnswered: true)
            Issue.record("accepted: \(header)")
        } catch let error as GatewayError {
            #expect(V2Error.status(error).code == 400)
            #expect(V2Error.message(error).contains(needle), "\(V2Error.message(error))")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func responseHeaderAndErrorShape() throws {
        let head = V2InferResponse.header(model: "sum", id: "q", shape: [1, 3], binarySize: 24)
        let parsed = try JSONParser().parse(head)
        #expect(parsed["model_name"] == .string("sum") && parsed["id"] == .string("q"))
        #expect(parsed["outputs"]?[0]?["parameters"]?["binary_data_size"]?.intValue == 24)
        #expect(parsed["outputs"]?[0]?["shape"] == .array([JSONValue(1), JSONValue(3)]))
        let response = V2Error.response(GatewayError(.validation, "bad", errors: [PointerIssue(pointer: "/inputs/0", message: "m")]))
        #expect(response.status.code == 400)
        #expect(response.headers[.contentType] == "application/json")
        #expect(V2Error.response(GatewayError(.notFound, "x")).status.code == 404)
        #expect(V2Error.applies(to: "/v2") && V2Error.applies(to: "/v2/models/x") && !V2Error.applies(to: "/v2x") && !V2Error.applies(to: "/v1/sum"))
    }

    @Test func segmentBytesRoundTrip() throws {
        let bytes: [UInt8] = (0..<80).map { UInt8($0) }
        let name = try #require(bytes.withUnsafeBytes { SharedMatrixSegment.create(bytes: $0) })
        defer { SharedMatrixSegment.unlink(name) }
        var out = [UInt8](repeating: 0, count: 80)
        try out.withUnsafeMutableBytes { try SharedMatrixSegment.read(name, into: $0) }
        #expect(out == bytes)
        var wrong = [UInt8](repeating: 0, count: 72)
        #expect(throws: PointerIssue.self) { try wrong.withUnsafeMutableBytes { try SharedMatrixSegment.read(name, into: $0) } }
    }
}
