import Foundation
import ForziumJSON
import ForziumTesting
import Testing

/// One engine driven line by line: each probe line is followed by a sentinel `ping`, and the replies before the
/// sentinel's are the line's. `--max-in-flight 1` makes the engine finish a request before it reads the next line,
/// so the SIMD engine's replies cannot overtake each other either.
final class LineProbe {
    let process: EngineProcess
    private var sentinel = 0

    init(_ binary: EngineBinary) throws {
        process = try EngineProcess(binary, arguments: ["--max-in-flight", "1", "--max-line-bytes", "16777216"])
    }

    func replies(to line: [UInt8]) throws -> [String] {
        sentinel += 1
        let tag = "\"sentinel-\(sentinel)\""
        try process.send(bytes: line + [0x0A] + Array(#"{"jsonrpc":"2.0","id":\#(tag),"method":"ping"}"#.utf8) + [0x0A])
        var out: [String] = []
        while true {
            let reply = try process.readLine(timeout: 60)
            if reply.contains(tag) { return out }
            out.append(reply)
        }
    }

    func close() throws -> Int32 {
        process.closeInput()
        return try process.waitForExit()
    }
}

/// What a reply says, for comparing the engines: the error object (code, message, data) or the result, and the id.
struct ReplySummary: CustomStringConvertible {
    var id: JSONValue?
    var error: JSONValue?
    var result: JSONValue?
    var text: String

    init(_ line: String) {
        text = line
        guard let value = try? JSONParser().parse(Array(line.utf8)), case .object(let object) = value else { return }
        id = object["id"]
        error = object["error"]
        result = object["result"]
    }

    var code: Int? { error?["code"]?.intValue }
    var description: String { text.count > 300 ? String(text.prefix(300)) + "…" : text }
}

/// Results agree when they have the same shape, null (non-finite) in the same places, and numbers equal or within
/// `bound` (the reorderable sums of docs/simd-tolerance.md, bounded loosely from the request's magnitudes).
func resultsAgree(_ x: JSONValue?, _ y: JSONValue?, bound: Double) -> Bool {
    switch (x, y) {
    case (nil, nil): return true
    case (.numbers(let a)?, .numbers(let b)?):
        return a.count == b.count && zip(a, b).allSatisfy { numbersAgree($0, $1, bound: bound) }
    case (.number(let a)?, .number(let b)?):
        return numbersAgree(a.value, b.value, bound: bound)
    case (.array(let a)?, .array(let b)?):
        return a.count == b.count && zip(a, b).allSatisfy { resultsAgree($0, $1, bound: bound) }
    case (.array(let a)?, .numbers(let b)?), (.numbers(let b)?, .array(let a)?):
        return a.count == b.count && zip(a, b).allSatisfy { resultsAgree($0, .number(JSONNumber($1)), bound: bound) }
    case (.object(let a)?, .object(let b)?):
        return a.members.count == b.members.count
            && zip(a.members, b.members).allSatisfy { $0.key == $1.key && resultsAgree($0.value, $1.value, bound: bound) }
    default:
        return x == y
    }
}

func numbersAgree(_ a: Double, _ b: Double, bound: Double) -> Bool {
    a == b || (a.isNaN && b.isNaN) || abs(a - b) <= bound
}

/// Σ|x| over every finite number in a JSON value.
func magnitude(_ value: JSONValue) -> Double {
    switch value {
    case .number(let n): return n.value.isFinite ? abs(n.value) : 0
    case .numbers(let xs): return xs.reduce(0) { $0 + ($1.isFinite ? abs($1) : 0) }
    case .array(let items): return items.reduce(0) { $0 + magnitude($1) }
    case .object(let object): return object.members.reduce(0) { $0 + magnitude($1.value) }
    default: return 0
    }
}

/// Compares the two engines' replies to one line: same number of replies; per reply the same id, the same error
/// (code, message and data, -32700 positions included) or results that agree. Returns a description of the first
/// disagreement.
func disagreement(line: [UInt8], fallback: [String], simd: [String]) -> String? {
    if fallback.count != simd.count { return "reply count \(fallback.count) vs \(simd.count): \(fallback) | \(simd)" }
    let scale = (try? JSONParser().parse(line)).map(magnitude) ?? 0
    // k·ε·Σ|a||b| ≤ k·ε·(Σ|x|)² for matmul; (n+1)·ε·Σ|x| for sums; both well under this.
    let bound = 1e-12 * (scale + scale * scale)
    for (a, b) in zip(fallback.map(ReplySummary.init), simd.map(ReplySummary.init)) {
        if a.id != b.id { return "id \(a) vs \(b)" }
        if a.error != b.error { return "error \(a) vs \(b)" }
        if !resultsAgree(a.result, b.result, bound: bound) { return "result \(a) vs \(b)" }
    }
    return nil
}

/// Both engines on the same lines: JSONTestSuite, the number corpus, the rule cases, and mutated requests.
@Suite("Differential: both engines give the same verdict, code, id and result", .serialized, .timeLimit(.minutes(10)))
struct DifferentialTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let testdata = packageRoot.appendingPathComponent("../shared/testdata").standardizedFileURL
    static let suite = testdata.appendingPathComponent("jsontestsuite/test_parsing")
    static let numbers = testdata.appendingPathComponent("number-corpus/derived-json-grammar-f64.tsv")
    static var haveSuite: Bool { FileManager.default.fileExists(atPath: suite.path) }
    static var haveNumbers: Bool { FileManager.default.fileExists(atPath: numbers.path) }

    /// The input extension both engines document: Python's NaN / Infinity / -Infinity tokens.
    static let documentedExtensions: Set<String> = ["n_number_NaN.json", "n_number_infinity.json", "n_number_minus_infinity.json"]

    enum Verdict: String { case accepted, rejected, silent }

    static func verdict(_ replies: [String]) -> Verdict {
        if replies.isEmpty { return .silent }
        return replies.contains { ReplySummary($0).code == -32700 } ? .rejected : .accepted
    }

    @Test("JSONTestSuite test_parsing: every y_ accepted, every n_ rejected (NaN/Infinity excepted), i_ the same in both",
          .enabled(if: haveSuite, "needs ../shared/testdata/jsontestsuite"))
    func jsonTestSuite() throws {
        let fallback = try LineProbe(.fallback), simd = try LineProbe(.simd)
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.suite.path).filter { $0.hasSuffix(".json") }.sorted()
        var checked = 0, skipped: [String] = []
        for name in files {
            var bytes = Array(try Data(contentsOf: Self.suite.appendingPathComponent(name)))
            if bytes.contains(0x0A) || bytes.contains(0x0D) {
                // A line-framed engine cannot take a raw LF or CR inside one message. In y_ files they are only
                // whitespace, so a space keeps the document valid; in n_ / i_ files they may matter, so skip those.
                guard name.hasPrefix("y_") else { skipped.append(name); continue }
                bytes = bytes.map { $0 == 0x0A || $0 == 0x0D ? 0x20 : $0 }
            }
            let a = try fallback.replies(to: bytes), b = try simd.replies(to: bytes)
            let verdictA = Self.verdict(a), verdictB = Self.verdict(b)
            #expect(verdictA == verdictB, "\(name): fallback \(verdictA) \(a), simd \(verdictB) \(b)")
            if let problem = disagreement(line: bytes, fallback: a, simd: b) { Issue.record("\(name): \(problem)") }
            if name.hasPrefix("y_") {
                #expect(verdictA == .accepted, "\(name): \(a)")
            } else if name.hasPrefix("n_") && !Self.documentedExtensions.contains(name) {
                // An empty or blank line is no message: the engines skip it without a reply.
                #expect(verdictA == .rejected || (verdictA == .silent && bytes.allSatisfy { $0 == 0x20 || $0 == 0x09 }),
                        "\(name): \(verdictA) \(a)")
            }
            checked += 1
        }
        print("JSONTestSuite: \(checked) files through both engines; skipped (raw LF/CR in an n_/i_ file): \(skipped)")
        #expect(try fallback.close() == 0)
        #expect(try simd.close() == 0)
    }

    @Test("number corpus: every decimal of derived-json-grammar-f64.tsv and its negation parse bit-exactly in both engines",
          .enabled(if: haveNumbers, "needs ../shared/testdata/number-corpus"))
    func numberCorpus() throws {
        var decimals: [String] = [], bits: [UInt64] = []
        for row in try String(contentsOf: Self.numbers, encoding: .utf8).split(separator: "\n") where !row.hasPrefix("#") {
            let fields = row.split(separator: "\t")
            guard fields.count >= 3, let pattern = UInt64(fields[0], radix: 16) else { continue }
            decimals.append(String(fields[2])); bits.append(pattern)
            decimals.append("-" + fields[2]); bits.append(pattern ^ (1 << 63))
        }
        #expect(decimals.count > 300_000)
        for binary in EngineBinary.allCases {
            let process = try EngineProcess(binary, arguments: ["--max-line-bytes", "16777216"])
            var bad = 0
            var start = 0, id = 0
            while start < decimals.count {
                // Up to 25,000 numbers or about 2 MB per line (some decimals have 1,000 digits).
                var end = start, bytes = 0
                while end < decimals.count && end - start < 25_000 && bytes < 2_000_000 {
                    bytes += decimals[end].utf8.count + 1
                    end += 1
                }
                let row = decimals[start ..< end].joined(separator: ",")
                id += 1
                try process.send(request(id, "reshape", #"{"data":[[\#(row)]],"rows":1,"cols":\#(end - start),"$result":"binary"}"#))
                let got = try #require(binaryResult(try process.readLineBytes(), id: id))
                for (offset, value) in got.storage.enumerated() where value.bitPattern != bits[start + offset] {
                    bad += 1
                    if bad <= 5 { Issue.record("\(binary): \(decimals[start + offset]) parsed as \(String(value.bitPattern, radix: 16))") }
                }
                // The same numbers as JSON text: the shortest round-trip form reads back (Swift's strtod) to the same bits.
                id += 1
                try process.send(request(id, "reshape", #"{"data":[[\#(row)]],"rows":1,"cols":\#(end - start)}"#))
                let text = try #require(rawResult(try process.readLineBytes(), id: id))
                let printed = String(decoding: text.dropFirst(2).dropLast(2), as: UTF8.self).split(separator: ",")
                #expect(printed.count == end - start)
                // A decimal beyond the double range reads as ±inf, which strict JSON output writes as null.
                for (offset, token) in printed.enumerated()
                where Double(bitPattern: bits[start + offset]).isFinite ? Double(token)?.bitPattern != bits[start + offset] : token != "null" {
                    bad += 1
                    if bad <= 5 { Issue.record("\(binary): \(decimals[start + offset]) printed as \(token)") }
                }
                start = end
            }
            #expect(bad == 0, "\(binary): \(bad) of \(decimals.count) numbers not bit-exact")
            process.closeInput()
            #expect(try process.waitForExit() == 0)
        }
    }

    /// The cases the issue found, each must give the same reply from both engines (and the stated answer).
    static let ruleCases: [(String, String)] = [
        (#"{"jsonrpc":"2.0","id":1,"method":"sum","params":{"data":[[1e308,-1e308,0,0,1e308,-1e308,0,0]]}}"#, #""result":0.0"#),
        (#"{"jsonrpc":"2.0","id":2,"method":"matmul","params":{"data":[[-1e308,-1e308]],"matrix_b":[[1],[-2]]}}"#, #""result":[[1e+308]]"#),
        (#"{"jsonrpc":"2.0","id":3,"method":"normalize","params":{"data":[[1e-170]],"mode":"l2"}}"#, #""result":[[1.0]]"#),
        (#"{"jsonrpc":"2.0","id":4,"method":"matmul","params":{"data":[[-1e-320]],"matrix_b":[[1e-10]]}}"#, #""result":[[0.0]]"#),
        (#"{"jsonrpc":"2.0","id":NaN,"method":"ping"}"#, #""code":-32600"#),
        (#"{"jsonrpc":"2.0","id":-Infinity,"method":"ping"}"#, #""code":-32600"#),
        ("{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"params\":{\"data\":[[1,2\u{0}]]},\"id\":1}", #""code":-32700"#),
        ("{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"params\":{\"data\":[[1,2\u{0}]]}}", #""code":-32700"#),
        ("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"sum\",\"params\":{\"data\":[[123456789012345678901234567890\u{0}]]}}", #""code":-32700"#),
    ]

    @Test("the disagreements of issue 9 are gone: overflow, underflow, signed zero, NaN ids, NUL bytes")
    func ruleCasesAgree() throws {
        let fallback = try LineProbe(.fallback), simd = try LineProbe(.simd)
        for (line, expected) in Self.ruleCases {
            let bytes = Array(line.utf8)
            let a = try fallback.replies(to: bytes), b = try simd.replies(to: bytes)
            #expect(a == b, "\(line)")
            #expect(a.count == 1 && a[0].contains(expected), "\(line): \(a)")
        }
        _ = try fallback.close(); _ = try simd.close()
    }

    /// Requests of every method (valid ones), the seeds of the mutation fuzz.
    static let seeds: [String] = [
        #"{"jsonrpc":"2.0","id":1,"method":"sum","params":{"data":[[1,2.5,-3],[4e10,5e-3,6]]}}"#,
        #"{"jsonrpc":"2.0","id":"a","method":"mean","params":{"data":[[1,2],[3,4]],"axis":0}}"#,
        #"{"jsonrpc":"2.0","id":2,"method":"max","params":{"data":[[1,-0.0],[0,4]],"axis":1}}"#,
        #"{"jsonrpc":"2.0","id":3,"method":"min","params":{"data":[[1,2,3]]}}"#,
        #"{"jsonrpc":"2.0","id":4,"method":"matmul","params":{"data":[[1,2],[3,4]],"matrix_b":[[5,6],[7,8]]}}"#,
        #"{"jsonrpc":"2.0","id":5,"method":"multiply","params":{"data":[[1,2],[3,4]],"factor":-2.5}}"#,
        #"{"jsonrpc":"2.0","id":6,"method":"add","params":{"data":[[1,2],[3,4]],"addend":1e300}}"#,
        #"{"jsonrpc":"2.0","id":7,"method":"transpose","params":{"data":[[1,2,3],[4,5,6]]}}"#,
        #"{"jsonrpc":"2.0","id":8,"method":"elementwise_div","params":{"data":[[1,0],[3,4]],"other":[[0,0],[2,-1]]}}"#,
        #"{"jsonrpc":"2.0","id":9,"method":"conv2d","params":{"data":[[1,2,3],[4,5,6],[7,8,9]],"kernel":[[1,0],[0,-1]]}}"#,
        #"{"jsonrpc":"2.0","id":10,"method":"max_pool2d","params":{"data":[[1,2,3,4],[5,6,7,8]],"size":2}}"#,
        #"{"jsonrpc":"2.0","id":11,"method":"normalize","params":{"data":[[1,2],[3,4]],"mode":"l2"}}"#,
        #"{"jsonrpc":"2.0","id":12,"method":"normalize","params":{"data":[[1,2],[3,4]]}}"#,
        #"{"jsonrpc":"2.0","id":13,"method":"reshape","params":{"data":[[1,2],[3,4]],"rows":4,"cols":1}}"#,
        #"{"jsonrpc":"2.0","id":14,"method":"compute","params":{"data":[[1,2],[3,4]],"operation":"sum","parameters":{"axis":1}}}"#,
        #"{"jsonrpc":"2.0","id":15,"method":"elementwise_sub","params":{"data":[[1e308,-1e308]],"other":[[-1e308,1e308]]}}"#,
        #"{"jsonrpc":"2.0","id":16,"method":"sum","params":{"data":[[1e308,1e308,-1e308,-1e308,1,2,3,4,5,6,7,8,9,10,11,12,13]]}}"#,
        #"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
        #"{"jsonrpc":"2.0","id":17,"method":"ping","params":{"x":1}}"#,
        #"[{"jsonrpc":"2.0","id":18,"method":"sum","params":{"data":[[1]]}},{"jsonrpc":"2.0","method":"sum","params":{"data":[[1]]}}]"#,
        #"{"jsonrpc":"2.0","method":"sum","params":{"data":[[1,2]]}}"#,
    ]

    static let tokens: [String] = [
        "1e308", "-1e308", "NaN", "Infinity", "-Infinity", "-0", "1e-320", "123456789012345678901234567890", "\\u0000",
        ",", "null", "true", "[", "]", "{", "}", "\"", ":", "0.5e", "1.", "\u{0}", "\u{FF}", "-", "1e400", "2.2250738585072011e-308",
        "[[1,2],[3,4]]", "\"data\"", "\"id\"", "\"method\"",
    ]

    static func mutate(_ seed: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var line = seed
        let interesting: [UInt8] = [0x00, 0x22, 0x2C, 0x5D, 0x5B, 0x7B, 0x7D, 0x3A, 0x2D, 0x2E, 0x65, 0x31, 0x39, 0x30, 0x20,
                                    0x5C, 0x4E, 0x49, 0xFF, 0xC3, 0x0D, 0x09, 0x80]
        for _ in 0 ..< Int.random(in: 1 ... 3, using: &rng) where !line.isEmpty {
            let at = Int.random(in: 0 ..< line.count, using: &rng)
            switch Int.random(in: 0 ..< 5, using: &rng) {
            case 0: line[at] = interesting.randomElement(using: &rng)!
            case 1: line.insert(contentsOf: Array(tokens.randomElement(using: &rng)!.utf8), at: at)
            case 2: line.removeSubrange(at ..< min(line.count, at + Int.random(in: 1 ... 8, using: &rng)))
            case 3:
                let end = min(line.count, at + Int.random(in: 1 ... 16, using: &rng))
                line.insert(contentsOf: line[at ..< end], at: end)
            default:
                // Replace the number token starting at or after `at` with an extreme one.
                guard let start = line[at...].firstIndex(where: { ($0 >= 0x30 && $0 <= 0x39) }) else { break }
                var end = start
                while end < line.count, line[end] >= 0x2B && line[end] <= 0x65 && line[end] != 0x2C { end += 1 }
                line.replaceSubrange(start ..< end, with: Array(["1e308", "-1e308", "1e-320", "0", "-0", "4.9e-324", "1.7976931348623157e308"]
                    .randomElement(using: &rng)!.utf8))
            }
        }
        return line.filter { $0 != 0x0A }
    }

    @Test("mutated requests (FORZIUM_DIFF_LINES, default 3000): the same replies from both engines")
    func mutationFuzz() throws {
        let count = ProcessInfo.processInfo.environment["FORZIUM_DIFF_LINES"].flatMap(Int.init) ?? 3000
        let seed = ProcessInfo.processInfo.environment["FORZIUM_DIFF_SEED"].flatMap(UInt64.init) ?? 9
        var rng = SplitMix64(seed: seed)
        let fallback = try LineProbe(.fallback), simd = try LineProbe(.simd)
        let seeds = Self.seeds.map { Array($0.utf8) }
        var disagreements = 0, verdicts: [Verdict: Int] = [:]
        for _ in 0 ..< count {
            let line = Self.mutate(seeds.randomElement(using: &rng)!, &rng)
            let a = try fallback.replies(to: line), b = try simd.replies(to: line)
            verdicts[Self.verdict(a), default: 0] += 1
            if let problem = disagreement(line: line, fallback: a, simd: b) {
                disagreements += 1
                if disagreements <= 20 { Issue.record("\(String(decoding: line, as: UTF8.self).debugDescription): \(problem)") }
            }
        }
        print("differential fuzz: \(count) mutated lines (seed \(seed)), \(disagreements) disagreements; verdicts \(verdicts)")
        #expect(disagreements == 0)
        #expect(try fallback.close() == 0)
        #expect(try simd.close() == 0)
    }
}
