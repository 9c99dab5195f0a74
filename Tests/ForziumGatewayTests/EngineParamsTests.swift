import ForziumJSON
import ForziumRPC
import NIOCore
import Testing
@testable import ForziumGatewayCore

@Suite("Engine params: matrices cross the pipe as binary")
struct EngineParamsTests {
    private func encode(_ text: String) throws -> JSONValue {
        let value = try JSONParser().parse(Array(text.utf8))
        let params = EngineParams(value)
        defer { params.release() }
        let parsed = try JSONParser().parse(Array(params.text.readableBytesView))
        // Read the matrices back while their segments exist.
        return try materialize(parsed)
    }

    /// The value with every binary matrix (shared memory or base64) read into a `.numbers` row-major array.
    private func materialize(_ value: JSONValue) throws -> JSONValue {
        guard case .object(let object) = value else { return value }
        if object["dtype"] != nil {
            let matrix = try BinaryMatrix(value, at: "")
            return .object(JSONObject([("binary", .numbers(matrix.storage)), ("rows", .number(JSONNumber(Double(matrix.rows)))),
                                       ("shared", .bool(matrix.sharedName != nil))]))
        }
        return .object(JSONObject(try object.members.map { ($0.key, try materialize($0.value)) }))
    }

    @Test func matricesBecomeBinaryAndOtherMembersStayAsSent() throws {
        let params = try encode(#"{"data":[[1,2],[3,4.5]],"operation":"matmul","parameters":{"matrix_b":[[NaN],[-0.0]],"k":2}}"#)
        guard case .object(let object) = params, case .object(let parameters)? = object["parameters"] else {
            Issue.record("not an object"); return
        }
        #expect(object.keys == ["data", "operation", "parameters", "$result"])
        #expect(object["$result"] == .string("shm"))
        #expect(object["operation"] == .string("matmul"))
        guard case .object(let data)? = object["data"], case .object(let b)? = parameters["matrix_b"],
              case .numbers(let bValues)? = b["binary"] else { Issue.record("matrices not binary"); return }
        #expect(data["binary"] == .numbers([1, 2, 3, 4.5]))
        // Small matrices go as base64 in the line (a segment costs more than it saves below 16k elements).
        #expect(data["shared"] == .bool(false))
        #expect(bValues.count == 2 && bValues[0].isNaN && bValues[1].bitPattern == (-0.0 as Double).bitPattern)
        guard case .number(let k)? = parameters["k"] else { Issue.record("k lost"); return }
        #expect(k.literal == "2")
    }

    @Test func raggedOrMixedMatricesStayJSONSoTheEngineReportsThem() throws {
        let params = try encode(#"{"data":[[1,2],[3]],"other":[[1,"x"]],"rows":[]}"#)
        #expect(EngineParams(try JSONParser().parse(Array(#"{"data":[[1,2],[3]]}"#.utf8))).segments.isEmpty)
        guard case .object(let object) = params else { Issue.record("not an object"); return }
        #expect(object["data"] == .array([.numbers([1, 2]), .numbers([3])]))
        #expect(object["other"] == .array([.array([.number(JSONNumber(1)), .string("x")])]))
        #expect(object["rows"] == .array([]))
    }

    @Test func binaryResultsArePrintedAsJSON() throws {
        var line = Array(#"{"jsonrpc":"2.0","id":1,"result":"#.utf8)
        [1.0, .infinity, 0.1, -2.0].withUnsafeBufferPointer { BinaryMatrix.write(rows: 2, cols: 2, $0, into: &line) }
        line.append(UInt8(ascii: "}"))
        guard case .response(_, let reply) = RPCReplyReader.classify(line) else { Issue.record("no reply"); return }
        #expect(String(decoding: ResultText.text(reply), as: UTF8.self) == "[[1.0,null],[0.1,-2.0]]")

        var scalarLine = Array(#"{"jsonrpc":"2.0","id":2,"result":"#.utf8)
        BinaryMatrix.write(scalar: 2.5, into: &scalarLine)
        scalarLine.append(UInt8(ascii: "}"))
        guard case .response(_, let scalar) = RPCReplyReader.classify(scalarLine) else { Issue.record("no reply"); return }
        #expect(String(decoding: ResultText.text(scalar), as: UTF8.self) == "2.5")
    }

    @Test func binaryStreamRowsBecomeNDJSONRows() {
        var line = Array(#"{"jsonrpc":"2.0","method":"stream.rows","params":{"request":3,"start":5,"rows":"#.utf8)
        [1.5, .nan, 3.0, 4.0].withUnsafeBufferPointer { BinaryMatrix.write(rows: 2, cols: 2, $0, into: &line) }
        line.append(contentsOf: "}}".utf8)
        var out = ByteBuffer()
        NDJSONRows.write(notification: line, into: &out)
        #expect(String(buffer: out) == "{\"row\":5,\"values\":[1.5,null]}\n{\"row\":6,\"values\":[3.0,4.0]}\n")
    }

    @Test func largeMatricesGoInSegmentsThatAreRemovedOnRelease() throws {
        let row = "[" + (0..<128).map { String($0) }.joined(separator: ",") + "]"
        let matrix = "[" + Array(repeating: row, count: 128).joined(separator: ",") + "]"
        let value = try JSONParser().parse(Array(#"{"data":\#(matrix),"other":\#(matrix)}"#.utf8))
        let params = EngineParams(value)
        #expect(params.segments.count == 2)
        for name in params.segments {
            let segment = try SharedMatrixSegment.read(name, count: 128 * 128)
            #expect(segment[129] == 1)
        }
        params.release()
        for name in params.segments {
            #expect(throws: PointerIssue.self) { try SharedMatrixSegment.read(name, count: 128 * 128) }
        }
    }

    @Test func sharedMemoryResultsArePrintedFromTheSegmentAndRemoved() throws {
        let values = (0..<20_000).map { Double($0) / 8 }
        var line = Array(#"{"jsonrpc":"2.0","id":9,"result":"#.utf8)
        let name = try #require(values.withUnsafeBufferPointer { BinaryMatrix.writeShared(rows: 100, cols: 200, $0, into: &line) })
        line.append(UInt8(ascii: "}"))
        guard case .response(_, let reply) = RPCReplyReader.classify(line) else { Issue.record("no reply"); return }
        var expected: [UInt8] = []
        JSONWriter.writeMatrix(rows: 100, cols: 200, values, into: &expected)
        #expect(ResultText.text(reply) == expected)
        #expect(throws: PointerIssue.self) { try SharedMatrixSegment.read(name, count: values.count) }
    }
}
