import Foundation
import ForziumJSON
import Testing

/// Parses JSON text written in a test.
func json(_ text: String) -> JSONValue {
    do { return try JSONParser().parse(text) } catch { fatalError("bad JSON in test: \(text): \(error)") }
}

extension JSONValue {
    var errorCode: Int? { self["error"]?["code"]?.intValue }
    var errorMessage: String? { self["error"]?["message"]?.stringValue }
}

/// `{"jsonrpc":"2.0","id":<id>,"method":<method>,"params":<params>}`.
func request(_ id: Int, _ method: String, _ params: String? = nil) -> String {
    let tail = params.map { #","params":\#($0)"# } ?? ""
    return #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)"\#(tail)}"#
}

/// Every operation with a small input and its exact expected result.
let operationCases: [(method: String, params: String, result: String)] = [
    ("multiply", #"{"data":[[1,2],[3,4]],"factor":3}"#, "[[3,6],[9,12]]"),
    ("multiply", #"{"data":[[1,2],[3,4]]}"#, "[[1,2],[3,4]]"),
    ("add", #"{"data":[[1,2],[3,4]],"addend":0.5}"#, "[[1.5,2.5],[3.5,4.5]]"),
    ("add", #"{"data":[[1,2]]}"#, "[[1,2]]"),
    ("matmul", #"{"data":[[1,2],[3,4]],"matrix_b":[[5,6],[7,8]]}"#, "[[19,22],[43,50]]"),
    ("matmul", #"{"data":[[1,2,3]],"matrix_b":[[1],[2],[3]]}"#, "[[14]]"),
    ("transpose", #"{"data":[[1,2,3],[4,5,6]]}"#, "[[1,4],[2,5],[3,6]]"),
    ("elementwise_add", #"{"data":[[1,2],[3,4]],"other":[[10,20],[30,40]]}"#, "[[11,22],[33,44]]"),
    ("elementwise_sub", #"{"data":[[1,2],[3,4]],"other":[[10,20],[30,40]]}"#, "[[-9,-18],[-27,-36]]"),
    ("elementwise_mul", #"{"data":[[1,2],[3,4]],"other":[[10,20],[30,40]]}"#, "[[10,40],[90,160]]"),
    ("elementwise_div", #"{"data":[[1,-1],[0,4]],"other":[[0,0],[0,2]]}"#, "[[null,null],[null,2]]"),
    ("conv2d", #"{"data":[[1,2,3],[4,5,6],[7,8,9]],"kernel":[[1,0],[0,1]]}"#, "[[6,8],[12,14]]"),
    ("max_pool2d", #"{"data":[[1,2,3,4],[5,6,7,8]],"size":2}"#, "[[6,8]]"),
    ("normalize", #"{"data":[[1,3],[5,9]],"mode":"minmax"}"#, "[[0,0.25],[0.5,1]]"),
    ("normalize", #"{"data":[[3,4]],"mode":"l2"}"#, "[[0.6,0.8]]"),
    ("normalize", #"{"data":[[0,0]],"mode":"l2"}"#, "[[0,0]]"),
    ("reshape", #"{"data":[[1,2,3,4,5,6]],"rows":3,"cols":2}"#, "[[1,2],[3,4],[5,6]]"),
    ("sum", #"{"data":[[1,2],[3,4]]}"#, "10"),
    ("sum", #"{"data":[[1,2],[3,4]],"axis":0}"#, "[[4,6]]"),
    ("sum", #"{"data":[[1,2],[3,4]],"axis":1}"#, "[[3],[7]]"),
    ("mean", #"{"data":[[1,2],[3,4]],"axis":null}"#, "2.5"),
    ("mean", #"{"data":[[1,2],[3,4]],"axis":0}"#, "[[2,3]]"),
    ("min", #"{"data":[[4,2],[3,1]]}"#, "1"),
    ("min", #"{"data":[[4,2],[3,1]],"axis":1}"#, "[[2],[1]]"),
    ("max", #"{"data":[[4,2],[3,1]]}"#, "4"),
    ("max", #"{"data":[[4,2],[3,1]],"axis":0}"#, "[[4,2]]"),
    ("compute", #"{"data":[[1,2],[3,4]],"operation":"matmul","parameters":{"matrix_b":[[5,6],[7,8]]}}"#, "[[19,22],[43,50]]"),
    ("compute", #"{"data":[[1,2],[3,4]],"operation":"transpose"}"#, "[[1,3],[2,4]]"),
    ("compute", #"{"data":[[1,2],[3,4]],"operation":"sum","parameters":{"axis":1}}"#, "[[3],[7]]"),
]

@Suite("Engine conformance over real pipes", .timeLimit(.minutes(3)))
struct ConformanceTests {
    @Test("Every operation answers its exact result", arguments: EngineBinary.allCases)
    func everyOperation(engine: EngineBinary) throws {
        let process = try EngineProcess(engine)
        for (index, item) in operationCases.enumerated() {
            let reply = try process.call(request(index, item.method, item.params))
            #expect(reply["id"]?.intValue == index)
            #expect(reply["result"] == json(item.result), "\(item.method) \(item.params) → \(reply)")
        }
        // Every catalogue method is exercised above.
        let info = try process.call(request(999, "engine.info"))
        let methods = Set(info["result"]?["methods"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        #expect(methods.subtracting(["engine.info", "stream", "ping"]) == Set(operationCases.map(\.method)))
        #expect(methods.contains("ping"))
        process.closeInput()
        #expect(try process.waitForExit() == 0)
    }

    @Test("engine.info describes the engine", arguments: EngineBinary.allCases)
    func engineInfo(engine: EngineBinary) throws {
        let process = try EngineProcess(engine, arguments: ["--max-line-bytes", "4096", "--max-elements", "1000"])
        let info = try #require(try process.call(request(1, "engine.info"))["result"])
        #expect(info["name"]?.stringValue == engine.rawValue)
        #expect(info["version"]?.stringValue?.isEmpty == false)
        #expect((info["threads"]?.intValue ?? 0) >= 1)
        #expect((info["simd_width"]?.intValue ?? 0) >= 1)
        #expect(info["max_line_bytes"]?.intValue == 4096)
        #expect(info["max_elements"]?.intValue == 1000)
        #expect(info["methods"]?.arrayValue?.contains(.string("matmul")) == true)
        #expect(info["schema_digest"]?.stringValue?.hasPrefix("sha256:") == true)
        switch engine {
        case .fallback:
            #expect(info["kind"]?.stringValue == "fallback")
            #expect(info["threads"]?.intValue == 1)
            #expect(info["simd_width"]?.intValue == 1)
            #expect(info["isa"]?.stringValue == "scalar")
        case .simd:
            #expect(info["kind"]?.stringValue == "simd")
            #expect((info["simd_width"]?.intValue ?? 0) >= 2)
            #expect(["avx2", "avx512"].contains(info["isa"]?.stringValue ?? ""))
            #expect(info["simd_width"]?.intValue == (info["isa"]?.stringValue == "avx512" ? 8 : 4))
        }
        process.closeInput()
        #expect(try process.waitForExit() == 0)
    }

    /// Which ISAs the SIMD engine can run here: it reports the widest with no flag; avx2 is there wherever it starts.
    static func simdISAs() throws -> [String] {
        let process = try EngineProcess(.simd)
        defer { process.closeInput(); _ = try? process.waitForExit() }
        let best = try #require(try process.call(request(1, "engine.info"))["result"]?["isa"]?.stringValue)
        return best == "avx512" ? ["avx2", "avx512"] : ["avx2"]
    }

    @Test("--isa and FORZIUM_ISA pick the SIMD engine's matmul kernel; every ISA this machine has gives the same bits")
    func isaOverride() throws {
        let isas = try Self.simdISAs()
        print("forzium-engine-simd ISAs run on this machine: \(isas)")
        let matmul = #"{"jsonrpc":"2.0","id":2,"method":"matmul","params":{"data":[[1.5,-2,3e-3],[0.1,0.2,0.3],[7,8,9]],"matrix_b":[[1,2],[3,4],[5,6.25]]}}"#
        var answers: [String] = []
        for isa in isas {
            for (arguments, environment) in [(["--isa", isa], [String: String]()), ([], ["FORZIUM_ISA": isa])] {
                let process = try EngineProcess(.simd, arguments: arguments, environment: environment)
                let info = try #require(try process.call(request(1, "engine.info"))["result"])
                #expect(info["isa"]?.stringValue == isa)
                #expect(info["simd_width"]?.intValue == (isa == "avx512" ? 8 : 4))
                try process.send(matmul)
                answers.append(try process.readLine())
                process.closeInput()
                #expect(try process.waitForExit() == 0)
            }
        }
        #expect(Set(answers).count == 1, "\(answers)")
        // The flag wins over the environment.
        let both = try EngineProcess(.simd, arguments: ["--isa", "avx2"], environment: ["FORZIUM_ISA": isas.last!])
        #expect(try both.call(request(1, "engine.info"))["result"]?["isa"]?.stringValue == "avx2")
        both.closeInput()
        #expect(try both.waitForExit() == 0)
        // Asking for an ISA the machine lacks (or an unknown one via the environment) is refused at start-up.
        if !isas.contains("avx512") {
            let refused = try EngineProcess(.simd, arguments: ["--isa", "avx512"])
            refused.closeInput()
            #expect(try refused.waitForExit() == 3)
        }
        let unknown = try EngineProcess(.simd, environment: ["FORZIUM_ISA": "sse9"])
        unknown.closeInput()
        #expect(try unknown.waitForExit() == 3)
    }

    @Test("A wait for an engine's line that times out says what the engine was doing")
    func timeoutSaysWhatTheEngineDoes() throws {
        let engine = try EngineProcess(.simd)
        _ = try engine.call(request(1, "engine.info"))
        kill(engine.pid, SIGSTOP)
        var message = ""
        do {
            _ = try engine.call(request(2, "engine.info"), timeout: 0.5)
        } catch let timeout as EngineTimeout {
            message = timeout.description
        }
        kill(engine.pid, SIGCONT)
        #expect(message.contains("running, threads: [\(engine.pid) "), "\(message)")
        #expect(message.contains(" T wchan="), "stopped threads show state T: \(message)")
        #expect(try engine.readJSON()["id"]?.intValue == 2)
        engine.closeInput()
        #expect(try engine.waitForExit() == 0)
    }

    @Test("Both engines carry the same schema digest; --threads sets the SIMD engine's thread count")
    func sameSchemas() throws {
        let fallback = try EngineProcess(.fallback)
        let simd = try EngineProcess(.simd, arguments: ["--threads", "3"])
        let a = try #require(try fallback.call(request(1, "engine.info"))["result"])
        let b = try #require(try simd.call(request(1, "engine.info"))["result"])
        #expect(a["schema_digest"] != nil && a["schema_digest"] == b["schema_digest"])
        #expect(a["methods"] == b["methods"])
        #expect(b["threads"]?.intValue == 3)
    }

    @Test("Errors: -32700, -32600, -32601, -32602 with pointers, -32000", arguments: EngineBinary.allCases)
    func errors(engine: EngineBinary) throws {
        let process = try EngineProcess(engine, arguments: ["--max-elements", "8"])
        // -32700, id null, located.
        let parse = try process.call(#"{"jsonrpc":"2.0","id":1,"method":"sum","params":{"data":[[1,2]}}"#)
        #expect(parse.errorCode == -32700)
        #expect(parse["id"] == .null)
        #expect(parse.errorMessage?.contains("line 1, column") == true)
        #expect(parse["error"]?["data"]?["column"]?.intValue != nil)
        // -32600, with the id echoed when it is usable.
        let version = try process.call(#"{"jsonrpc":"1.0","id":7,"method":"sum","params":{"data":[[1]]}}"#)
        #expect(version.errorCode == -32600)
        #expect(version["id"]?.intValue == 7)
        #expect(try process.call(#"{"jsonrpc":"2.0","id":8,"method":3}"#).errorCode == -32600)
        #expect(try process.call(#"{"jsonrpc":"2.0","id":9,"method":"sum","params":1}"#).errorCode == -32600)
        #expect(try process.call(#"{"jsonrpc":"2.0","id":{"a":1},"method":"sum"}"#)["id"] == .null)
        #expect(try process.call(#""hello""#).errorCode == -32600)
        // -32601.
        let missing = try process.call(request(10, "no_such_method", "{}"))
        #expect(missing.errorCode == -32601)
        #expect(missing["id"]?.intValue == 10)
        // -32602 with data.errors pointers.
        func issues(_ reply: JSONValue) -> [String] {
            reply["error"]?["data"]?["errors"]?.arrayValue?.compactMap { $0["pointer"]?.stringValue } ?? []
        }
        let ragged = try process.call(request(11, "sum", #"{"data":[[1,2],[3,4,5]]}"#))
        #expect(ragged.errorCode == -32602)
        #expect(issues(ragged) == ["/data/1"])
        let nonNumeric = try process.call(request(12, "multiply", #"{"data":[[1,"x"]],"factor":2}"#))
        #expect(nonNumeric.errorCode == -32602)
        #expect(issues(nonNumeric) == ["/data/0/1"])
        #expect(issues(try process.call(request(13, "sum", #"{"data":[]}"#))) == ["/data"])
        #expect(try process.call(request(14, "matmul", #"{"data":[[1,2]],"matrix_b":[[1,2]]}"#)).errorCode == -32602)
        #expect(try process.call(request(15, "normalize", #"{"data":[[2,2]],"mode":"minmax"}"#)).errorCode == -32602)
        #expect(try process.call(request(16, "sum")).errorCode == -32602)
        let wrongType = try process.call(request(17, "compute", #"{"data":[[1]],"operation":"add","parameters":{"addend":"x"}}"#))
        #expect(issues(wrongType) == ["/parameters/addend"])
        // -32000: more elements than --max-elements 8.
        let tooLarge = try process.call(request(18, "sum", #"{"data":[[1,2,3],[4,5,6],[7,8,9]]}"#))
        #expect(tooLarge.errorCode == -32000)
        #expect(tooLarge["id"]?.intValue == 18)
        // Still serving afterwards.
        #expect(try process.call(request(19, "sum", #"{"data":[[1,2]]}"#))["result"] == json("3"))
    }

    @Test("Ids are echoed byte for byte", arguments: EngineBinary.allCases)
    func idsEchoed(engine: EngineBinary) throws {
        let process = try EngineProcess(engine)
        for id in ["1", "\"1\"", "1.50", "-0", "1e400", "98765432109876543210", "null", "\"ä\""] {
            try process.send(#"{"jsonrpc":"2.0","id":\#(id),"method":"sum","params":{"data":[[1]]}}"#)
            #expect(try process.readLine() == #"{"jsonrpc":"2.0","id":\#(id),"result":1.0}"#)
        }
    }

    @Test("Notifications get no reply, even on error; batches follow the spec", arguments: EngineBinary.allCases)
    func notificationsAndBatches(engine: EngineBinary) throws {
        let process = try EngineProcess(engine)
        try process.send(#"{"jsonrpc":"2.0","method":"sum","params":{"data":[[1]]}}"#)
        try process.send(#"{"jsonrpc":"2.0","method":"no_such_method"}"#)
        try process.send(#"{"jsonrpc":"2.0","method":"sum","params":{"data":"bad"}}"#)
        try process.send(#"[{"jsonrpc":"2.0","method":"sum","params":{"data":[[1]]}},{"jsonrpc":"2.0","method":"nope"}]"#)
        // The first reply must be the one to this request: nothing was written for the lines above.
        #expect(try process.call(request(1, "sum", #"{"data":[[5]]}"#))["id"]?.intValue == 1)

        let empty = try process.call("[]")
        #expect(empty.errorCode == -32600)
        #expect(empty["id"] == .null)

        let numbers = try #require(try process.call("[1,2]").arrayValue)
        #expect(numbers.count == 2)
        #expect(numbers.allSatisfy { $0.errorCode == -32600 && $0["id"] == .null })

        let mixed = try #require(try process.call(
            #"[{"jsonrpc":"2.0","id":"a","method":"sum","params":{"data":[[1,2]]}},{"jsonrpc":"2.0","method":"sum","params":{"data":[[1]]}},{"foo":"bar"},{"jsonrpc":"2.0","id":"b","method":"nope"}]"#
        ).arrayValue)
        #expect(mixed.count == 3)
        let byID = Dictionary(mixed.compactMap { reply in reply["id"]?.stringValue.map { ($0, reply) } }, uniquingKeysWith: { a, _ in a })
        #expect(byID["a"]?["result"] == json("3"))
        #expect(byID["b"]?.errorCode == -32601)
        #expect(mixed.contains { $0.errorCode == -32600 && $0["id"] == .null })
    }

    @Test("An oversize line gets -32600 with id null and the next line is served", arguments: EngineBinary.allCases)
    func oversizeLine(engine: EngineBinary) throws {
        let process = try EngineProcess(engine, arguments: ["--max-line-bytes", "1024"])
        let row = Array(repeating: "1.25", count: 2000).joined(separator: ",")
        try process.send(request(1, "sum", #"{"data":[[\#(row)]]}"#))
        let rejected = try process.readJSON()
        #expect(rejected.errorCode == -32600)
        #expect(rejected["id"] == .null)
        #expect(rejected.errorMessage?.contains("1024") == true)
        #expect(try process.call(request(2, "sum", #"{"data":[[1,2]]}"#))["result"] == json("3"))
        // A 32 MB line is skipped as it streams by, also when it arrives together with the next request.
        var bytes = Array(#"{"jsonrpc":"2.0","id":3,"method":"sum","params":{"data":[["#.utf8)
        bytes += [UInt8](repeating: UInt8(ascii: "7"), count: 32 << 20)
        bytes += Array("]]}}\r\n".utf8) + Array((request(4, "sum", #"{"data":[[4]]}"#) + "\r\n").utf8)
        process.sendInBackground(bytes: bytes)
        #expect(try process.readJSON()["id"] == .null)
        #expect(try process.readJSON()["result"] == json("4"))
    }

    @Test("Invalid UTF-8 is a parse error and the engine goes on", arguments: EngineBinary.allCases)
    func invalidUTF8(engine: EngineBinary) throws {
        let process = try EngineProcess(engine)
        var bytes = Array(#"{"jsonrpc":"2.0","id":1,"method":"no\#u{0}"#.utf8).dropLast()
        bytes += [0xFF, 0xFE]
        bytes += Array("\"}\n".utf8)
        try process.send(bytes: Array(bytes))
        let reply = try process.readJSON()
        #expect(reply.errorCode == -32700)
        #expect(reply["id"] == .null)
        try process.send(bytes: Array(#"{"jsonrpc":"2.0","id":2,"method":"sum","params":{"data":[["#.utf8) + [0xC3, 0x28] + Array("]]}}\n".utf8))
        #expect(try process.readJSON().errorCode == -32700)
        #expect(try process.call(request(3, "sum", #"{"data":[[1]]}"#))["id"]?.intValue == 3)
    }

    @Test("At end of input: every request answered (a last line without LF too), exit status 0", arguments: EngineBinary.allCases)
    func endOfInput(engine: EngineBinary) throws {
        let process = try EngineProcess(engine)
        var text = ""
        for id in 1...3 { text += request(id, "matmul", #"{"data":[[1,2],[3,4]],"matrix_b":[[\#(id),0],[0,1]]}"#) + "\n" }
        text += request(4, "transpose", #"{"data":[[1,2]]}"#)  // no LF
        try process.send(bytes: Array(text.utf8))
        process.closeInput()
        let lines = try process.remainingLines()
        #expect(try process.waitForExit() == 0)
        let ids = Set(lines.compactMap { json($0)["id"]?.intValue })
        #expect(ids == [1, 2, 3, 4])
        #expect(lines.count == 4)

        let idle = try EngineProcess(engine)
        idle.closeInput()
        #expect(try idle.remainingLines().isEmpty)
        #expect(try idle.waitForExit() == 0)
    }

    @Test("1000 pipelined small requests are all answered", arguments: EngineBinary.allCases)
    func pipelining(engine: EngineBinary) throws {
        let process = try EngineProcess(engine)
        var text = ""
        for id in 0..<1000 { text += request(id, "multiply", #"{"data":[[\#(id),1],[2,3]],"factor":2}"#) + "\n" }
        process.sendInBackground(bytes: Array(text.utf8), thenClose: true)
        var seen = Set<Int>()
        for _ in 0..<1000 {
            let reply = try process.readJSON()
            let id = try #require(reply["id"]?.intValue)
            #expect(reply["result"] == json("[[\(2 * id),2],[4,6]]"))
            seen.insert(id)
        }
        #expect(seen == Set(0..<1000))
        #expect(try process.remainingLines().isEmpty)
        #expect(try process.waitForExit() == 0)
    }

    @Test("stream sends stream.rows blocks in order, then the shape", arguments: EngineBinary.allCases)
    func stream(engine: EngineBinary) throws {
        let process = try EngineProcess(engine)
        let rows = 40_000
        let data = "[" + (0..<rows).map { "[\($0),1]" }.joined(separator: ",") + "]"
        process.sendInBackground(bytes: Array((request(5, "stream", #"{"data":\#(data),"operation":"multiply","parameters":{"factor":2}}"#) + "\n").utf8))
        var nextRow = 0
        var blocks = 0
        while true {
            let message = try process.readJSON()
            if message["method"]?.stringValue == "stream.rows" {
                #expect(message["id"] == nil)
                let params = try #require(message["params"])
                #expect(params["request"]?.intValue == 5)
                #expect(params["start"]?.intValue == nextRow)
                let block = try #require(params["rows"]?.arrayValue)
                for (offset, row) in block.enumerated() {
                    #expect(row == json("[\(2 * (nextRow + offset)),2]"))
                }
                nextRow += block.count
                blocks += 1
                continue
            }
            #expect(message["id"]?.intValue == 5)
            #expect(message["result"] == json(#"{"rows":40000,"cols":2}"#))
            break
        }
        #expect(nextRow == rows)
        #expect(blocks >= 2)
        // Errors come before any block.
        let bad = try process.call(request(6, "stream", #"{"data":[[1]],"operation":"nope"}"#))
        #expect(bad.errorCode == -32602 || bad.errorCode == -32601)
    }

    @Test("A closed stdout ends the engine cleanly (no SIGPIPE death)", arguments: EngineBinary.allCases)
    func closedOutput(engine: EngineBinary) throws {
        let process = try EngineProcess(engine)
        #expect(try process.call(request(1, "sum", #"{"data":[[1]]}"#))["result"] == json("1"))
        process.closeOutputReader()
        // Each reply now fails with EPIPE; the engine notices and stops without waiting for end of input.
        var status: Int32?
        for id in 2...200 {
            try? process.send(request(id, "sum", #"{"data":[[1]]}"#))
            usleep(20_000)
            if !process.isRunning { status = try process.waitForExit(); break }
        }
        if status == nil { process.closeInput(); status = try process.waitForExit() }
        #expect(status == 0)
    }
}
