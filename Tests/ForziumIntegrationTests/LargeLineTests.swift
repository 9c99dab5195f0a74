import Foundation
import ForziumJSON
import ForziumTesting
import Testing

/// Lines over 1 MiB take a different path in the SIMD engine (parsed on the reading thread, never copied);
/// both engines must answer them exactly like small ones, and keep serving afterwards.
@Suite("Large request lines over real pipes", .timeLimit(.minutes(3)))
struct LargeLineTests {
    @Test("A malformed multi-megabyte line gets -32700 with its position; the lines around it are answered", arguments: EngineBinary.allCases)
    func malformedLargeLine(engine: EngineBinary) throws {
        let big = ConcurrencyTests.bigMatmulLine(id: 1)
        #expect(big.line.utf8.count > 1 << 20)
        // Cut the request short inside the matrix: valid JSON up to the cut, then a stray token.
        let broken = String(big.line.prefix(big.line.utf8.count / 2)) + "]]x"
        let process = try EngineProcess(engine)
        let before = request(0, "sum", #"{"data":[[1,2]]}"#)
        let after = request(2, "sum", #"{"data":[[3,4]]}"#)
        process.sendInBackground(bytes: Array((before + "\n" + broken + "\n" + big.line + "\n" + after + "\n").utf8), thenClose: true)
        var replies: [JSONValue] = []
        for _ in 0..<4 { replies.append(try process.readJSON()) }
        #expect(try process.waitForExit() == 0)

        let parseErrors = replies.filter { $0.errorCode == -32700 }
        #expect(parseErrors.count == 1)
        #expect(parseErrors.first?["id"] == .null)
        #expect(parseErrors.first?["error"]?["data"]?["line"]?.intValue == 1)
        #expect((parseErrors.first?["error"]?["data"]?["column"]?.intValue ?? 0) > 1_000)
        let byID = Dictionary(uniqueKeysWithValues: replies.compactMap { reply in reply["id"]?.intValue.map { ($0, reply) } })
        #expect(byID[0]?["result"] == json("3"))
        #expect(byID[2]?["result"] == json("7"))
        if let full = byID[1] { ConcurrencyTests.check(full, equals: big.data) } else { Issue.record("no reply to the large matmul") }
    }

    /// A 1024² two-matrix request: ~41 MB of decimal text, 24 MiB of raw matrices (A, B and the result). The line is
    /// parsed as it arrives (never resident whole) into one buffer per matrix, and the reply is written as it is printed.
    static func twoMatrixLine(method: String, second: String) -> String {
        // 17 distinct rows of random doubles (~20 bytes each), repeated: formatting 2 M doubles in a debug build
        // would take the test a minute and a half.
        var generator = SplitMix64(seed: 1024)
        let rows = (0..<17).map { _ in
            "[" + (0..<1024).map { _ in String(Double(generator.next() >> 11) * 0x1p-53 * 2 - 1) }.joined(separator: ",") + "]"
        }
        func matrix(_ offset: Int) -> String {
            "[" + (0..<1024).map { rows[($0 + offset) % rows.count] }.joined(separator: ",") + "]"
        }
        return request(1, method, #"{"data":\#(matrix(0)),"\#(second)":\#(matrix(5))}"#)
    }

    /// The SIMD engine runs the 1024² matmul of the memory bar; the fallback engine, whose debug-build matmul takes
    /// minutes, an elementwise_add of the same two matrices (the same line, parse and reply path, and three matrices).
    @Test("Peak memory for a 1024² request of two matrices stays within its matrices and a small allowance (the line is never held whole)",
          .enabled(if: FileManager.default.fileExists(atPath: "/proc/self/status"), "needs /proc"),
          arguments: EngineBinary.allCases)
    func peakMemory(engine: EngineBinary) throws {
        let line = engine == .simd
            ? Self.twoMatrixLine(method: "matmul", second: "matrix_b")
            : Self.twoMatrixLine(method: "elementwise_add", second: "other")
        #expect(line.utf8.count > 40_000_000)
        let process = try EngineProcess(engine)
        try process.send(request(0, "engine.info", "{}"))
        _ = try process.readJSON()
        let idle = try #require(process.memoryKiB())
        process.sendInBackground(bytes: Array((line + "\n").utf8))
        let reply = try process.readLineBytes(timeout: 150)
        #expect(reply.count > 15_000_000)
        #expect(String(decoding: reply.prefix(40), as: UTF8.self).hasPrefix(#"{"jsonrpc":"2.0","id":1,"result":[["#))
        let peak = try #require(process.memoryKiB())
        process.closeInput()
        #expect(try process.waitForExit() == 0)
        // A, B and the result are 8 MiB each; the read window, the reply's print buffers and the kernel's panels get
        // 10 MiB. (Holding the line, or one array per row copied again into matrix storage, costs 40 MiB and more.)
        let allowanceKiB = (24 + 10) << 10
        #expect(peak - idle <= allowanceKiB, "peak \(peak) KiB, idle \(idle) KiB")
    }
}
