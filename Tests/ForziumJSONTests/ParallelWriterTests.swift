import ForziumJSON
import Testing

@Suite("Writer: multithreaded")
struct ParallelWriterTests {
    static func bigMatrix(rows: Int, cols: Int) -> JSONValue {
        let storage = MatrixWriterTests.randomMatrix(rows: rows, cols: cols, seed: 5)
        return .array((0..<rows).map { r in .numbers(Array(storage[(r * cols)..<((r + 1) * cols)])) })
    }

    static let values: [JSONValue] = {
        let matrix = bigMatrix(rows: 300, cols: 120)
        let row = JSONValue.numbers(MatrixWriterTests.randomMatrix(rows: 1, cols: 40_000, seed: 9))
        let envelope: JSONValue = ["jsonrpc": "2.0", "id": .number(JSONNumber(7, literal: "7")), "result": matrix]
        var mixedItems: [JSONValue] = []
        for i in 0..<20_000 {
            switch i % 3 {
            case 0: mixedItems.append(.string("s\(i)\n"))
            case 1: mixedItems.append(.number(JSONNumber(Double(i) / 7)))
            default: mixedItems.append(.object(JSONObject([(key: "k", value: .bool(i % 2 == 0))])))
            }
        }
        let mixed = JSONValue.array(mixedItems)
        return [matrix, row, envelope, mixed, ["small": [1, 2, 3]], .numbers([1.5]), .array([])]
    }()

    @Test("the threaded writer produces the single-threaded bytes", arguments: [1, 2, 3, 4])
    func sameBytes(threads: Int) throws {
        for value in Self.values {
            let single = JSONWriter.bytes(value)
            var parallel: [UInt8] = Array("prefix".utf8)
            JSONWriter.write(value, into: &parallel, threads: threads)
            #expect(Array(parallel.dropFirst(6)) == single)
        }
        // And the output parses back to an equal value (non-finite numbers aside, which become null).
        var out: [UInt8] = []
        let clean = JSONValue.numbers((0..<50_000).map { Double($0) * 0.37 - 1000 })
        JSONWriter.write(clean, into: &out, threads: threads)
        #expect(try JSONParser().parse(out) == clean)
    }
}
