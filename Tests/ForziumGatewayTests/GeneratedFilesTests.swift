import Foundation
import Testing
@testable import ForziumGatewayCore

/// The repository root, found from this file's path.
let repositoryRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Runs a command to completion, returning its exit status and combined output.
func runTool(_ executable: String, _ arguments: [String], timeout: TimeInterval = 120) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.currentDirectoryURL = repositoryRoot
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning, Date() < deadline { usleep(10_000) }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

@Suite("Generated files")
struct GeneratedFilesTests {
    @Test func routeTableSwiftMatchesGatewayRoutesJSON() throws {
        let result = try runTool("/usr/bin/env", ["python3", "scripts/embed-routes.py", "--check"])
        #expect(result.status == 0, "RouteTable+Generated.swift is stale: \(result.output)")
    }
}

@Suite("OpenAPI document")
struct OpenAPIDocumentTests {
    @Test func committedOpenAPIMatchesTheRouteTableAndSchemas() throws {
        let built = try OpenAPIBuilder(routes: .embedded, files: GatewaySchemas.embedded).prettyBytes()
        let committed = try Data(contentsOf: repositoryRoot.appendingPathComponent("schemas/openapi.json"))
        #expect(Array(committed) == built, "schemas/openapi.json is stale: run scripts/gen-openapi.sh")
    }

    @Test func hasNoExternalRefsAndEveryRefResolves() throws {
        let text = String(decoding: try OpenAPIBuilder(routes: .embedded, files: GatewaySchemas.embedded).prettyBytes(), as: UTF8.self)
        let refs = text.matches(of: /"\$ref": "([^"]*)"/).map { String($0.output.1) }
        #expect(!refs.isEmpty)
        let doc = try JSONParserBox.parse(text)
        guard case .object(let root) = doc, case .object(let components)? = root["components"],
              case .object(let schemas)? = components["schemas"] else { Issue.record("no components.schemas"); return }
        for ref in refs {
            #expect(ref.hasPrefix("#/components/schemas/"), "external ref \(ref)")
            let name = ref.dropFirst("#/components/schemas/".count).split(separator: "/").first.map(String.init) ?? ""
            #expect(schemas[name] != nil, "dangling ref \(ref)")
        }
        for route in RouteTable.embedded.routes {
            #expect(text.contains("\"\(route.path)\": {"), "route \(route.path) missing from paths")
        }
    }

    @Test func passesOpenAPISpecValidator() throws {
        var check = try runTool("/usr/bin/env", ["python3", "-c", "import openapi_spec_validator"])
        if check.status != 0 {
            _ = try runTool("/usr/bin/env", ["python3", "-m", "pip", "install", "-q", "openapi-spec-validator"], timeout: 300)
            check = try runTool("/usr/bin/env", ["python3", "-c", "import openapi_spec_validator"])
        }
        try #require(check.status == 0, "openapi-spec-validator is not installed and could not be installed: \(check.output)")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("forzium-openapi-\(getpid()).json")
        try Data(try OpenAPIBuilder(routes: .embedded, files: GatewaySchemas.embedded).prettyBytes()).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let script = """
            import json, sys
            from openapi_spec_validator import validate
            validate(json.load(open(sys.argv[1])))
            print("valid")
            """
        let result = try runTool("/usr/bin/env", ["python3", "-c", script, file.path])
        #expect(result.status == 0, "openapi-spec-validator rejected the document: \(result.output)")
    }
}

import ForziumJSON
enum JSONParserBox {
    static func parse(_ text: String) throws -> JSONValue { try JSONParser().parse(text) }
}
