import ArgumentParser
import ForziumLogging
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Options both engines take (`@OptionGroup var options: EngineOptions`).
public struct EngineOptions: ParsableArguments, Sendable {
    @Option(name: .long, help: "Longest request line accepted, in bytes; longer lines get a -32600 reply and are skipped.")
    public var maxLineBytes: Int = 256 << 20

    @Option(name: .long, help: "Most matrix elements accepted per request (inputs together, and the result); beyond it: -32000.")
    public var maxElements: Int = 50_000_000

    @Option(name: .long, help: "Most requests queued or computing at once (default: 2 × the CPUs it may use: its affinity, capped by its cgroup CPU quota). Beyond it the engine stops reading stdin until one finishes (back-pressure; nothing is refused); below it, ping and $/cancelRequest are handled as soon as they arrive.")
    public var maxInFlight: Int?

    @Option(name: .long, help: "Least severe log level written to stderr: trace, debug, info, notice, warning, error, critical.")
    public var logLevel: String = "info"

    @Option(name: .long, help: "Log line format on stderr: text, or json (one object per line; the gateway starts its engines with json and re-emits their lines as fields of its own).")
    public var logFormat: String = "text"

    public init() {}

    public func validate() throws {
        guard maxLineBytes >= 16 else { throw ValidationError("--max-line-bytes must be at least 16") }
        if let maxInFlight, maxInFlight < 1 || maxInFlight > 4096 {
            throw ValidationError("--max-in-flight must be between 1 and 4096")
        }
        guard maxElements >= 1 else { throw ValidationError("--max-elements must be at least 1") }
        guard LogFormat(option: logFormat) != nil else {
            throw ValidationError("--log-format must be one of: \(LogFormat.choices)")
        }
        guard Logger.Level(rawValue: logLevel.lowercased()) != nil else {
            throw ValidationError("--log-level must be one of: \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    /// The parsed log level.
    public var level: Logger.Level { Logger.Level(rawValue: logLevel.lowercased()) ?? .info }

    /// The parsed log format.
    public var format: LogFormat { LogFormat(option: logFormat) ?? .text }

    /// `--max-in-flight`, or twice the CPUs this engine may use.
    public var resolvedMaxInFlight: Int { maxInFlight ?? 2 * EngineRunner.onlineCores }
}

/// Options of the multithreaded engine only.
public struct ConcurrencyOptions: ParsableArguments, Sendable {
    @Option(name: .long, help: "Threads the kernels use (default: the CPUs this process may run on).")
    public var threads: Int?

    public init() {}

    public func validate() throws {
        if let threads, threads < 1 || threads > 256 { throw ValidationError("--threads must be between 1 and 256") }
    }
}
