#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Logging

/// How log lines are written to stderr: `text` (swift-log's `StreamLogHandler` layout) or `json` (one object per line).
public enum LogFormat: String, CaseIterable, Sendable {
    case text, json

    /// `text` or `json`, case-insensitively; nil otherwise.
    public init?(option: String) {
        self.init(rawValue: option.lowercased())
    }

    /// The accepted values, for error messages.
    public static var choices: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// Logging setup shared by the gateway and the engines.
public enum ForziumLogging {
    /// Sends swift-log output to stderr at `level` in `format`. Call once per process.
    public static func bootstrap(level: Logger.Level, format: LogFormat) {
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = TextLogHandler(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}

/// One JSON object per line on stderr:
/// `{"ts":"2026-11-26T16:40:16.123Z","level":"info","logger":"forzium.gateway","msg":"…","source":"…",<metadata>}`.
/// Metadata keys become members (nested metadata stays nested); keys are sorted, so lines are stable. Each line goes
/// out in one `write(2)` under a process-wide lock, so lines from several threads never interleave.
public struct JSONLogHandler: LogHandler {
    public let label: String
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let descriptor: Int32

    public init(label: String, descriptor: Int32 = 2, metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.label = label
        self.descriptor = descriptor
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = LogMetadata.merged(metadata, metadataProvider, event)
        let level = event.level, message = event.message, source = event.source
        var out: [UInt8] = []
        out.reserveCapacity(160)
        out.append(contentsOf: #"{"ts":""#.utf8)
        out.append(contentsOf: Self.timestamp().utf8)
        out.append(contentsOf: #"","level":"#.utf8)
        Self.string(level.rawValue, into: &out)
        out.append(contentsOf: #","logger":"#.utf8)
        Self.string(label, into: &out)
        out.append(contentsOf: #","msg":"#.utf8)
        Self.string(message.description, into: &out)
        if !source.isEmpty {
            out.append(contentsOf: #","source":"#.utf8)
            Self.string(source, into: &out)
        }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            out.append(UInt8(ascii: ","))
            Self.string(key, into: &out)
            out.append(UInt8(ascii: ":"))
            Self.value(value, into: &out)
        }
        out.append(contentsOf: "}\n".utf8)
        Self.writeLine(out, to: descriptor)
    }

    static let writeLock = WriteLock()

    /// Writes `out` whole to `descriptor` under the process-wide lock (lines from several threads never interleave).
    static func writeLine(_ out: [UInt8], to descriptor: Int32) {
        writeLock.lock()
        defer { writeLock.unlock() }
        out.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }

    /// UTC, millisecond precision: `2026-11-26T16:40:16.123Z`.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(now.tv_nsec / 1_000_000), 3))Z"
    }

    static func value(_ value: Logger.Metadata.Value, into out: inout [UInt8]) {
        switch value {
        case .string(let text):
            string(text, into: &out)
        case .stringConvertible(let convertible):
            string(convertible.description, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                Self.value(item, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .dictionary(let members):
            out.append(UInt8(ascii: "{"))
            for (index, (key, item)) in members.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                string(key, into: &out)
                out.append(UInt8(ascii: ":"))
                Self.value(item, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// A JSON string (RFC 8259 escapes; control characters as \u00XX; invalid UTF-8 was already repaired by String).
    static func string(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
            case 0x0A: out.append(contentsOf: #"\n"#.utf8)
            case 0x0D: out.append(contentsOf: #"\r"#.utf8)
            case 0x09: out.append(contentsOf: #"\t"#.utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: #"\u00"#.utf8)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// A pthread mutex that never moves.
final class WriteLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
}

/// Text lines on stderr in `StreamLogHandler`'s layout — `2026-11-26T16:40:16.123Z info forzium.gateway : key=value
/// [source] message` — with the metadata formatted when a line is written, not whenever it changes: swift-log's
/// `StreamLogHandler` re-renders its metadata on every change, and a server sets metadata on a logger per request.
public struct TextLogHandler: LogHandler {
    public let label: String
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let descriptor: Int32

    public init(label: String, descriptor: Int32 = 2, metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.label = label
        self.descriptor = descriptor
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = LogMetadata.merged(metadata, metadataProvider, event)
        var line = "\(JSONLogHandler.timestamp()) \(event.level) \(label) :"
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
        line += " [\(event.source)] \(event.message)\n"
        JSONLogHandler.writeLine(Array(line.utf8), to: descriptor)
    }
}

/// The metadata of one log line, for both handlers: the handler's own, then the provider's, then the event's (a later
/// one wins on a shared key), and the event's error as `error`.
enum LogMetadata {
    static func merged(_ own: Logger.Metadata, _ provider: Logger.MetadataProvider?, _ event: LogEvent) -> Logger.Metadata {
        var merged = own
        if let provided = provider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        if let error = event.error { merged["error"] = .string("\(error)") }
        return merged
    }
}
