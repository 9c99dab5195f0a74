#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A free TCP port on 127.0.0.1 (bound to port 0, read, released). Another process could take it before it is used;
/// tests use it at once.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HTTPClientError(description: "socket failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa -> Bool in
            bind(fd, sa, length) == 0 && getsockname(fd, sa, &length) == 0
        }
    }
    guard bound else { throw HTTPClientError(description: "bind failed: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// The nginx executable, if installed (`scripts/install-deps.sh --test` installs Debian's).
let nginxExecutable: String? = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"].first {
    FileManager.default.isExecutableFile(atPath: $0)
}

/// A real nginx running `deploy/nginx/forzium.conf` on 127.0.0.1: the shipped file with only its upstream `server`
/// lines replaced by `upstreams` and its `listen` port by a free one. Its prefix (config, logs, temp files) is a
/// fresh directory, removed by `stop()`.
final class NginxProcess: @unchecked Sendable {
    let process = Process()
    let port: Int
    let directory: String
    var client: TestHTTPClient { TestHTTPClient(port: port, timeoutSeconds: 60) }

    init(upstreams: [Int]) throws {
        guard let nginx = nginxExecutable else { throw HTTPClientError(description: "nginx is not installed") }
        port = try freePort()
        directory = (buildDirectory as NSString).deletingLastPathComponent + "/test-nginx-\(getpid())-\(port)"
        try FileManager.default.createDirectory(atPath: directory + "/logs", withIntermediateDirectories: true)
        // The shipped site file, upstreams and port swapped.
        let shipped = try String(contentsOf: repositoryRoot.appendingPathComponent("deploy/nginx/forzium.conf"), encoding: .utf8)
        var lines: [String] = []
        var replaced = false
        for line in shipped.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("server 127.0.0.1:") {
                guard !replaced else { continue }
                replaced = true
                let parameters = trimmed.split(separator: " ").dropFirst(2).joined(separator: " ")
                for upstream in upstreams { lines.append("    server 127.0.0.1:\(upstream) \(parameters)") }
            } else if trimmed.hasPrefix("listen ") {
                lines.append("    listen 127.0.0.1:\(port);")
            } else {
                lines.append(String(line))
            }
        }
        guard replaced else { throw HTTPClientError(description: "no upstream server lines in deploy/nginx/forzium.conf") }
        try lines.joined(separator: "\n").write(toFile: directory + "/forzium.conf", atomically: true, encoding: .utf8)
        // The main file Debian's nginx.conf would be: what the site file expects around it, paths in the prefix.
        let main = """
            daemon off;
            worker_processes 1;
            pid \(directory)/nginx.pid;
            error_log \(directory)/logs/error.log notice;
            \(getuid() == 0 ? "user root root;" : "")
            events { worker_connections 1024; }
            http {
                log_format upstreams '$status $upstream_addr $upstream_status $request_time';
                access_log \(directory)/logs/access.log upstreams;
                client_body_temp_path \(directory)/body;
                proxy_temp_path \(directory)/proxy;
                fastcgi_temp_path \(directory)/fastcgi;
                uwsgi_temp_path \(directory)/uwsgi;
                scgi_temp_path \(directory)/scgi;
                include \(directory)/forzium.conf;
            }
            """
        try main.write(toFile: directory + "/nginx.conf", atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: nginx)
        process.arguments = ["-p", directory, "-e", directory + "/logs/error.log", "-c", directory + "/nginx.conf"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        let check = try runCommand(nginx, ["-t", "-p", directory, "-e", directory + "/logs/error.log", "-c", directory + "/nginx.conf"], timeout: 30)
        guard check.status == 0 else { throw HTTPClientError(description: "nginx -t failed: \(check.stderr)") }
        try process.run()
        // Up when it accepts a connection (any answer will do).
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if (try? client.request("GET", "/health")) != nil { return }
            if !process.isRunning { break }
            usleep(20_000)
        }
        stop()
        throw HTTPClientError(description: "nginx did not start: \(errorLog)")
    }

    var errorLog: String { (try? String(contentsOfFile: directory + "/logs/error.log", encoding: .utf8)) ?? "" }
    /// Access log lines: `status upstream_addr upstream_status request_time`.
    var accessLog: [String] {
        ((try? String(contentsOfFile: directory + "/logs/access.log", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Waits (bounded) until nginx has sent a request to the gateway on `port` and got 200 after access-log line
    /// `line`: a gateway back on its port is taken again once its passive-health-check `fail_timeout` has passed.
    @discardableResult
    func waitUntilServing(port: Int, afterLine line: Int, timeout: TimeInterval = 20) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if accessLog.dropFirst(line).contains(where: { $0.hasPrefix("200 127.0.0.1:\(port) 200 ") }) { return true }
            usleep(50_000)
        }
        return false
    }

    /// SIGQUIT (graceful), then SIGKILL after a bounded wait; removes the prefix directory.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGQUIT)
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning, Date() < deadline { usleep(10_000) }
            if process.isRunning {
                // Workers outlive a killed master: kill them first, by pid.
                for worker in childProcesses(of: process.processIdentifier) { kill(worker, SIGKILL) }
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { stop() }
}

/// Pids whose parent is `parent` (from /proc/PID/stat).
func childProcesses(of parent: pid_t) -> [pid_t] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    return entries.compactMap { entry -> pid_t? in
        guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 && pid_t(fields[1]) == parent ? pid : nil
    }
}
