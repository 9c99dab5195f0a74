import ArgumentParser
import Foundation

extension GatewayCommand {
    /// Parses the process's arguments after applying `FORZIUM_*` variables (`EnvironmentOptions`). When parsing
    /// fails and variables were used, the error names them (argument-parser's own message names only the option).
    public static func parseAsRootWithEnvironment(
        arguments: [String] = Array(CommandLine.arguments.dropFirst()),
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> any ParsableCommand {
        let applied = try EnvironmentOptions(GatewayCommand()).apply(to: arguments, environment: environment)
        do {
            return try parseAsRoot(applied.arguments)
        } catch {
            if !applied.used.isEmpty, exitCode(for: error) != .success {
                FileHandle.standardError.write(Data("forzium-gateway: options from the environment: \(applied.used.joined(separator: " "))\n".utf8))
            }
            throw error
        }
    }
}
