#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ForziumJSON

/// Directory holding the built executables (the test runner's own directory, else `.build/debug`).
let buildDirectory: String = {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    if n > 0 {
        let exe = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var dir = (exe as NSString).deletingLastPathComponent
        while !dir.isEmpty, dir != "/" {
            if FileManager.default.isExecutableFile(atPath: dir + "/forzium-gateway") { return dir }
            dir = (dir as NSString).deletingLastPathComponent
        }
    }
    return repositoryRoot.appendingPathComponent(".build/debug").path
}()

/// The two engine executables, for tests that run against each.
let engineBinaries = ["forzium-engine", "forzium-engine-simd"]

/// A real `forzium-gateway` process on a free 127.0.0.1 port (`--port 0`; the port is read from its log).
final class GatewayProcess: @unchecked Sendable {
    let process = Process()
    private(set) var port = 0
    private let logLock = NSLock()
    private var logText = ""

    var log: String { logLock.lock(); defer { logLock.unlock() }; return logText }
    var client: TestHTTPClient { TestHTTPClient(port: port) }

    /// `executable`: another copy of the gateway (default: the one in `buildDirectory`).
    init(engine: String?, arguments: [String] = [], environment: [String: String] = [:], startTimeout: TimeInterval = 60,
         executable: String? = nil) throws {
        process.executableURL = URL(fileURLWithPath: executable ?? buildDirectory + "/forzium-gateway")
        var args = ["--port", "0", "--log-level", "info"]
        if let engine { args += ["--engine", engine.hasPrefix("/") ? engine : buildDirectory + "/" + engine] }
        process.arguments = args + arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "FORZIUM_ENGINE")
        env.removeValue(forKey: "FORZIUM_API_KEYS")
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let errPipe = Pipe()
        process.standardError = errPipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let handle = errPipe.fileHandleForReading
        let thread = Thread { [weak self] in
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                guard let self else { break }
                self.logLock.lock()
                self.logText += String(decoding: data, as: UTF8.self)
                self.logLock.unlock()
            }
        }
        thread.start()
        let deadline = Date().addingTimeInterval(startTimeout)
        while Date() < deadline {
            let text = log
            if let range = text.range(of: #"listening on 127\.0\.0\.1:[0-9]+"#, options: .regularExpression) {
                port = Int(text[range].split(separator: ":").last!)!
                return
            }
            if !process.isRunning { break }
            usleep(20_000)
        }
        stop()
        throw HTTPClientError(description: "gateway did not start; log:\n\(log)")
    }

    /// SIGTERM, then wait (bounded) for a graceful exit; SIGKILL if it does not come. Returns the exit status.
    @discardableResult
    func stop(timeout: TimeInterval = 20) -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    deinit { stop(timeout: 5) }

    /// `/ready` parsed.
    func ready() throws -> (status: Int, body: JSONObject) {
        let reply = try client.request("GET", "/ready")
        guard case .object(let o) = try JSONParser().parse(reply.body) else { throw HTTPClientError(description: "ready not an object") }
        return (reply.status, o)
    }

    /// Engine slot 0 as `/ready` reports it.
    func slot0() throws -> (pid: Int32?, inFlight: Int, state: String, restarts: Int, queued: Int) {
        let (_, o) = try ready()
        guard case .array(let engines)? = o["engines"], case .object(let slot)? = engines.first else {
            throw HTTPClientError(description: "no engines in /ready")
        }
        var pid: Int32?
        if case .number(let n)? = slot["pid"] { pid = Int32(n.value) }
        var inFlight = 0, restarts = 0, queued = 0, state = ""
        if case .number(let n)? = slot["in_flight"] { inFlight = Int(n.value) }
        if case .number(let n)? = slot["restarts"] { restarts = Int(n.value) }
        if case .string(let s)? = slot["state"] { state = s }
        if case .number(let n)? = o["queued"] { queued = Int(n.value) }
        return (pid, inFlight, state, restarts, queued)
    }

    /// Every engine slot as `/ready` reports it.
    func slots() throws -> [(pid: Int32?, inFlight: Int, state: String, restarts: Int)] {
        let (_, o) = try ready()
        guard case .array(let engines)? = o["engines"] else { throw HTTPClientError(description: "no engines in /ready") }
        return engines.map { value in
            guard case .object(let slot) = value else { return (nil, 0, "", 0) }
            var pid: Int32?
            if case .number(let n)? = slot["pid"] { pid = Int32(n.value) }
            var inFlight = 0, restarts = 0, state = ""
            if case .number(let n)? = slot["in_flight"] { inFlight = Int(n.value) }
            if case .number(let n)? = slot["restarts"] { restarts = Int(n.value) }
            if case .string(let s)? = slot["state"] { state = s }
            return (pid, inFlight, state, restarts)
        }
    }

    /// Polls `condition` every 20 ms for up to `timeout` seconds.
    /// The pid of slot 0's engine once it is ready and is none of `excluding` (a restarted one); nil after `timeout`.
    func readyEngine(excluding: [Int32], timeout: TimeInterval = 30) throws -> Int32? {
        var pid: Int32?
        _ = try waitUntil(timeout: timeout) {
            let slot = try slot0()
            guard slot.state == "ready", let p = slot.pid, !excluding.contains(p) else { return false }
            pid = p
            return true
        }
        return pid
    }

    func waitUntil(timeout: TimeInterval = 30, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return true }
            usleep(20_000)
        }
        return false
    }
}

/// JSON text of a rows×cols matrix with deterministic non-trivial values.
func matrixJSON(rows: Int, cols: Int, seed: Int = 1) -> String {
    var out = "["
    out.reserveCapacity(rows * cols * 6)
    for i in 0..<rows {
        if i > 0 { out += "," }
        out += "["
        for j in 0..<cols {
            if j > 0 { out += "," }
            out += String(Double((i * 31 + j * 17 + seed) % 97) / 8.0 - 6.0)
        }
        out += "]"
    }
    return out + "]"
}

func json(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Parses a reply body as an object.
func object(_ reply: HTTPReply) throws -> JSONObject {
    guard case .object(let o) = try JSONParser().parse(reply.body) else { throw HTTPClientError(description: "not an object: \(reply.text)") }
    return o
}

/// Runs `body` on a thread and gives back its result later (for concurrent requests in tests).
final class Background<T>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, any Error>?

    init(_ body: @escaping @Sendable () throws -> T) {
        Thread {
            self.result = Result { try body() }
            self.done.signal()
        }.start()
    }

    func value(timeout: TimeInterval = 120) throws -> T {
        guard done.wait(timeout: .now() + timeout) == .success else { throw HTTPClientError(description: "background request timed out") }
        return try result!.get()
    }
}
