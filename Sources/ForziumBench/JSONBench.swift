import ForziumTesting
import ArgumentParser
import CJansson
import ForziumJSON
import ForziumJansson
import ForziumKernelsSIMD

#if canImport(Glibc)
import Glibc
#endif

/// Reads a whole file into bytes.
func readFile(_ path: String) throws -> [UInt8] {
    guard let file = fopen(path, "rb") else { throw ValidationError("cannot open \(path)") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
        if n == 0 { break }
        bytes.append(contentsOf: chunk[0 ..< n])
    }
    return bytes
}

/// Parse and write MB/s of one JSON document (a matrix), for ForziumJSON and jansson.
struct JSONFileBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "json", abstract: "Parse/write MB/s of a JSON file: ForziumJSON, jansson DOM, jansson→JSONValue.")

    @Option(help: "JSON document to parse (e.g. a matrix written by bench/run.py).")
    var file: String

    @Option(help: "Label printed with the figures.")
    var label: String = "doc"

    @Option(help: "Minimum seconds of timing per figure.")
    var minTime: Double = 1.0

    func run() throws {
        let bytes = try readFile(file)
        let megabytes = Double(bytes.count) / 1e6
        let parser = JSONParser()
        var value = JSONValue.null
        let parse = medianSeconds(minTime: minTime) {
            value = bytes.withUnsafeBytes { try! parser.parse($0) }
        }
        emit("parse", "forzium", megabytes / parse)
        var twoThreads = JSONParser.Options()
        twoThreads.threads = 2
        let parallelParser = JSONParser(options: twoThreads)
        let parallel = medianSeconds(minTime: minTime) {
            value = bytes.withUnsafeBytes { try! parallelParser.parse($0) }
        }
        emit("parse", "forzium-2-threads", megabytes / parallel)
        let jansson = medianSeconds(minTime: minTime) {
            bytes.withUnsafeBytes { raw in
                var error = json_error_t()
                let root = json_loadb(raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count, 0, &error)
                precondition(root != nil, "jansson rejected the document")
                json_decref(root)
            }
        }
        emit("parse", "jansson-dom", megabytes / jansson)
        let janssonValue = medianSeconds(minTime: minTime) {
            bytes.withUnsafeBytes { raw in
                if case .value = JanssonHybridDecoder.janssonDecode(raw) {} else { preconditionFailure("jansson failed") }
            }
        }
        emit("parse", "jansson-to-jsonvalue", megabytes / janssonValue)

        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 1024)
        let write = medianSeconds(minTime: minTime) {
            out.removeAll(keepingCapacity: true)
            JSONWriter.write(value, into: &out)
        }
        emit("write", "forzium", Double(out.count) / 1e6 / write)
        // The matrix fast path (straight from row-major storage), on one thread and on all cores.
        if case .array(let rows) = value, case .numbers(let first)? = rows.first {
            var storage: [Double] = []
            storage.reserveCapacity(rows.count * first.count)
            for row in rows { if case .numbers(let r) = row { storage.append(contentsOf: r) } }
            if storage.count == rows.count * first.count {
                let matrixWrite = medianSeconds(minTime: minTime) {
                    out.removeAll(keepingCapacity: true)
                    JSONWriter.writeMatrix(rows: rows.count, cols: first.count, storage, into: &out)
                }
                emit("write", "forzium-matrix", Double(out.count) / 1e6 / matrixWrite)
                let threads = SIMDKernels.availableCores
                let parallelWrite = medianSeconds(minTime: minTime) {
                    out.removeAll(keepingCapacity: true)
                    JSONWriter.writeMatrix(rows: rows.count, cols: first.count, storage, threads: threads, into: &out)
                }
                emit("write", "forzium-matrix-\(threads)threads", Double(out.count) / 1e6 / parallelWrite)
            }
        }
        let janssonWrite = bytes.withUnsafeBytes { raw -> Double in
            var error = json_error_t()
            let root = json_loadb(raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count, 0, &error)!
            defer { json_decref(root) }
            var size = 0
            let seconds = medianSeconds(minTime: minTime) {
                let text = json_dumps(root, Int(JSON_COMPACT))!
                size = strlen(text)
                free(text)
            }
            return Double(size) / 1e6 / seconds
        }
        emit("write", "jansson", janssonWrite)
    }

    func emit(_ what: String, _ impl: String, _ mbps: Double) {
        print(#"{"bench":"json","op":"\#(what)","impl":"\#(impl)","doc":"\#(label)","mbps":\#(mbps)}"#)
    }
}

