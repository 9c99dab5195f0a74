import Foundation
import ForziumJSON
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
}
