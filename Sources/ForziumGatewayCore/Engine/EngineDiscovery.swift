#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import ForziumJSON
import ForziumRPC
import ForziumSchemaBundle
import Logging
import NIOCore
import NIOPosix

/// An engine executable the gateway may run.
public struct EngineCandidate: Sendable, Equatable {
    /// Absolute path of the executable.
    public var path: String
    /// `simd`, `fallback`, or `custom` (an explicit path of unknown kind).
    public var kind: String
    /// Extra arguments passed to the engine.
    public var arguments: [String]

    public init(path: String, kind: String, arguments: [String] = []) {
        self.path = path
        self.kind = kind
        self.arguments = arguments
    }

    /// Checks an `engine.info` result against the expected kind: a `simd` candidate must not report `fallback`
    /// and vice versa. An info without a `kind` member is accepted.
    func check(info: JSONValue) throws {
        guard case .object(let object) = info else { throw EngineSpawnError(message: "engine.info did not return an object") }
        // The schemas are the protocol: an engine built from others (an older install on PATH, say) would not
        // understand what the gateway sends (binary matrices, `$result`, cancels), so it is refused here, at start-up,
        // rather than failing every request.
        guard case .string(let digest)? = object["schema_digest"], digest == SchemaBundle.digest else {
            throw EngineSpawnError(message: "engine.info reports schemas \(object["schema_digest"].map { JSONWriter.string($0, options: .document) } ?? "none") "
                + "but the gateway was built with \(SchemaBundle.digest); build the gateway and engines from the same sources")
        }
        guard kind != "custom", case .string(let reported)? = object["kind"] else { return }
        if reported.lowercased() != kind {
            throw EngineSpawnError(message: "engine.info reports kind \"\(reported)\" but \(kind) was expected")
        }
    }
}

/// Finds engine executables: next to the gateway's own executable first, then on PATH.
/// `forzium-engine-simd` is preferred; `forzium-engine` is the fallback.
public enum EngineDiscovery {
    public static let simdName = "forzium-engine-simd"
    public static let fallbackName = "forzium-engine"

    /// The directory of the running executable (`/proc/self/exe`).
    public static func ownDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if n > 0 {
            let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return (path as NSString).deletingLastPathComponent
        }
        let arg0 = CommandLine.arguments.first ?? ""
        return arg0.contains("/") ? (arg0 as NSString).deletingLastPathComponent : nil
    }

    /// First executable called `name` next to the gateway, then on `PATH`.
    public static func locate(_ name: String, environment: [String: String]) -> String? {
        var directories: [String] = []
        if let own = ownDirectory() { directories.append(own) }
        directories.append(contentsOf: (environment["PATH"] ?? "").split(separator: ":").map(String.init))
        for dir in directories where !dir.isEmpty {
            let candidate = dir + "/" + name
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Candidates in order of preference for `mode` (`auto`, `simd`, `fallback`, or a path).
    /// `simd` still lists the fallback after it: a missing or failing SIMD engine degrades with a warning.
    public static func candidates(mode: String, environment: [String: String], logger: Logger) -> [EngineCandidate] {
        let simd = locate(simdName, environment: environment).map { EngineCandidate(path: $0, kind: "simd") }
        let fallback = locate(fallbackName, environment: environment).map { EngineCandidate(path: $0, kind: "fallback") }
        switch mode.lowercased() {
        case "auto", "":
            if simd == nil { logger.warning("\(simdName) not found next to the gateway or on PATH; using the fallback engine") }
            return [simd, fallback].compactMap { $0 }
        case "simd":
            if simd == nil { logger.warning("--engine simd: \(simdName) not found; using the fallback engine") }
            return [simd, fallback].compactMap { $0 }
        case "fallback":
            return [fallback].compactMap { $0 }
        default:
            // An explicit path: its kind is whatever its engine.info reports.
            return [EngineCandidate(path: mode, kind: "custom")]
        }
    }
}

/// The `engine.info` handshake.
enum EngineHandshake {
    static func run(process: EngineProcess, id: Int, timeout: Duration) async throws -> JSONValue {
        let response = try await process.call(id: id, method: "engine.info", timeout: timeout)
        if let error = response.error { throw EngineSpawnError(message: "engine.info failed: \(error.message)") }
        let bytes = Array(response.resultBytes)
        do {
            return try JSONParser().parse(bytes)
        } catch {
            throw EngineSpawnError(message: "engine.info result is not JSON: \(error)")
        }
    }

    /// Starts one process of `candidate`, handshakes, and closes it: proves the engine works before the pool uses it.
    static func probe(_ candidate: EngineCandidate, logger: Logger, timeout: Duration,
                      group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> JSONValue {
        let process = try await EngineProcess.start(executable: candidate.path, arguments: candidate.arguments, slot: -1, generation: 0,
                                                    group: group, logger: logger)
        do {
            let info = try await run(process: process, id: 0, timeout: timeout)
            try candidate.check(info: info)
            process.closeInput()
            _ = try? await process.exit.get()
            return info
        } catch {
            process.kill()
            _ = try? await process.exit.get()
            throw error
        }
    }

    /// Probes `candidate`; a `custom` (explicit path) candidate takes the kind its `engine.info` reports.
    static func probeChoosingKind(_ candidate: EngineCandidate, logger: Logger, timeout: Duration,
                                  group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> EngineCandidate {
        let info = try await probe(candidate, logger: logger, timeout: timeout, group: group)
        var chosen = candidate
        if candidate.kind == "custom", case .object(let o) = info, case .string(let reported)? = o["kind"] {
            chosen.kind = reported.lowercased()
        }
        return chosen
    }

    /// The first candidate that handshakes, with a warning for each that does not. A `custom` (explicit path)
    /// candidate takes the kind its `engine.info` reports.
    static func choose(_ candidates: [EngineCandidate], logger: Logger, timeout: Duration,
                       group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async -> EngineCandidate? {
        for candidate in candidates {
            do {
                return try await probeChoosingKind(candidate, logger: logger, timeout: timeout, group: group)
            } catch {
                logger.warning("engine \(candidate.kind) at \(candidate.path) failed its engine.info handshake: \(error); trying the next one")
            }
        }
        return nil
    }
}
