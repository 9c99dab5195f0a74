import ForziumJSON
import ForziumRPC
import Testing

@Suite("Reading engine replies")
struct RPCReplyReaderTests {
    @Test func successResponseKeepsRawResultBytes() throws {
        let line = Array(#"{"jsonrpc":"2.0","id":42,"result":[[1.5,2.0],[3.0,4.0]]}"#.utf8)
        guard case .response(let id, let response) = RPCReplyReader.classify(line) else {
            Issue.record("not classified as a response"); return
        }
        #expect(id == 42)
        #expect(response.error == nil)
        #expect(String(decoding: response.resultBytes, as: UTF8.self) == "[[1.5,2.0],[3.0,4.0]]")
    }

    @Test func errorResponseIsParsedWithIssues() throws {
        let line = Array(#"{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"Invalid params","data":{"errors":[{"pointer":"/matrix_b","message":"missing"}]}}}"#.utf8)
        guard case .response(let id, let response) = RPCReplyReader.classify(line) else {
            Issue.record("not classified as a response"); return
        }
        #expect(id == 7)
        #expect(response.error?.code == -32602)
        #expect(response.error?.issues == [PointerIssue(pointer: "/matrix_b", message: "missing")])
    }

    @Test func otherMemberOrderFallsBackToParsing() throws {
        let line = Array(#"{"id":3,"result":{"rows":2,"cols":2},"jsonrpc":"2.0"}"#.utf8)
        guard case .response(let id, let response) = RPCReplyReader.classify(line) else {
            Issue.record("not classified as a response"); return
        }
        #expect(id == 3)
        let result = try JSONParser().parse(Array(response.resultBytes))
        guard case .object(let o) = result, case .number(let rows)? = o["rows"] else { Issue.record("bad result"); return }
        #expect(rows.value == 2)
    }

    @Test func rowsNotificationIsRoutedByRequestID() {
        let line = Array(#"{"jsonrpc":"2.0","method":"stream.rows","params":{"request":12,"start":0,"rows":[[1.0]]}}"#.utf8)
        guard case .rows(let request) = RPCReplyReader.classify(line) else { Issue.record("not rows"); return }
        #expect(request == 12)
    }

    @Test func garbageIsReported() {
        for text in ["not json", "[1,2]", #"{"jsonrpc":"2.0","result":1}"#] {
            guard case .garbage = RPCReplyReader.classify(Array(text.utf8)) else {
                Issue.record("\(text) not classified as garbage"); continue
            }
        }
    }
}

extension RPCReplyReaderTests {
    @Test func binaryResultIsReadWithoutParsing() throws {
        let values: [Double] = [1.5, -0.0, .nan, .infinity, -.infinity, 5e-324]
        var line = Array(#"{"jsonrpc":"2.0","id":4,"result":"#.utf8)
        values.withUnsafeBufferPointer { BinaryMatrix.write(rows: 2, cols: 3, $0, into: &line) }
        line.append(UInt8(ascii: "}"))
        guard case .response(4, let reply) = RPCReplyReader.classify(line), let matrix = reply.takeBinaryResult() else {
            Issue.record("not a binary result"); return
        }
        #expect(matrix.rows == 2 && matrix.cols == 3)
        #expect(matrix.storage.map(\.bitPattern) == values.map(\.bitPattern))
    }

    @Test func sharedMemoryResultIsReadAndRemoved() throws {
        let values: [Double] = [1, 2, .nan, -0.0] + Array(repeating: 0.5, count: BinaryMatrix.sharedMemoryThreshold)
        var line = Array(#"{"jsonrpc":"2.0","id":5,"result":"#.utf8)
        let name = try #require(values.withUnsafeBufferPointer { BinaryMatrix.writeShared(rows: 1, cols: values.count, $0, into: &line) })
        line.append(UInt8(ascii: "}"))
        guard case .response(5, let reply) = RPCReplyReader.classify(line), let matrix = reply.takeBinaryResult() else {
            Issue.record("not a shared-memory result"); return
        }
        #expect(matrix.sharedName == name)
        #expect(matrix.storage.map(\.bitPattern) == values.map(\.bitPattern))
        // The reader removed the segment: it cannot be read again.
        #expect(throws: PointerIssue.self) { try SharedMatrixSegment.read(name, count: values.count) }
    }

    @Test func smallMatricesStayBase64EvenWhenSharedMemoryIsAsked() {
        var line: [UInt8] = []
        let name = [1.0, 2.0].withUnsafeBufferPointer { BinaryMatrix.writeShared(rows: 1, cols: 2, $0, into: &line) }
        #expect(name == nil)
        #expect(String(decoding: line, as: UTF8.self).contains(#""base64":"#))
    }
}
