import Foundation
import ForziumJSON
import Testing

@Suite("Request concurrency over real pipes", .timeLimit(.minutes(3)))
struct ConcurrencyTests {
    /// A 500×500 matmul by the identity (result == data, exactly) as one request line.
    static func bigMatmulLine(id: Int) -> (line: String, data: [[Double]]) {
        let n = 500
        var generator = SystemRandomNumberGenerator()
        let data = (0..<n).map { _ in (0..<n).map { _ in Double(Int.random(in: -99_999...99_999, using: &generator)) / 1000 } }
        let identity = (0..<n).map { i in "[" + (0..<n).map { $0 == i ? "1" : "0" }.joined(separator: ",") + "]" }
        let dataText = "[" + data.map { "[" + $0.map { String($0) }.joined(separator: ",") + "]" }.joined(separator: ",") + "]"
        let line = request(id, "matmul", #"{"data":\#(dataText),"matrix_b":[\#(identity.joined(separator: ","))]}"#)
        return (line, data)
    }

    static func check(_ reply: JSONValue, equals data: [[Double]]) {
        let rows = reply["result"]?.arrayValue ?? []
        #expect(rows.count == data.count)
        #expect(rows.first?.doublesValue == data.first)
        #expect(rows.last?.doublesValue == data.last)
    }

    @Test("SIMD engine: a tiny request sent after a big matmul is answered first")
    func outOfOrder() throws {
        let process = try EngineProcess(.simd)
        let big = Self.bigMatmulLine(id: 1)
        let tiny = request(2, "sum", #"{"data":[[1,2]]}"#)
        process.sendInBackground(bytes: Array((big.line + "\n" + tiny + "\n").utf8), thenClose: true)
        let first = try process.readJSON()
        let second = try process.readJSON()
        #expect(first["id"]?.intValue == 2)
        #expect(first["result"] == json("3"))
        #expect(second["id"]?.intValue == 1)
        Self.check(second, equals: big.data)
        #expect(try process.waitForExit() == 0)
    }

    @Test("Fallback engine: replies come strictly in request order")
    func inOrder() throws {
        let process = try EngineProcess(.fallback)
        let big = Self.bigMatmulLine(id: 1)
        let tiny = request(2, "sum", #"{"data":[[1,2]]}"#)
        process.sendInBackground(bytes: Array((big.line + "\n" + tiny + "\n").utf8), thenClose: true)
        let first = try process.readJSON()
        #expect(first["id"]?.intValue == 1)
        Self.check(first, equals: big.data)
        #expect(try process.readJSON()["id"]?.intValue == 2)
        #expect(try process.waitForExit() == 0)
    }

    @Test("SIMD engine with --max-in-flight 1 still answers everything (back-pressure, nothing refused)")
    func backPressure() throws {
        let process = try EngineProcess(.simd, arguments: ["--max-in-flight", "1"])
        // Rows long enough (> 2 KiB lines) that every request goes to a worker rather than being answered inline.
        let ones = Array(repeating: "1.5", count: 800).joined(separator: ",")
        var text = ""
        for id in 0..<300 { text += request(id, "transpose", #"{"data":[[\#(id),\#(ones)]]}"#) + "\n" }
        process.sendInBackground(bytes: Array(text.utf8), thenClose: true)
        var ids: [Int] = []
        for _ in 0..<300 {
            let reply = try process.readJSON()
            #expect(reply["error"] == nil)
            ids.append(try #require(reply["id"]?.intValue))
        }
        // One request in flight at a time: replies come in order.
        #expect(ids == Array(0..<300))
        #expect(try process.waitForExit() == 0)
    }

    @Test("SIMD engine: concurrent replies are whole lines (never interleaved)")
    func wholeLines() throws {
        let process = try EngineProcess(.simd, arguments: ["--max-in-flight", "8"])
        let row = "[" + (0..<3000).map { "\($0 % 97).5" }.joined(separator: ",") + "]"
        var text = ""
        for id in 0..<60 { text += request(id, "multiply", #"{"data":[\#(row),\#(row)],"factor":1}"#) + "\n" }
        process.sendInBackground(bytes: Array(text.utf8), thenClose: true)
        var seen = Set<Int>()
        for _ in 0..<60 {
            let reply = try process.readJSON()  // a torn line would not parse
            #expect(reply["result"]?.arrayValue?.count == 2)
            seen.insert(try #require(reply["id"]?.intValue))
        }
        #expect(seen == Set(0..<60))
        #expect(try process.waitForExit() == 0)
    }

    @Test("SIMD engine: parallel requests sharing the kernel threads all get their own correct results")
    func parallelKernels() throws {
        let process = try EngineProcess(.simd, arguments: ["--max-in-flight", "6"])
        // 6 distinct 160×160 matmuls (above the kernels' parallel threshold) in flight at once: A·(k·I) = k·A.
        let n = 160
        var a: [[Double]] = []
        for i in 0..<n {
            var row: [Double] = []
            for j in 0..<n { row.append(Double((i * 31 + j * 17) % 101) - 50) }
            a.append(row)
        }
        let rowTexts: [String] = a.map { row in "[" + row.map { String($0) }.joined(separator: ",") + "]" }
        let aText: String = "[" + rowTexts.joined(separator: ",") + "]"
        var text = ""
        for k in 1...6 {
            var scaled: [String] = []
            for i in 0..<n {
                let cells: [String] = (0..<n).map { $0 == i ? String(k) : "0" }
                scaled.append("[" + cells.joined(separator: ",") + "]")
            }
            text += request(k, "matmul", #"{"data":\#(aText),"matrix_b":[\#(scaled.joined(separator: ","))]}"#) + "\n"
        }
        process.sendInBackground(bytes: Array(text.utf8), thenClose: true)
        var seen = Set<Int>()
        for _ in 1...6 {
            let reply = try process.readJSON()
            let k = try #require(reply["id"]?.intValue)
            let rows = try #require(reply["result"]?.arrayValue)
            #expect(rows.count == n)
            var allMatch = true
            for (i, row) in rows.enumerated() where row.doublesValue != a[i].map({ $0 * Double(k) }) { allMatch = false }
            #expect(allMatch)
            seen.insert(k)
        }
        #expect(seen == Set(1...6))
        #expect(try process.waitForExit() == 0)
    }

    @Test("SIMD engine refuses to start without AVX2/FMA: exit status 3 and a clear message, no output")
    func refusal() throws {
        let process = try EngineProcess(.simd, environment: ["FORZIUM_SIMD_REFUSE": "1"])
        #expect(try process.waitForExit() == 3)
        #expect(try process.remainingLines().isEmpty)
        #expect(process.stderrText.contains("AVX2"))
    }
}
