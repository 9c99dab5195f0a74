import ArgumentParser
import Foundation

/// Twelve-factor configuration: every option of a command may come from a `FORZIUM_*` environment variable.
///
/// The rule is mechanical, so options added later get a variable without further code: the option `--some-name`
/// (swift-argument-parser's default spelling of a property `someName`) is read from `FORZIUM_SOME_NAME`. A flag or
/// option on the command line wins over the variable. Before parsing, `arguments(…)` appends `--some-name VALUE` for
/// every variable whose option is not on the command line:
/// - a single-valued option takes the value as it is;
/// - a repeatable option (an array) takes a comma-separated list, one option per item;
/// - a flag is set by `1`, `true`, `yes` or `on` and left off by `0`, `false`, `no`, `off` or an empty value.
package struct EnvironmentOptions {
    package enum Kind: Equatable, Sendable { case single, repeatable, flag }

    /// One option and its variable.
    package struct Entry: Equatable, Sendable {
        /// `--some-name`.
        package var option: String
        /// `FORZIUM_SOME_NAME`.
        package var variable: String
        package var kind: Kind
    }

    package static let prefix = "FORZIUM_"

    /// Options found on `command` (any `ParsableArguments`), in declaration order.
    package let entries: [Entry]

    package init(_ command: any ParsableArguments) {
        var entries: [Entry] = []
        for child in Mirror(reflecting: command).children {
            guard let label = child.label, label.hasPrefix("_") else { continue }
            let type = String(describing: Swift.type(of: child.value))
            let kind: Kind
            if type.hasPrefix("Flag<") {
                kind = .flag
            } else if type.hasPrefix("Option<Array<") || type.hasPrefix("Option<[") {
                kind = .repeatable
            } else if type.hasPrefix("Option<") {
                kind = .single
            } else {
                continue
            }
            let words = Self.words(String(label.dropFirst()))
            entries.append(Entry(option: "--" + words.joined(separator: "-"),
                                 variable: Self.prefix + words.joined(separator: "_").uppercased(), kind: kind))
        }
        self.entries = entries
    }

    /// `engineArg` → `["engine", "arg"]`; `printOpenapi` → `["print", "openapi"]` (argument-parser's default naming).
    static func words(_ name: String) -> [String] {
        var words: [String] = []
        var current = ""
        for character in name {
            if character.isUppercase, !current.isEmpty {
                words.append(current)
                current = ""
            }
            current.append(Character(character.lowercased()))
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// The variables applied to `arguments`, and what was appended for them (for error messages).
    package struct Applied: Sendable {
        package var arguments: [String]
        /// `FORZIUM_PORT=abc` for every variable that was used.
        package var used: [String]
    }

    /// `arguments` (without the executable's name) plus an option for every variable of `environment` whose option
    /// is not on the command line. Throws for a flag variable that is neither true nor false.
    package func apply(to arguments: [String], environment: [String: String]) throws -> Applied {
        // Everything after `--` is a positional argument, not an option.
        let given = arguments.prefix { $0 != "--" }
        var extra: [String] = []
        var used: [String] = []
        for entry in entries {
            guard let value = environment[entry.variable] else { continue }
            if given.contains(where: { $0 == entry.option || $0.hasPrefix(entry.option + "=") }) { continue }
            switch entry.kind {
            case .single:
                extra.append("\(entry.option)=\(value)")
            case .repeatable:
                for item in value.split(separator: ",") {
                    let trimmed = item.trimmingCharacters(in: .whitespaces)
                    if !trimmed.isEmpty { extra.append("\(entry.option)=\(trimmed)") }
                }
            case .flag:
                switch value.lowercased() {
                case "1", "true", "yes", "on": extra.append(entry.option)
                case "0", "false", "no", "off", "": break
                default:
                    throw ValidationError("\(entry.variable)=\(value): expected 1/true/yes/on or 0/false/no/off")
                }
            }
            used.append("\(entry.variable)=\(value)")
        }
        // Options from the environment go before a `--` terminator, if there is one.
        var out = Array(given)
        out += extra
        out += arguments.dropFirst(given.count)
        return Applied(arguments: out, used: used)
    }

    /// The table `--help` shows: every option beside its variable.
    package var helpTable: String {
        let width = (entries.map(\.variable.count).max() ?? 0) + 2
        var lines = ["", "ENVIRONMENT (every option; the command line wins; repeatable options take a comma-separated list, flags 1/0):"]
        for entry in entries {
            lines.append("  " + entry.variable + String(repeating: " ", count: max(1, width - entry.variable.count)) + entry.option)
        }
        return lines.joined(separator: "\n")
    }
}
