import Foundation
import ForziumJSON
import Testing

/// The two engine executables, by product name.
enum EngineBinary: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case fallback = "forzium-engine"
    case simd = "forzium-engine-simd"

    var testDescription: String { rawValue }

    /// The directory holding the built products: the one the running test executable lives in.
    static let binDirectory: URL = {
        if let own = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            var directory = URL(fileURLWithPath: own).deletingLastPathComponent()
            // On Darwin the test bundle's executable sits inside Name.xctest/Contents/MacOS.
            while !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("forzium-engine").path),
                  directory.pathComponents.count > 1 {
                directory.deleteLastPathComponent()
            }
            return directory
        }
        return Bundle.main.bundleURL.deletingLastPathComponent()
    }()

    var url: URL { Self.binDirectory.appendingPathComponent(rawValue) }
}


struct EngineTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}

/// A running engine with pipes on stdin, stdout and stderr. stdout is read continuously on its own thread and split
/// into lines, so the engine never stalls on a full pipe; every wait has a deadline so a bug cannot hang the suite.
final class EngineProcess: @unchecked Sendable {
    let binary: EngineBinary
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let errors = Pipe()
    private let condition = NSCondition()
    private var lines: [[UInt8]] = []
    private var outputEnded = false
    private var stderrBytes: [UInt8] = []
    private var inputClosed = false

    init(_ binary: EngineBinary, arguments: [String] = [], environment: [String: String] = [:]) throws {
        self.binary = binary
        process.executableURL = binary.url
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        process.arguments = ["--log-level", "warning"] + arguments
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let outFD = output.fileHandleForReading.fileDescriptor
        let errFD = errors.fileHandleForReading.fileDescriptor
        Thread.detachNewThread { [self] in readLines(from: outFD) }
        Thread.detachNewThread { [self] in drainErrors(from: errFD) }
    }

    deinit {
        if process.isRunning { process.terminate() }
    }

    /// The engine's process id.
    var pid: Int32 { process.processIdentifier }

