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
