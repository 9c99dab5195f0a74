import Foundation
import ForziumJSON
import Testing

/// A real cgroup with a CPU quota of one CPU, where this machine lets the tests make one (root with a writable cgroup
/// v1 `cpu` hierarchy or a cgroup v2 hierarchy with the `cpu` controller enabled for children).
struct CPUQuotaCgroup {
    /// The cgroup directory.
    let directory: String

    /// Makes `forzium-test-<pid>-<n>` limited to `cpus` CPUs; nil where that is not possible here.
    static func make(cpus: Int) -> CPUQuotaCgroup? {
        let name = "forzium-test-\(getpid())-\(UUID().uuidString.prefix(8))"
        let v1 = "/sys/fs/cgroup/cpu"
        if FileManager.default.fileExists(atPath: v1 + "/cpu.cfs_quota_us") {
            let directory = v1 + "/" + name
            guard mkdir(directory, 0o755) == 0 else { return nil }
            let group = CPUQuotaCgroup(directory: directory)
            guard group.write("cpu.cfs_period_us", "100000"), group.write("cpu.cfs_quota_us", "\(cpus * 100_000)") else {
                group.remove()
                return nil
            }
            return group
        }
        let v2 = "/sys/fs/cgroup"
        guard let controllers = try? String(contentsOfFile: v2 + "/cgroup.subtree_control", encoding: .utf8),
              controllers.split(whereSeparator: \.isWhitespace).contains("cpu") else { return nil }
        let directory = v2 + "/" + name
        guard mkdir(directory, 0o755) == 0 else { return nil }
        let group = CPUQuotaCgroup(directory: directory)
        guard group.write("cpu.max", "\(cpus * 100_000) 100000") else {
            group.remove()
            return nil
        }
        return group
    }

    /// Whether a cgroup can be made here and a process can join it (a shell that joins and exits).
    static let available: Bool = {
        guard let probe = make(cpus: 1) else { return false }
        defer { probe.remove() }
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", "echo $$ > \"$1/cgroup.procs\"", "sh", probe.directory]
        shell.standardError = FileHandle.nullDevice
        guard (try? shell.run()) != nil else { return false }
        shell.waitUntilExit()
        return shell.terminationStatus == 0
    }()

    func write(_ file: String, _ text: String) -> Bool {
        (try? text.write(toFile: directory + "/" + file, atomically: false, encoding: .utf8)) != nil
    }

    /// Removes the cgroup (it must have no processes left).
    func remove() { rmdir(directory) }
}

@Suite("The SIMD engine inside a real cgroup with a CPU quota", .timeLimit(.minutes(1)),
       .enabled(if: CPUQuotaCgroup.available, "needs a cgroup this process may create (root, cgroup v1 cpu or v2 cpu controller)"))
struct CgroupQuotaTests {
    @Test("A quota of one CPU: engine.info reports one kernel thread, and a matmul still answers")
    func oneCPU() throws {
        let group = try #require(CPUQuotaCgroup.make(cpus: 1))
        defer { group.remove() }
        let engine = EngineBinary.simd.url.path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        // The shell joins the cgroup, then becomes the engine: the engine reads its quota at start-up.
        process.arguments = ["-c", "echo $$ > \"$1/cgroup.procs\" && exec \"$2\" --log-level warning", "sh", group.directory, engine]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let lines = [
            request(1, "engine.info"),
            #"{"jsonrpc":"2.0","id":2,"method":"matmul","params":{"data":[[1,2],[3,4]],"matrix_b":[[5,6],[7,8]]}}"#,
        ]
        try input.fileHandleForWriting.write(contentsOf: Data((lines.joined(separator: "\n") + "\n").utf8))
        try input.fileHandleForWriting.close()
        let text = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        var replies: [Int: JSONValue] = [:]
        for line in text.split(separator: UInt8(ascii: "\n")) {
            let reply = try JSONParser().parse(Array(line))
            if let id = reply["id"]?.intValue { replies[id] = reply }
        }
        #expect(replies[1]?["result"]?["threads"]?.intValue == 1, "\(replies)")
        #expect(replies[2]?["result"] == (try JSONParser().parse("[[19.0,22.0],[43.0,50.0]]")), "\(replies)")
    }
}
