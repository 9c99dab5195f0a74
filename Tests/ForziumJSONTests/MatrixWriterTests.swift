import ForziumTesting
import ForziumJSON
import Testing

@Suite("Writer: matrix fast path")
struct MatrixWriterTests {
    static func randomMatrix(rows: Int, cols: Int, seed: UInt64) -> [Double] {
        var rng = SplitMix64(seed: seed)
        return (0..<(rows * cols)).map { i in
            if i % 97 == 13 { return .nan }
            if i % 89 == 5 { return -.infinity }
            return Double(bitPattern: rng.next() >> 2) * (i % 2 == 0 ? 1 : -1)
        }
    }

    /// The text the general writer produces for the same matrix as rows of `.numbers`.
    static func reference(rows: Int, cols: Int, _ storage: [Double]) -> [UInt8] {
        let value = JSONValue.array((0..<rows).map { r in .numbers(Array(storage[(r * cols)..<((r + 1) * cols)])) })
        return JSONWriter.bytes(value)
    }

    @Test("writeMatrix writes what write(_:) writes for the same rows", arguments: [(1, 1), (1, 7), (7, 1), (33, 65), (300, 200)])
    func matchesGeneralWriter(shape: (Int, Int)) throws {
        let (rows, cols) = shape
        let storage = Self.randomMatrix(rows: rows, cols: cols, seed: UInt64(rows * 1000 + cols))
        var out: [UInt8] = []
        JSONWriter.writeMatrix(rows: rows, cols: cols, storage, into: &out)
        #expect(out == Self.reference(rows: rows, cols: cols, storage))
        // And it parses back to the same numbers (non-finite ones as null).
        let back = try JSONParser().parse(out)
        #expect(back.arrayCount == rows)
        let firstRow = try #require(back[0]?.elements)
        #expect(firstRow.count == cols)
    }

    @Test("appends after existing bytes")
    func appends() {
        var out: [UInt8] = Array("{\"result\":".utf8)
        JSONWriter.writeMatrix(rows: 2, cols: 2, [1, 2.5, -0.0, 1e-7], into: &out)
        out.append(0x7D)
        #expect(String(decoding: out, as: UTF8.self) == #"{"result":[[1.0,2.5],[-0.0,1e-07]]}"#)
    }

    @Test("degenerate shapes")
    func degenerate() {
        var empty: [UInt8] = []
        JSONWriter.writeMatrix(rows: 0, cols: 3, [], into: &empty)
        #expect(String(decoding: empty, as: UTF8.self) == "[]")
        var emptyRows: [UInt8] = []
        JSONWriter.writeMatrix(rows: 2, cols: 0, [], into: &emptyRows)
        #expect(String(decoding: emptyRows, as: UTF8.self) == "[[],[]]")
    }

    @Test("the threaded variant writes the same bytes as the single-threaded one", arguments: [1, 2, 3, 8])
    func threaded(threads: Int) {
        let rows = 257
        let cols = 130
        let storage = Self.randomMatrix(rows: rows, cols: cols, seed: 42)
        var single: [UInt8] = []
        JSONWriter.writeMatrix(rows: rows, cols: cols, storage, into: &single)
        var parallel: [UInt8] = Array("x".utf8)
        JSONWriter.writeMatrix(rows: rows, cols: cols, storage, threads: threads, into: &parallel)
        #expect(Array(parallel.dropFirst()) == single)
    }
}
