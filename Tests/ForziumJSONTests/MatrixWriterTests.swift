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

@Suite("Writer: matrix text equals Swift's description")
struct MatrixWriterDescriptionTests {
    /// Doubles of every shape the formatter has a path for: uniform in (-1, 1) (the benchmark's data, 15–17 digits),
    /// the same scaled across decades 1e-7 … 1e18 (both sides of the 1e-4 and 2^53 format switches), every digit count
    /// 1…17 at many exponents, integers, and values next to powers of ten.
    static func values(seed: UInt64) -> [Double] {
        var rng = SplitMix64(seed: seed)
        func unit() -> Double { Double(rng.next() >> 11) * 0x1p-53 }
        var values: [Double] = []
        for _ in 0..<100_000 { values.append(unit() * 2 - 1) }
        for e in -7...18 {
            let scale = pow10(e)
            for _ in 0..<2_000 { values.append((unit() * 2 - 1) * scale) }
        }
        for digits in 1...17 {
            for e in stride(from: -330, through: 310, by: 7) {
                let mantissa = rng.next() % UInt64(pow10(digits))
                if let v = Double("\(mantissa)e\(e)"), v.isFinite { values.append(v) }
            }
        }
        for _ in 0..<20_000 { values.append(Double(Int64(bitPattern: rng.next()) >> Int64(rng.next() % 64))) }
        for e in -300...300 {
            let p = pow10(e)
            values.append(contentsOf: [p, p.nextUp, p.nextDown, -p])
        }
        return values
    }

    static func pow10(_ e: Int) -> Double { Double("1e\(e)")! }

    @Test("every element is written exactly as Swift's description", arguments: [1, 2])
    func matchesDescription(threads: Int) throws {
        let values = Self.values(seed: 0x5EED + UInt64(threads))
        let cols = 100
        let rows = values.count / cols
        let storage = Array(values[0..<(rows * cols)])
        var out: [UInt8] = []
        JSONWriter.writeMatrix(rows: rows, cols: cols, storage, threads: threads, into: &out)
        var expected = "["
        for r in 0..<rows {
            if r > 0 { expected += "," }
            expected += "[" + storage[(r * cols)..<((r + 1) * cols)].map { $0.description }.joined(separator: ",") + "]"
        }
        expected += "]"
        let text = String(decoding: out, as: UTF8.self)
        if text != expected {
            // Name the first element that differs.
            let got = text.dropFirst(2).dropLast(2).split(separator: ",").map { $0.trimmingCharacters(in: "[]") }
            let want = storage.map(\.description)
            let index = (0..<min(got.count, want.count)).first { got[$0] != want[$0] } ?? min(got.count, want.count)
            Issue.record("element \(index): wrote \(index < got.count ? got[index] : "nothing"), Swift says \(index < want.count ? want[index] : "nothing")")
        }
    }
}

private extension Substring {
    func trimmingCharacters(in set: String) -> String {
        String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}
