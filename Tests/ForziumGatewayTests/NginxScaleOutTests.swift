#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// Three gateways behind Debian's nginx running `deploy/nginx/forzium.conf`.
@Suite("Scale-out: nginx in front of three gateways", .serialized)
struct NginxScaleOutTests {
    /// Under client load through nginx: one gateway SIGKILLed, later every gateway rolled (SIGTERM, restart on the same
    /// port) one at a time. nginx's retries (`proxy_next_upstream error timeout http_502 http_503 non_idempotent`) and
    /// passive health checks must hide all of it: 0 failed client requests.
    @Test(.enabled(if: nginxExecutable != nil, "nginx is not installed (scripts/install-deps.sh --test installs it)"))
    func killOneAndRollAllUnderLoadWithoutAFailedRequest() throws {
        let ports = try (0..<3).map { _ in try freePort() }
        var gateways = try ports.map { port in try GatewayProcess(engine: nil, arguments: ["--port", String(port)]) }
        defer { for gateway in gateways { gateway.stop() } }
        #expect(gateways.map(\.port) == ports)
        let nginx = try NginxProcess(upstreams: ports)
        defer { nginx.stop() }
        #expect(try nginx.client.request("GET", "/ready").status == 200)

        let load = LoadDriver(port: nginx.port, threads: 6)
        defer { load.stop() }
        #expect(load.waitForMore(150))

        // 1. SIGKILL one gateway mid-load (its engine sees stdin close and exits by itself).
        let victim = gateways[1]
        kill(victim.process.processIdentifier, SIGKILL)
        victim.process.waitUntilExit()
        #expect(load.waitForMore(300))
        var mark = nginx.accessLog.count
        gateways[1] = try GatewayProcess(engine: nil, arguments: ["--port", String(ports[1])])
        #expect(nginx.waitUntilServing(port: ports[1], afterLine: mark), "the restarted gateway never got traffic again")

        // 2. Roll all three as an operator would: SIGTERM one, wait for its exit, start the new one on the same port,
        // and go on to the next only once nginx sends it requests again (after the passive check's fail_timeout).
        for index in gateways.indices {
            let old = gateways[index]
            kill(old.process.processIdentifier, SIGTERM)
            #expect(load.waitForMore(50))
            let status = old.stop(timeout: 30)
            #expect(status != nil, "gateway \(index) did not stop within 30 s of SIGTERM")
            mark = nginx.accessLog.count
            gateways[index] = try GatewayProcess(engine: nil, arguments: ["--port", String(ports[index])])
            #expect(nginx.waitUntilServing(port: ports[index], afterLine: mark), "gateway \(index) never got traffic again")
        }
        load.stop()

        #expect(load.count > 1000)
        let failed = load.failures.count
        #expect(failed == 0, """
            \(load.failureSummary(limit: 2))
            nginx errors: \(nginx.errorLog.split(separator: "\n").filter { !$0.contains("[notice]") }.prefix(12).joined(separator: "\n"))
            requests not answered 200 by the first gateway tried: \(nginx.accessLog.filter { !$0.hasPrefix("200 127.0.0.1:") || $0.contains(",") }.prefix(20).joined(separator: "\n"))
            """)
        // Every gateway served, and nginx did retry (`upstream_addr` lists more than one gateway for some requests).
        let log = nginx.accessLog
        for port in ports {
            #expect(log.contains { $0.contains("127.0.0.1:\(port)") }, "gateway on \(port) never served")
        }
        #expect(log.contains { $0.contains(", ") }, "no request was retried on another gateway")
    }
}
