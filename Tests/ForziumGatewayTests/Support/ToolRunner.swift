#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// What a finished command printed.
struct ToolOutput {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `executable` with `arguments` to completion (bounded by `timeout`, then SIGKILL) and collects its output.
/// `environment` replaces the process's environment when given.
func runCommand(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdin: String? = nil,
             directory: String? = nil, timeout: TimeInterval = 120) throws -> ToolOutput {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe(), err = Pipe(), input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = stdin == nil ? FileHandle.nullDevice : input
    try process.run()
    if let stdin {
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try? input.fileHandleForWriting.close()
    }
    let collected = Background<(Data, Data)> {
        let e = Background<Data> { err.fileHandleForReading.readDataToEndOfFile() }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        return (o, try e.value(timeout: timeout + 5))
    }
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning, Date() < deadline { usleep(10_000) }
    if process.isRunning {
        kill(process.processIdentifier, SIGKILL)
    }
    process.waitUntilExit()
    let (o, e) = try collected.value(timeout: 10)
    return ToolOutput(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                      stderr: String(decoding: e, as: UTF8.self))
}
