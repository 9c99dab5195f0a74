import Foundation
import ForziumJSON
import ForziumTesting
import Testing

/// The binary matrix form as request text.
func binaryText(rows: Int, cols: Int, _ storage: [Double]) -> String {
    var bytes: [UInt8] = []
    storage.withUnsafeBufferPointer { BinaryMatrix.write(rows: rows, cols: cols, $0, into: &bytes) }
    return String(decoding: bytes, as: UTF8.self)
}

/// A matrix as JSON rows text (shortest round-tripping doubles).
func jsonText(rows: Int, cols: Int, _ storage: [Double]) -> String {
    var bytes: [UInt8] = []
    JSONWriter.writeMatrix(rows: rows, cols: cols, storage, into: &bytes)
    return String(decoding: bytes, as: UTF8.self)
}

/// The raw result bytes of a success line `{"jsonrpc":"2.0","id":<id>,"result":…}` (member order as the engines write it).
func rawResult(_ line: [UInt8], id: Int) -> ArraySlice<UInt8>? {
    let prefix = Array(#"{"jsonrpc":"2.0","id":\#(id),"result":"#.utf8)
    guard line.starts(with: prefix), line.last == UInt8(ascii: "}") else { return nil }
    return line[prefix.count..<(line.count - 1)]
}

/// The binary result of a success line, read with the gateway's fast path (`BinaryMatrix.scan`).
func binaryResult(_ line: [UInt8], id: Int) -> BinaryMatrix? {
    guard let raw = rawResult(line, id: id) else { return nil }
    return raw.withUnsafeBytes { BinaryMatrix.scan($0) }
}

/// Awkward doubles: signed zeros, NaN, infinities, subnormals, extremes, and values with no short decimal form.
let awkwardDoubles: [Double] = [
    0.0, -0.0, .nan, .infinity, -.infinity, .leastNonzeroMagnitude, -.leastNonzeroMagnitude,
    Double(bitPattern: 0x000F_FFFF_FFFF_FFFF), .leastNormalMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
    1.0 / 3.0, 0.1, -2.5e-300, 123_456_789.987_654_32, .pi, Double(bitPattern: 0x7FF8_0000_0000_0001),
]

@Suite("Binary matrices over real pipes", .timeLimit(.minutes(3)))
struct BinaryMatrixPipeTests {
    @Test("Binary in, binary out: bit-exact, NaN, ±Inf, -0.0 and subnormals included", arguments: EngineBinary.allCases)
    func roundTrip(engine: EngineBinary) throws {
        let process = try EngineProcess(engine)
        var generator = SplitMix64(seed: 7)
        var values = awkwardDoubles
        while values.count < 6 * 7 { values.append(Double(bitPattern: generator.next())) }
        let data = binaryText(rows: 6, cols: 7, values)

        // reshape moves the doubles without touching them: every bit comes back.
        try process.send(request(1, "reshape", #"{"data":\#(data),"rows":7,"cols":6,"$result":"binary"}"#))
        let reshaped = try #require(binaryResult(try process.readLineBytes(), id: 1))
        #expect(reshaped.rows == 7 && reshaped.cols == 6 && !reshaped.isScalar)
        #expect(reshaped.storage.map(\.bitPattern) == values.map(\.bitPattern))

        // Adding -0.0 keeps every value (NaNs stay NaN); transpose through compute with a binary `other` as well.
        let zeros = binaryText(rows: 6, cols: 7, Array(repeating: -0.0, count: 42))
        try process.send(request(2, "elementwise_add", #"{"data":\#(data),"other":\#(zeros),"$result":"binary"}"#))
        let added = try #require(binaryResult(try process.readLineBytes(), id: 2))
        for (x, y) in zip(added.storage, values) {
            #expect(x.bitPattern == y.bitPattern || (x.isNaN && y.isNaN))
        }
        try process.send(request(3, "compute", #"{"data":\#(data),"operation":"transpose","$result":"binary"}"#))
        let transposed = try #require(binaryResult(try process.readLineBytes(), id: 3))
        #expect(transposed.rows == 7 && transposed.cols == 6)
        #expect(transposed.storage[1 * 6 + 0].bitPattern == values[0 * 7 + 1].bitPattern)
        #expect(transposed.storage[0 * 6 + 1].bitPattern == values[1 * 7 + 0].bitPattern)

        // A scalar result is a binary matrix of shape [].
        try process.send(request(4, "sum", #"{"data":\#(binaryText(rows: 1, cols: 2, [1.5, 2])),"$result":"binary"}"#))
        let line = try process.readLineBytes()
        #expect(String(decoding: line, as: UTF8.self) == #"{"jsonrpc":"2.0","id":4,"result":{"dtype":"float64","shape":[],"base64":"AAAAAAAADEA="}}"#)
        #expect(binaryResult(line, id: 4) == BinaryMatrix(scalar: 3.5))
        try process.send(request(5, "max", #"{"data":\#(data),"$result":"binary"}"#))
        #expect(try #require(binaryResult(try process.readLineBytes(), id: 5)).storage.first?.isNaN == true)

        // "$result":"json" is the default spelled out.
        try process.send(request(6, "sum", #"{"data":[[1,2]],"$result":"json"}"#))
        #expect(try process.readLine() == #"{"jsonrpc":"2.0","id":6,"result":3.0}"#)
        process.closeInput()
        #expect(try process.remainingLines().isEmpty)
        #expect(try process.waitForExit() == 0)
    }

    @Test("Binary in, JSON out: the same bytes as the JSON-in answer", arguments: EngineBinary.allCases)
    func binaryInJSONOut(engine: EngineBinary) throws {
        let process = try EngineProcess(engine)
        var generator = SplitMix64(seed: 11)
        func random(_ count: Int) -> [Double] {
            (0..<count).map { _ in Double(Int64(bitPattern: generator.next()) % 2_000_000) / 1024 }
        }
        let a = random(9 * 13), b = random(13 * 5), k = random(3 * 4), same = random(9 * 13)
        var zeroed = same
        zeroed[3] = 0
        zeroed[4] = -0.0
        let cases: [(method: String, json: String, binary: String)] = [
            ("matmul", #"{"data":\#(jsonText(rows: 9, cols: 13, a)),"matrix_b":\#(jsonText(rows: 13, cols: 5, b))}"#,
             #"{"data":\#(binaryText(rows: 9, cols: 13, a)),"matrix_b":\#(binaryText(rows: 13, cols: 5, b))}"#),
            ("conv2d", #"{"data":\#(jsonText(rows: 9, cols: 13, a)),"kernel":\#(jsonText(rows: 3, cols: 4, k))}"#,
             #"{"data":\#(binaryText(rows: 9, cols: 13, a)),"kernel":\#(binaryText(rows: 3, cols: 4, k))}"#),
            ("elementwise_div", #"{"data":\#(jsonText(rows: 9, cols: 13, a)),"other":\#(jsonText(rows: 9, cols: 13, zeroed))}"#,
             #"{"data":\#(jsonText(rows: 9, cols: 13, a)),"other":\#(binaryText(rows: 9, cols: 13, zeroed))}"#),
            ("compute", #"{"data":\#(jsonText(rows: 9, cols: 13, a)),"operation":"matmul","parameters":{"matrix_b":\#(jsonText(rows: 13, cols: 5, b))}}"#,
             #"{"data":\#(binaryText(rows: 9, cols: 13, a)),"operation":"matmul","parameters":{"matrix_b":\#(binaryText(rows: 13, cols: 5, b))}}"#),
            ("normalize", #"{"data":\#(jsonText(rows: 9, cols: 13, a)),"mode":"l2"}"#, #"{"data":\#(binaryText(rows: 9, cols: 13, a)),"mode":"l2"}"#),
            ("mean", #"{"data":\#(jsonText(rows: 9, cols: 13, a)),"axis":1}"#, #"{"data":\#(binaryText(rows: 9, cols: 13, a)),"axis":1}"#),
            ("sum", #"{"data":\#(jsonText(rows: 9, cols: 13, a))}"#, #"{"data":\#(binaryText(rows: 9, cols: 13, a))}"#),
        ]
        for (index, item) in cases.enumerated() {
            try process.send(request(index, item.method, item.json))
            let fromJSON = try process.readLineBytes()
            try process.send(request(index, item.method, item.binary))
            let fromBinary = try process.readLineBytes()
            #expect(rawResult(fromJSON, id: index) != nil, "\(item.method): \(String(decoding: fromJSON, as: UTF8.self))")
            #expect(fromJSON == fromBinary, "\(item.method): binary input answered differently")
        }

        // stream: the same notifications and summary for binary data; with "$result":"binary" the blocks are binary.
        let rows = 300, cols = 300
        let big = random(rows * cols)
        var streamed: [[String]] = []
        for (id, data) in [(100, jsonText(rows: rows, cols: cols, big)), (101, binaryText(rows: rows, cols: cols, big))] {
            try process.send(request(id, "stream", #"{"data":\#(data),"operation":"multiply","parameters":{"factor":2}}"#))
            var lines: [String] = []
            while true {
                let line = try process.readLine()
                lines.append(line.replacingOccurrences(of: #""request":\#(id)"#, with: #""request":N"#)
                    .replacingOccurrences(of: #""id":\#(id)"#, with: #""id":N"#))
                if !line.contains("stream.rows") { break }
            }
            streamed.append(lines)
        }
        #expect(streamed[0].count > 2)
        #expect(streamed[0] == streamed[1])
        try process.send(request(102, "stream", #"{"data":\#(binaryText(rows: rows, cols: cols, big)),"operation":"multiply","parameters":{"factor":2},"$result":"binary"}"#))
        var doubled: [Double] = []
        while true {
            let value = try process.readJSON()
            guard value["method"] != nil else {
                #expect(value["result"] == json(#"{"rows":300,"cols":300}"#))
                break
            }
            let block = try BinaryMatrix(try #require(value["params"]?["rows"]), at: "/params/rows")
            #expect(value["params"]?["start"]?.intValue == doubled.count / cols)
            doubled += block.storage
        }
        #expect(doubled == big.map { $0 * 2 })
        process.closeInput()
        #expect(try process.waitForExit() == 0)
    }

    @Test("Malformed binary matrices and reserved members: -32602 at the right pointer", arguments: EngineBinary.allCases)
    func malformed(engine: EngineBinary) throws {
        let process = try EngineProcess(engine)
        let good = binaryText(rows: 2, cols: 2, [1, 2, 3, 4])
        let cases: [(method: String, params: String, pointer: String)] = [
            ("transpose", #"{"data":{"dtype":"float64","shape":[1,1],"base64":"AAAAAAAA8D#="}}"#, "/data/base64"),
            ("transpose", #"{"data":{"dtype":"float64","shape":[1,2],"base64":"AAAAAAAA8D8="}}"#, "/data/base64"),
            ("transpose", #"{"data":{"dtype":"float64","shape":[1,1],"base64":"AAAAAAAA8D8"}}"#, "/data/base64"),
            ("transpose", #"{"data":{"dtype":"float32","shape":[1,1],"base64":"AAAAAAAA8D8="}}"#, "/data/dtype"),
            ("transpose", #"{"data":{"shape":[1,1],"base64":"AAAAAAAA8D8="}}"#, "/data/dtype"),
            ("transpose", #"{"data":{"dtype":"float64","shape":[0,1],"base64":""}}"#, "/data/shape/0"),
            ("transpose", #"{"data":{"dtype":"float64","shape":[1.5,1],"base64":"AAAAAAAA8D8="}}"#, "/data/shape/0"),
            ("transpose", #"{"data":{"dtype":"float64","shape":[1],"base64":"AAAAAAAA8D8="}}"#, "/data/shape"),
            ("transpose", #"{"data":{"dtype":"float64","shape":"1x1","base64":"AAAAAAAA8D8="}}"#, "/data/shape"),
            ("transpose", #"{"data":{"dtype":"float64","shape":[],"base64":"AAAAAAAA8D8="}}"#, "/data/shape"),
            ("transpose", #"{"data":{"dtype":"float64","shape":[1,1],"base64":"AAAAAAAA8D8=","order":"C"}}"#, "/data/order"),
            ("transpose", #"{"data":{"dtype":"float64","shape":[1,1],"base64":7}}"#, "/data/base64"),
            ("matmul", #"{"data":\#(good),"matrix_b":{"dtype":"float64","shape":[2,1],"base64":"!!!!!!!!!!!!!!!!!!!!!!=="}}"#, "/matrix_b/base64"),
            ("compute", #"{"data":\#(good),"operation":"matmul","parameters":{"matrix_b":{"dtype":"float64","shape":[2,2]}}}"#, "/parameters/matrix_b/base64"),
            ("transpose", #"{"data":\#(good),"$result":"xml"}"#, "/$result"),
            ("transpose", #"{"data":\#(good),"$result":true}"#, "/$result"),
            ("transpose", #"{"data":\#(good),"$format":"binary"}"#, "/$format"),
            ("stream", #"{"data":\#(good),"operation":"transpose","$result":"BINARY"}"#, "/$result"),
            ("compute", #"{"data":\#(good),"operation":"transpose","parameters":{"$result":"binary"}}"#, "/parameters/$result"),
        ]
        for (index, item) in cases.enumerated() {
            let reply = try process.call(request(index, item.method, item.params))
            #expect(reply.errorCode == -32602, "\(item.params) → \(JSONWriter.string(reply))")
            let pointers = reply["error"]?["data"]?["errors"]?.arrayValue?.compactMap { $0["pointer"]?.stringValue } ?? []
            #expect(pointers.first == item.pointer, "\(item.params) → \(JSONWriter.string(reply))")
        }
    }

    @Test("Binary matrices meet the same limits and shape checks, with the same messages", arguments: EngineBinary.allCases)
    func limitsAndShapes(engine: EngineBinary) throws {
        let process = try EngineProcess(engine, arguments: ["--max-elements", "10"])
        let four = [1.0, 2, 3, 4]
        let pairs: [(method: String, json: String, binary: String)] = [
            ("transpose", #"{"data":\#(jsonText(rows: 3, cols: 4, Array(repeating: 1, count: 12)))}"#,
             #"{"data":\#(binaryText(rows: 3, cols: 4, Array(repeating: 1, count: 12)))}"#),
            ("matmul", #"{"data":\#(jsonText(rows: 1, cols: 4, four)),"matrix_b":\#(jsonText(rows: 2, cols: 2, four))}"#,
             #"{"data":\#(binaryText(rows: 1, cols: 4, four)),"matrix_b":\#(binaryText(rows: 2, cols: 2, four))}"#),
            ("elementwise_mul", #"{"data":\#(jsonText(rows: 1, cols: 4, four)),"other":\#(jsonText(rows: 4, cols: 1, four))}"#,
             #"{"data":\#(binaryText(rows: 1, cols: 4, four)),"other":\#(binaryText(rows: 4, cols: 1, four))}"#),
            ("matmul", #"{"data":\#(jsonText(rows: 4, cols: 1, four)),"matrix_b":\#(jsonText(rows: 1, cols: 4, four))}"#,
             #"{"data":\#(binaryText(rows: 4, cols: 1, four)),"matrix_b":\#(binaryText(rows: 1, cols: 4, four))}"#),
        ]
        for (index, item) in pairs.enumerated() {
            let fromJSON = try process.call(request(index, item.method, item.json))
            let fromBinary = try process.call(request(index, item.method, item.binary))
            #expect(fromJSON.errorCode != nil)
            #expect(fromBinary == fromJSON, "\(item.method): \(JSONWriter.string(fromBinary)) vs \(JSONWriter.string(fromJSON))")
        }
    }
}

@Suite("Cancellation, ping and strict ids over real pipes", .timeLimit(.minutes(3)))
struct CancelAndPingTests {
    /// A conv2d of about 63 G multiply-adds (seconds even for the SIMD engine), with small inputs (13 MB of base64).
    static func longConv2d(id: Int) -> String {
        var generator = SplitMix64(seed: 3)
        let data = (0..<(1000 * 1000)).map { _ in Double(generator.next() % 1000) / 8 }
        let kernel = (0..<(500 * 500)).map { _ in Double(generator.next() % 1000) / 8 }
        let params = #"{"data":\#(binaryText(rows: 1000, cols: 1000, data)),"kernel":\#(binaryText(rows: 500, cols: 500, kernel)),"$result":"binary"}"#
        return request(id, "conv2d", params)
    }

    @Test("While a long request computes: ping answers at once, an unknown cancel is ignored, a cancel ends it with -32800, the next request is served", arguments: EngineBinary.allCases)
    func cancelLongRequest(engine: EngineBinary) throws {
        let process = try EngineProcess(engine)
        let started = Date()
        try process.send(Self.longConv2d(id: 1))
        // The first ping is answered once the long line has been read (it says the request is in flight) …
        let first = try process.call(#"{"jsonrpc":"2.0","id":"p1","method":"ping"}"#, timeout: 30)
        #expect(first["result"] == json(#"{"in_flight":1}"#), "\(JSONWriter.string(first))")
        // … and the next one while it computes, within half a second.
        Thread.sleep(forTimeInterval: 0.2)
        let pingSent = Date()
        let second = try process.call(#"{"jsonrpc":"2.0","id":"p2","method":"ping","params":{}}"#, timeout: 30)
        let pingLatency = Date().timeIntervalSince(pingSent)
        #expect(second["id"] == .string("p2"))
        #expect(second["result"] == json(#"{"in_flight":1}"#), "\(JSONWriter.string(second))")
        #expect(pingLatency < 0.5, "ping took \(pingLatency) s")

        try process.send(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":999}}"#)
        try process.send(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"1"}}"#)
        try process.send(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}"#)
        let cancelSent = Date()
        let cancelled = try process.readLine(timeout: 60)
        let cancelLatency = Date().timeIntervalSince(cancelSent)
        #expect(cancelled == #"{"jsonrpc":"2.0","id":1,"error":{"code":-32800,"message":"Request cancelled"}}"#)
        // One row block is tens of milliseconds optimised; the debug build's scalar kernels are slower.
        #expect(cancelLatency < 2, "the cancel took \(cancelLatency) s to end the request")
        #expect(Date().timeIntervalSince(started) < 20)

        let next = try process.call(request(2, "matmul", #"{"data":[[1,2],[3,4]],"matrix_b":[[5,6],[7,8]]}"#))
        #expect(next["result"] == json("[[19,22],[43,50]]"))
        let idle = try process.call(#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#)
        #expect(idle["result"] == json(#"{"in_flight":0}"#))
        // A cancel for a finished request is ignored too: nothing more is written.
        try process.send(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}"#)
        process.closeInput()
        #expect(try process.remainingLines().isEmpty)
        #expect(try process.waitForExit() == 0)
    }

    @Test("A request queued behind a long one can be cancelled before it starts", arguments: EngineBinary.allCases)
    func cancelQueued(engine: EngineBinary) throws {
        // The fallback engine computes one request at a time, so the second waits in its queue.
        let process = try EngineProcess(engine, arguments: ["--max-in-flight", "2"])
        try process.send(Self.longConv2d(id: 1))
        try process.send(Self.longConv2d(id: 2))
        _ = try process.call(#"{"jsonrpc":"2.0","id":"p","method":"ping"}"#, timeout: 30)
        try process.send(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":2}}"#)
        try process.send(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}"#)
        var ids = Set<Int>()
        for _ in 0..<2 {
            let reply = try process.readJSON(timeout: 60)
            #expect(reply.errorCode == -32800, "\(JSONWriter.string(reply))")
            ids.insert(reply["id"]?.intValue ?? -1)
        }
        #expect(ids == [1, 2])
        process.closeInput()
        #expect(try process.waitForExit() == 0)
    }

    @Test("An id written NaN or ±Infinity makes the request invalid: -32600 with id null", arguments: EngineBinary.allCases)
    func nonFiniteIDs(engine: EngineBinary) throws {
        let process = try EngineProcess(engine)
        for id in ["NaN", "Infinity", "-Infinity"] {
            try process.send(#"{"jsonrpc":"2.0","id":\#(id),"method":"sum","params":{"data":[[1]]}}"#)
            #expect(try process.readLine() == #"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: \"id\" must be a string, a finite number or null"}}"#)
        }
        // 1e400 is a JSON number (it overflows, but its token is echoed as sent).
        try process.send(#"{"jsonrpc":"2.0","id":1e400,"method":"sum","params":{"data":[[1]]}}"#)
        #expect(try process.readLine() == #"{"jsonrpc":"2.0","id":1e400,"result":1.0}"#)
    }
}

@Suite("Shared-memory matrices over real pipes", .timeLimit(.minutes(3)))
struct SharedMemoryPipeTests {
    @Test("shm in, shm out: the engine maps the caller's segment and answers in a segment of its own", arguments: EngineBinary.allCases)
    func sharedRoundTrip(engine: EngineBinary) throws {
        let process = try EngineProcess(engine)
        let n = 128 // 16,384 elements: at the shared-memory threshold
        var generator = SplitMix64(seed: 11)
        var values = awkwardDoubles
        while values.count < n * n { values.append(Double(bitPattern: generator.next())) }
        var data: [UInt8] = []
        let input = try #require(values.withUnsafeBufferPointer { BinaryMatrix.writeShared(rows: n, cols: n, $0, into: &data) })
        defer { SharedMatrixSegment.unlink(input) }
        try process.send(request(1, "transpose", #"{"data":\#(String(decoding: data, as: UTF8.self)),"$result":"shm"}"#))
        let line = try process.readLineBytes()
        let raw = try #require(rawResult(line, id: 1))
        guard case .shared(let rows, let cols, let name)? = raw.withUnsafeBytes({ BinaryMatrix.scanForm($0) }) else {
            Issue.record("no shared-memory result: \(String(decoding: line.prefix(200), as: UTF8.self))"); return
        }
        #expect(name.hasPrefix("/forzium-") && name != input)
        let result = try SharedMatrixSegment.read(name, count: rows * cols)
        SharedMatrixSegment.unlink(name)
        #expect(rows == n && cols == n)
        for i in 0..<n { for j in 0..<n { #expect(result[j * n + i].bitPattern == values[i * n + j].bitPattern) } }
        // The input segment is the caller's: still there.
        _ = try SharedMatrixSegment.read(input, count: n * n)
    }

    @Test("$result {shm: name}: the result goes into the caller's segment, resized to fit; a bad name is -32602", arguments: EngineBinary.allCases)
    func resultIntoCallersSegment(engine: EngineBinary) throws {
        let process = try EngineProcess(engine)
        let pool = SharedSegmentPool(retainedBytes: 1 << 24)
        let (rows, cols) = (96, 200)
        var generator = SplitMix64(seed: 5)
        let values = (0..<(rows * cols)).map { _ in Double(bitPattern: generator.next()) }
        var data: [UInt8] = []
        let input = try #require(values.withUnsafeBufferPointer { BinaryMatrix.writeShared(rows: rows, cols: cols, $0, into: &data) })
        defer { SharedMatrixSegment.unlink(input) }
        // The target starts smaller than the result: the engine resizes it.
        let target = try #require(pool.acquire(byteCount: 8))
        defer { pool.discard(target) }
        try process.send(request(1, "transpose", #"{"data":\#(String(decoding: data, as: UTF8.self)),"$result":{"shm":"\#(target.name)"}}"#))
        let line = try process.readLineBytes()
        let raw = try #require(rawResult(line, id: 1))
        guard case .shared(let resultRows, let resultCols, let name)? = raw.withUnsafeBytes({ BinaryMatrix.scanForm($0) }) else {
            Issue.record("no shared-memory result: \(String(decoding: line.prefix(200), as: UTF8.self))"); return
        }
        #expect(name == target.name && resultRows == cols && resultCols == rows)
        #expect(target.currentByteCount() == rows * cols * 8)
        var result = [Double](repeating: 0, count: rows * cols)
        pool.release(target)
        let again = try #require(pool.acquire(byteCount: rows * cols * 8))
        #expect(again === target)
        #expect(result.withUnsafeMutableBytes { again.read(into: $0, at: 0) })
        for i in 0..<rows { for j in 0..<cols { #expect(result[j * rows + i].bitPattern == values[i * cols + j].bitPattern) } }

        // A target that is not a Forzium name is refused before anything runs; one that is gone gets a new segment.
        try process.send(request(2, "transpose", #"{"data":[[1]],"$result":{"shm":"/etc-passwd"}}"#))
        let refused = try process.readLine()
        #expect(refused.contains("-32602") && refused.contains(#""pointer":"/$result/shm""#), "\(refused)")
        try process.send(request(3, "transpose", #"{"data":\#(String(decoding: data, as: UTF8.self)),"$result":{"shm":"/forzium-1-999999999"}}"#))
        let fresh = try process.readLineBytes()
        let freshRaw = try #require(rawResult(fresh, id: 3))
        guard case .shared(_, _, let own)? = freshRaw.withUnsafeBytes({ BinaryMatrix.scanForm($0) }) else {
            Issue.record("no shared-memory result: \(String(decoding: fresh.prefix(200), as: UTF8.self))"); return
        }
        #expect(own != "/forzium-1-999999999")
        SharedMatrixSegment.unlink(own)
    }

    @Test("matmul over segments (computed in the mapped segments) gives the bits of the ordinary path; one that does not fit falls back to it", arguments: EngineBinary.allCases)
    func matmulOverSegments(engine: EngineBinary) throws {
        let process = try EngineProcess(engine)
        let pool = SharedSegmentPool(retainedBytes: 1 << 24)
        defer { pool.removeAll() }
        let (m, k, n) = (150, 120, 140) // every matrix at or above the shared-memory threshold
        var generator = SplitMix64(seed: 9)
        var a = (0..<(m * k)).map { _ in Double.random(in: -4..<4, using: &generator) }
        let b = (0..<(k * n)).map { _ in Double.random(in: -4..<4, using: &generator) }
        a[3] = .nan
        a[k * 7] = 1e308; a[k * 7 + 1] = 1e308 // an overflow to rescue
        var left: [UInt8] = [], right: [UInt8] = [], leftText: [UInt8] = [], rightText: [UInt8] = []
        let aName = try #require(a.withUnsafeBufferPointer { BinaryMatrix.writeShared(rows: m, cols: k, $0, into: &left) })
        let bName = try #require(b.withUnsafeBufferPointer { BinaryMatrix.writeShared(rows: k, cols: n, $0, into: &right) })
        defer { SharedMatrixSegment.unlink(aName); SharedMatrixSegment.unlink(bName) }
        a.withUnsafeBufferPointer { BinaryMatrix.write(rows: m, cols: k, $0, into: &leftText) }
        b.withUnsafeBufferPointer { BinaryMatrix.write(rows: k, cols: n, $0, into: &rightText) }
        let shared = "\"data\":\(String(decoding: left, as: UTF8.self)),\"matrix_b\":\(String(decoding: right, as: UTF8.self))"
        let inline = "\"data\":\(String(decoding: leftText, as: UTF8.self)),\"matrix_b\":\(String(decoding: rightText, as: UTF8.self))"

        // The ordinary path: base64 in, base64 out.
        try process.send(request(1, "matmul", "{\(inline),\"$result\":\"binary\"}"))
        let reference = try BinaryMatrix(JSONParser().parse(try #require(rawResult(try process.readLineBytes(), id: 1))), at: "")
        #expect(reference.rows == m && reference.cols == n)

        // Segments in, the caller's segment out.
        let target = try #require(pool.acquire(byteCount: 8))
        try process.send(request(2, "matmul", "{\(shared),\"$result\":{\"shm\":\"\(target.name)\"}}"))
        let raw = try #require(rawResult(try process.readLineBytes(), id: 2))
        guard case .shared(m, n, target.name)? = raw.withUnsafeBytes({ BinaryMatrix.scanForm($0) }) else {
            Issue.record("not an answer in the caller's segment: \(String(decoding: raw, as: UTF8.self))"); return
        }
        #expect(try SharedMatrixSegment.read(target.name, count: m * n).map(\.bitPattern) == reference.storage.map(\.bitPattern))
        pool.release(target)

        // Segments in, a new segment out.
        try process.send(request(3, "matmul", "{\(shared),\"$result\":\"shm\"}"))
        let own = try #require(rawResult(try process.readLineBytes(), id: 3))
        guard case .shared(m, n, let name)? = own.withUnsafeBytes({ BinaryMatrix.scanForm($0) }) else {
            Issue.record("no segment: \(String(decoding: own, as: UTF8.self))"); return
        }
        #expect(try SharedMatrixSegment.read(name, count: m * n).map(\.bitPattern) == reference.storage.map(\.bitPattern))
        SharedMatrixSegment.unlink(name)

        // Shapes that disagree, or a segment of the wrong size: the ordinary path's errors, unchanged.
        try process.send(request(4, "matmul", "{\"data\":\(String(decoding: right, as: UTF8.self)),\"matrix_b\":\(String(decoding: right, as: UTF8.self)),\"$result\":\"shm\"}"))
        let mismatch = try process.readLine()
        #expect(mismatch.contains("-32602") && mismatch.contains("matrix_b"), "\(mismatch)")
        let wrong = String(decoding: left, as: UTF8.self).replacingOccurrences(of: "[\(m),\(k)]", with: "[\(m + 1),\(k)]")
        try process.send(request(5, "matmul", "{\"data\":\(wrong),\"matrix_b\":\(String(decoding: right, as: UTF8.self)),\"$result\":\"shm\"}"))
        let wrongSize = try process.readLine()
        #expect(wrongSize.contains("-32602") && wrongSize.contains("does not hold \((m + 1) * k) doubles"), "\(wrongSize)")
    }

    @Test("a segment that is missing or the wrong size is -32602 at its pointer", arguments: EngineBinary.allCases)
    func badSegments(engine: EngineBinary) throws {
        let process = try EngineProcess(engine)
        try process.send(request(1, "sum", #"{"data":{"dtype":"float64","shape":[2,2],"shm":"/forzium-1-999999999"}}"#))
        let missing = try process.readLine()
        #expect(missing.contains("-32602") && missing.contains(#""pointer":"/data/shm""#), "\(missing)")
        var bytes: [UInt8] = []
        let values = Array(repeating: 1.0, count: 20_000)
        let name = try #require(values.withUnsafeBufferPointer { BinaryMatrix.writeShared(rows: 100, cols: 200, $0, into: &bytes) })
        defer { SharedMatrixSegment.unlink(name) }
        try process.send(request(2, "sum", #"{"data":{"dtype":"float64","shape":[10,10],"shm":"\#(name)"}}"#))
        let wrongSize = try process.readLine()
        #expect(wrongSize.contains("-32602") && wrongSize.contains("does not hold 100 doubles"), "\(wrongSize)")
        try process.send(request(3, "sum", #"{"data":{"dtype":"float64","shape":[1,1],"shm":"/etc-passwd"}}"#))
        #expect(try process.readLine().contains("not a Forzium shared-memory name"))
    }
}