/// jansson vs JSONParser on request lines of growing size: where jansson stops paying off.
struct DecoderSweepBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "json-decoders", abstract: "Per-line decode time, jansson vs ForziumJSON, by line size.")

    @Option(help: "Minimum seconds of timing per figure.")
    var minTime: Double = 0.3

    func run() throws {
        let parser = JSONParser()
        var rng = SplitMix64(seed: 7)
        var lines: [(String, [UInt8])] = [
            ("engine.info", Array(#"{"jsonrpc":"2.0","id":1,"method":"engine.info"}"#.utf8)),
            ("multiply 2x2", Array(#"{"jsonrpc":"2.0","id":"req-17","method":"multiply","params":{"data":[[1,2],[3,4]],"factor":2.5}}"#.utf8)),
        ]
        for n in [4, 8, 16, 32, 64, 128] {
            var text = #"{"jsonrpc":"2.0","id":42,"method":"matmul","params":{"data":"#
            for (index, _) in ["data", "matrix_b"].enumerated() {
                if index == 1 { text += #","matrix_b":"# }
                text += "["
                for i in 0 ..< n {
                    if i > 0 { text += "," }
                    text += "[" + (0 ..< n).map { _ in String(Double.random(in: -1 ..< 1, using: &rng)) }.joined(separator: ",") + "]"
                }
                text += "]"
            }
            text += "}}"
            lines.append(("matmul \(n)x\(n)", Array(text.utf8)))
        }
        for (name, line) in lines {
            let fast = medianSeconds(minTime: minTime) { line.withUnsafeBytes { _ = try! parser.parse($0) } }
            let jansson = medianSeconds(minTime: minTime) {
                line.withUnsafeBytes { raw in
                    if case .value = JanssonHybridDecoder.janssonDecode(raw) {} else { preconditionFailure() }
                }
            }
            print(#"{"bench":"json-decoders","line":"\#(name)","bytes":\#(line.count),"forzium_us":\#(fast * 1e6),"jansson_us":\#(jansson * 1e6),"jansson_over_forzium":\#(jansson / fast)}"#)
        }
    }
}

/// The one-thread matrix writer alone on a fixed document, a given number of times: for instruction counts
/// (`valgrind --tool=callgrind`) and profiles, where the other figures of `json` would only add noise.
struct MatrixWriteBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "json-write", abstract: "MB/s of JSONWriter.writeMatrix (one thread) on a matrix document, N runs.")

    @Option(help: "JSON matrix document (rows of numbers).")
    var file: String

    @Option(help: "Timed runs (the median is printed).")
    var runs: Int = 20

    func run() throws {
        let bytes = try readFile(file)
        let value = try bytes.withUnsafeBytes { try JSONParser().parse($0) }
        guard case .array(let rows) = value, case .numbers(let first)? = rows.first else {
            throw ValidationError("not a matrix document")
        }
        var storage: [Double] = []
        storage.reserveCapacity(rows.count * first.count)
        for row in rows { if case .numbers(let r) = row { storage.append(contentsOf: r) } }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 1024)
        var samples: [Double] = []
        for _ in 0 ..< max(1, runs) {
            out.removeAll(keepingCapacity: true)
            let t0 = now()
            JSONWriter.writeMatrix(rows: rows.count, cols: first.count, storage, into: &out)
            samples.append(now() - t0)
        }
        samples.sort()
        print(#"{"bench":"json-write","bytes":\#(out.count),"mbps":\#(Double(out.count) / 1e6 / samples[samples.count / 2]),"best_mbps":\#(Double(out.count) / 1e6 / samples[0])}"#)
    }
}
