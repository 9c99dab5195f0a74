import ForziumJSON
import Logging

/// Engine stderr lines into the gateway's log. Our engines are started with `--log-format json`, so each line is one
/// object (`{"ts","level","logger","msg","source",…metadata}`); it is re-emitted through the gateway's logger at the
/// engine's level, with the engine's message as the message and its fields as metadata (beside `engine.pid` and
/// `engine.slot`): one line, one timestamp (the gateway's), structured in both of the gateway's formats. Any other
/// line — another engine implementation, a runtime crash report — is logged as text at info, as it came.
enum EngineLogRelay {
    static func relay(_ line: String, logger: Logger) {
        guard line.first == "{", let bytes = Optional(Array(line.utf8)),
              case .object(let object)? = try? JSONParser().parse(bytes),
              case .string(let message)? = object["msg"] else {
            logger.info("engine: \(line)")
            return
        }
        var level = Logger.Level.info
        var source: String?
        var metadata: Logger.Metadata = [:]
        for (key, value) in object.members {
            switch key {
            case "msg", "ts":
                continue
            case "level":
                if case .string(let text) = value, let parsed = Logger.Level(rawValue: text) { level = parsed }
            case "source":
                if case .string(let text) = value { source = text }
            case "logger":
                metadata["engine.logger"] = metadataValue(value)
            default:
                metadata[key] = metadataValue(value)
            }
        }
        if let source {
            logger.log(level: level, "\(message)", metadata: metadata, source: source)
        } else {
            logger.log(level: level, "\(message)", metadata: metadata)
        }
    }

    static func metadataValue(_ value: JSONValue) -> Logger.Metadata.Value {
        switch value {
        case .string(let text):
            return .string(text)
        case .array(let items):
            return .array(items.map(metadataValue))
        case .object(let object):
            var members: Logger.Metadata = [:]
            for (key, item) in object.members { members[key] = metadataValue(item) }
            return .dictionary(members)
        default:
            return .string(JSONWriter.string(value, options: .document))
        }
    }
}
