import ArgumentParser
import Foundation
import NIOCore
import ForziumJSON
import ForziumRPC
import Testing
@testable import ForziumGatewayCore

@Suite("FORZIUM_* environment variables")
struct EnvironmentOptionsTests {
    let table = EnvironmentOptions(GatewayCommand())

    @Test func everyOptionOfTheHelpHasAVariableAndTheHelpListsIt() throws {
        let help = GatewayCommand.helpMessage(columns: 200)
        // Every `--long-option` the help describes (the OPTIONS section), except the built-in ones.
        let optionsSection = help.components(separatedBy: "OPTIONS:").last ?? ""
        let described = Set(optionsSection.split(separator: "\n").compactMap { line -> String? in
            let trimmed = line.drop { $0 == " " }
            guard trimmed.hasPrefix("--"), line.hasPrefix("  --") else { return nil }
            return String(trimmed.prefix { $0 != " " && $0 != "," && $0 != "=" })
        }).subtracting(["--version", "--help"])
        #expect(!described.isEmpty)
        #expect(Set(table.entries.map(\.option)) == described, "options without a variable, or variables for no option")
        for entry in table.entries {
            #expect(entry.variable.hasPrefix("FORZIUM_"))
            #expect(help.contains("  \(entry.variable) "), "--help does not list \(entry.variable)")
        }
        // The two variables that existed before the rule keep their names.
        #expect(table.entries.contains { $0.option == "--engine" && $0.variable == "FORZIUM_ENGINE" })
        #expect(table.entries.contains { $0.option == "--api-keys" && $0.variable == "FORZIUM_API_KEYS" })
        #expect(table.entries.first { $0.option == "--cors-origin" }?.kind == .repeatable)
        #expect(table.entries.first { $0.option == "--print-openapi" }?.kind == .flag)
    }

    @Test func variablesFillOptionsTheCommandLineLeavesOut() throws {
        let env = ["FORZIUM_PORT": "9123", "FORZIUM_HOST": "0.0.0.0", "FORZIUM_ENGINES": "3",
                   "FORZIUM_CORS_ORIGIN": "https://a.example, https://b.example", "FORZIUM_TIMEOUT": "2.5",
                   "FORZIUM_API_KEYS": "k1,k2", "UNRELATED": "x"]
        let command = try #require(try GatewayCommand.parseAsRootWithEnvironment(arguments: ["--engines", "2"], environment: env)
            as? GatewayCommand)
        let config = command.gatewayConfiguration(environment: env)
        #expect(config.port == 9123)
        #expect(config.host == "0.0.0.0")
        #expect(config.engines == 2, "the flag wins over FORZIUM_ENGINES")
        #expect(config.corsOrigins == ["https://a.example", "https://b.example"])
        #expect(config.timeoutMilliseconds == 2500)
        #expect(config.apiKeys == ["k1", "k2"])
        // `--name=value` counts as given, too.
        let flagged = try #require(try GatewayCommand.parseAsRootWithEnvironment(arguments: ["--port=1"], environment: env) as? GatewayCommand)
        #expect(flagged.gatewayConfiguration(environment: env).port == 1)
    }

    @Test func enginesDefaultToOnePerEventLoopUpToFour() throws {
        func engines(_ arguments: [String]) throws -> Int {
            let command = try #require(try GatewayCommand.parseAsRootWithEnvironment(arguments: arguments, environment: [:])
                as? GatewayCommand)
            return command.gatewayConfiguration(environment: [:]).engines
        }
        #expect(try engines(["--event-loop-threads", "1"]) == 1)
        #expect(try engines(["--event-loop-threads", "3"]) == 3)
        #expect(try engines(["--event-loop-threads", "16"]) == 4)
        #expect(try engines(["--event-loop-threads", "16", "--engines", "9"]) == 9)
        #expect(try engines([]) == min(4, min(16, GatewayCommand.usableCores)))
        #expect(GatewayCommand.usableCores >= 1 && GatewayCommand.usableCores <= System.coreCount)
    }

    @Test func flagsAndBadValuesGiveClearErrors() throws {
        let on = try table.apply(to: [], environment: ["FORZIUM_PRINT_OPENAPI": "true"])
        #expect(on.arguments == ["--print-openapi"])
        let off = try table.apply(to: [], environment: ["FORZIUM_PRINT_OPENAPI": "0"])
        #expect(off.arguments.isEmpty)
        #expect(throws: (any Error).self) { try table.apply(to: [], environment: ["FORZIUM_PRINT_OPENAPI": "maybe"]) }
        // A value the option refuses fails parsing just as the flag would.
        #expect(throws: (any Error).self) {
            try GatewayCommand.parseAsRootWithEnvironment(arguments: [], environment: ["FORZIUM_PORT": "eighty"])
        }
        #expect(throws: (any Error).self) {
            try GatewayCommand.parseAsRootWithEnvironment(arguments: [], environment: ["FORZIUM_PORT": "70000"])
        }
        // Options from the environment go before a `--` terminator.
        let terminated = try table.apply(to: ["--", "x"], environment: ["FORZIUM_PORT": "1"])
        #expect(terminated.arguments == ["--port=1", "--", "x"])
    }
}

@Suite("Versions", .serialized)
struct VersionTests {
    @Test func everyExecutableAnswersVersionWithTheSameConstant() throws {
        for name in ["forzium-gateway", "forzium-engine", "forzium-engine-simd"] {
            let out = try runCommand(buildDirectory + "/" + name, ["--version"], timeout: 30)
            #expect(out.status == 0, "\(name): \(out.stderr)")
            #expect(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == ForziumVersion.string, "\(name)")
        }
        // engine.info carries it too.
        for name in engineBinaries {
            let out = try runCommand(buildDirectory + "/" + name, [], stdin: #"{"jsonrpc":"2.0","id":1,"method":"engine.info"}"# + "\n",
                                  timeout: 30)
            #expect(out.stdout.contains(#""version":"\#(ForziumVersion.string)""#), "\(name): \(out.stdout)")
        }
    }

    @Test func gatewayReportsItsVersionAtRootAndInMetrics() throws {
        let gateway = try GatewayProcess(engine: "forzium-engine", environment: ["FORZIUM_MAX_BODY_BYTES": "200"])
        defer { gateway.stop() }
        let root = try object(try gateway.client.request("GET", "/"))
        #expect(root["version"] == .string(ForziumVersion.string))
        guard case .object(let info)? = root["engine_info"] else { Issue.record("no engine_info"); return }
        #expect(info["version"] == .string(ForziumVersion.string))
        let metrics = try gateway.client.request("GET", "/metrics").text
        #expect(metrics.contains(#"forzium_build_info{version="\#(ForziumVersion.string)"} 1"#), "\(metrics)")
        // FORZIUM_MAX_BODY_BYTES reached the running gateway: a 300-byte body is over its limit.
        let big = json(#"{"data":[["# + String(repeating: "1,", count: 140) + #"1]],"operation":"sum"}"#)
        #expect(try gateway.client.request("POST", "/compute", body: big).status == 413)
    }
}