    /// A memory figure of the running engine from /proc/<pid>/status, in KiB (`VmHWM`: peak resident, `VmRSS`: now).
    func memoryKiB(_ field: String = "VmHWM") -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8) else { return nil }
        for row in status.split(separator: "\n") where row.hasPrefix(field + ":") {
            return Int(row.dropFirst(field.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
        }
        return nil
    }

    private func readLines(from descriptor: Int32) {
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            // Only the new bytes are searched for LFs (a long reply arrives in hundreds of reads), with memchr.
            let searchFrom = pending.count
            pending.append(contentsOf: chunk[0..<count])
            var complete: [[UInt8]] = []
            var start = 0
            var from = searchFrom
            while let lf = pending.withUnsafeBytes({ raw -> Int? in
                guard from < raw.count, let hit = memchr(raw.baseAddress! + from, 0x0A, raw.count - from) else { return nil }
                return raw.baseAddress!.distance(to: UnsafeRawPointer(hit))
            }) {
                complete.append(Array(pending[start..<lf]))
                start = lf + 1
                from = start
            }
            if start > 0 { pending.removeFirst(start) }
            if !complete.isEmpty {
                condition.lock()
                lines.append(contentsOf: complete)
                condition.broadcast()
                condition.unlock()
            }
        }
        condition.lock()
        if !pending.isEmpty { lines.append(pending) }  // an unterminated last line is still reported
        outputEnded = true
        condition.broadcast()
        condition.unlock()
    }

    private func drainErrors(from descriptor: Int32) {
        var chunk = [UInt8](repeating: 0, count: 1 << 14)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            condition.lock()
            stderrBytes.append(contentsOf: chunk[0..<count])
            condition.unlock()
        }
    }

    /// What the engine wrote to stderr so far.
    var stderrText: String {
        condition.lock()
        defer { condition.unlock() }
        return String(decoding: stderrBytes, as: UTF8.self)
    }

    /// Writes raw bytes to the engine's stdin (blocking until the pipe takes them).
    func send(bytes: [UInt8]) throws {
        try input.fileHandleForWriting.write(contentsOf: Data(bytes))
    }

    /// Writes `text` followed by LF.
    func send(_ text: String) throws {
        try send(bytes: Array((text + "\n").utf8))
    }

    /// Writes on a background thread (for inputs larger than the pipe buffer while replies are being read).
    func sendInBackground(bytes: [UInt8], thenClose: Bool = false) {
        let handle = input.fileHandleForWriting
        Thread.detachNewThread { [self] in
            try? handle.write(contentsOf: Data(bytes))
            if thenClose { closeInput() }
        }
    }

    /// Closes the engine's stdin (end of input).
    func closeInput() {
        condition.lock()
        let already = inputClosed
        inputClosed = true
        condition.unlock()
        if !already { try? input.fileHandleForWriting.close() }
    }

    /// Closes our end of the engine's stdout, so its writes fail with EPIPE.
    func closeOutputReader() {
        try? output.fileHandleForReading.close()
    }

    /// The next line from stdout (as text), waiting at most `timeout` seconds.
    func readLine(timeout: TimeInterval = 60) throws -> String {
        String(decoding: try readLineBytes(timeout: timeout), as: UTF8.self)
    }

    func readLineBytes(timeout: TimeInterval = 60) throws -> [UInt8] {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while lines.isEmpty {
            if outputEnded { throw EngineTimeout(what: "a line (stdout ended); stderr: \(String(decoding: stderrBytes, as: UTF8.self))") }
            if !condition.wait(until: deadline) {
                throw EngineTimeout(what: "a line from \(binary.rawValue); \(diagnosis()); stderr: \(String(decoding: stderrBytes, as: UTF8.self))")
            }
        }
        return lines.removeFirst()
    }

    /// What the engine is doing, for a timeout's message (so a rare hang explains itself in a CI log): running or not,
    /// and each thread's state, kernel wait channel and current system call from /proc.
    private func diagnosis() -> String {
        let pid = process.processIdentifier
        guard process.isRunning else { return "pid \(pid) is not running" }
        func read(_ path: String) -> String {
            ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task"))?.sorted() ?? []
        let threads = tasks.map { tid -> String in
            let stat = read("/proc/\(pid)/task/\(tid)/stat")
            let state = stat.split(separator: ")").last?.split(separator: " ").first.map(String.init) ?? "?"
            let name = read("/proc/\(pid)/task/\(tid)/comm")
            let syscall = read("/proc/\(pid)/task/\(tid)/syscall").split(separator: " ").first.map(String.init) ?? "?"
            return "\(tid) \(name) \(state) wchan=\(read("/proc/\(pid)/task/\(tid)/wchan")) syscall=\(syscall)"
        }
        return "pid \(pid) running, threads: [\(threads.joined(separator: "; "))]"
    }

    /// The next line parsed as JSON.
    func readJSON(timeout: TimeInterval = 60) throws -> JSONValue {
        try JSONParser().parse(try readLineBytes(timeout: timeout))
    }

    /// Sends one request line and reads one reply line.
    func call(_ request: String, timeout: TimeInterval = 60) throws -> JSONValue {
        try send(request)
        return try readJSON(timeout: timeout)
    }

    /// Waits until stdout is closed by the engine; returns the lines still unread.
    func remainingLines(timeout: TimeInterval = 60) throws -> [String] {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while !outputEnded {
            if !condition.wait(until: deadline) { throw EngineTimeout(what: "stdout to close") }
        }
        let rest = lines.map { String(decoding: $0, as: UTF8.self) }
        lines.removeAll()
        return rest
    }

    var isRunning: Bool { process.isRunning }

    /// Waits for the process to exit; returns its status, or throws (after killing it) on timeout or on a signal.
    func waitForExit(timeout: TimeInterval = 60) throws -> Int32 {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while process.isRunning {
            if Date() > deadline {
                process.terminate()
                throw EngineTimeout(what: "\(binary.rawValue) to exit")
            }
            usleep(2_000)
        }
        if process.terminationReason == .uncaughtSignal {
            throw EngineKilled(signal: process.terminationStatus)
        }
        return process.terminationStatus
    }
}

struct EngineKilled: Error, CustomStringConvertible {
    var signal: Int32
    var description: String { "engine killed by signal \(signal)" }
}
