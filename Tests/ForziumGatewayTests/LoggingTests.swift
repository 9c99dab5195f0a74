#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ForziumJSON
import ForziumLogging
import Logging
import Testing
@testable import ForziumGatewayCore

/// Lines written to a pipe by `body`, read back.
private func capturedLines(_ body: (Int32) -> Void) throws -> [String] {
    var fds: [Int32] = [-1, -1]
    guard pipe(&fds) == 0 else { throw HTTPClientError(description: "pipe failed") }
    body(fds[1])
    close(fds[1])
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(fds[0], &chunk, chunk.count)
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    close(fds[0])
    return String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
}

private func parsedObject(_ line: String) throws -> JSONObject {
    guard case .object(let object) = try JSONParser().parse(Array(line.utf8)) else {
        throw HTTPClientError(description: "not an object: \(line)")
    }
    return object
}

@Suite("JSON log lines")
struct JSONLogTests {
    @Test func eachLineIsOneObjectWithEscapedTextAndMetadataAsMembers() throws {
        let lines = try capturedLines { fd in
            var logger = Logger(label: "forzium.test") { JSONLogHandler(label: $0, descriptor: fd, metadataProvider: nil) }
            logger.logLevel = .debug
            logger[metadataKey: "engine.slot"] = "3"
            logger.debug("a \"quoted\"\nmessage\twith \u{01} control", metadata: ["nested": ["k": "v", "list": ["a", "b"]], "n": "\(42)"])
            logger.trace("below the level: not written")
            logger.error("second")
        }
        #expect(lines.count == 2)
        let first = try parsedObject(lines[0])
        #expect(first["msg"] == .string("a \"quoted\"\nmessage\twith \u{01} control"))
        #expect(first["level"] == .string("debug"))
        #expect(first["logger"] == .string("forzium.test"))
        #expect(first["engine.slot"] == .string("3"))
        #expect(first["n"] == .string("42"))
        guard case .object(let nested)? = first["nested"] else { Issue.record("nested metadata is not an object"); return }
        #expect(nested["k"] == .string("v"))
        guard case .string(let ts)? = first["ts"] else { Issue.record("no ts"); return }
        #expect(ts.count == 24 && ts.hasSuffix("Z"), "\(ts)")
        #expect(try parsedObject(lines[1])["level"] == .string("error"))
    }

    @Test func engineLinesAreReEmittedAsFieldsNotNestedText() throws {
        let engineLine = #"{"ts":"2026-01-01T00:00:00.000Z","level":"warning","logger":"forzium-engine","msg":"rejected a line","source":"ForziumEngineCore","max_line_bytes":"16"}"#
        let lines = try capturedLines { fd in
            var logger = Logger(label: "forzium.gateway") { JSONLogHandler(label: $0, descriptor: fd, metadataProvider: nil) }
            logger[metadataKey: "engine.pid"] = "77"
            EngineLogRelay.relay(engineLine, logger: logger)
            EngineLogRelay.relay("Fatal error: not a JSON line", logger: logger)
        }
        #expect(lines.count == 2)
        let relayed = try parsedObject(lines[0])
        #expect(relayed["msg"] == .string("rejected a line"))
        #expect(relayed["level"] == .string("warning"))
        #expect(relayed["engine.logger"] == .string("forzium-engine"))
        #expect(relayed["engine.pid"] == .string("77"))
        #expect(relayed["max_line_bytes"] == .string("16"))
        #expect(relayed["source"] == .string("ForziumEngineCore"))
        #expect(relayed["ts"] != .string("2026-01-01T00:00:00.000Z"), "one timestamp: the gateway's")
        let plain = try parsedObject(lines[1])
        #expect(plain["msg"] == .string("engine: Fatal error: not a JSON line"))
    }
}

@Suite("Log formats and the access log over real processes", .serialized)
struct LogFormatIntegrationTests {
    @Test func enginesWriteJSONLinesWhenAsked() throws {
        for name in engineBinaries {
            let out = try runCommand(buildDirectory + "/" + name, ["--log-format", "json"], stdin: "", timeout: 30)
            #expect(out.status == 0)
            let lines = out.stderr.split(separator: "\n").map(String.init)
            #expect(!lines.isEmpty)
            for line in lines {
                let object = try parsedObject(line)
                #expect(object["msg"] != nil && object["level"] != nil, "\(name): \(line)")
            }
            let bad = try runCommand(buildDirectory + "/" + name, ["--log-format", "xml"], stdin: "", timeout: 30)
            #expect(bad.status != 0 && bad.stderr.contains("--log-format"))
        }
    }

    @Test func gatewayJSONLogCarriesEngineFieldsAndAccessLines() throws {
        let gateway = try GatewayProcess(engine: "forzium-engine", arguments: ["--log-format", "json"],
                                         environment: ["FORZIUM_ACCESS_LOG": "1"])
        let reply = try gateway.client.request("POST", "/compute", body: json(#"{"data":[[1,2]],"operation":"sum"}"#),
                                               headers: [("X-Request-ID", "access-1")])
        #expect(reply.status == 200)
        #expect(try gateway.client.request("GET", "/nowhere").status == 404)
        #expect(gateway.waitUntil(timeout: 10) { gateway.log.contains("access-1") })
        gateway.stop()
        let lines = gateway.log.split(separator: "\n").map(String.init)
        let objects = try lines.map(parsedObject)
        // The engine's start-up line, re-emitted with its fields and the engine's pid and slot.
        #expect(objects.contains { $0["msg"] == .string("serving JSON-RPC on stdio") && $0["kind"] == .string("fallback")
            && $0["engine.slot"] == .string("0") && $0["engine.logger"] == .string("forzium-engine") })
        #expect(!lines.contains { $0.contains(#""msg":"engine: "#) }, "no engine line nested as text")
        // The access log.
        let access = objects.filter { $0["msg"] == .string("request") }
        let compute = access.first { $0["request_id"] == .string("access-1") }
        #expect(compute?["method"] == .string("POST"))
        #expect(compute?["path"] == .string("/compute"))
        #expect(compute?["status"] == .string("200"))
        #expect(compute?["engine"] == .string("fallback"))
        #expect(compute?["bytes"] == .string(String(reply.body.count)))
        #expect(compute?["duration_ms"] != nil)
        #expect(access.contains { $0["path"] == .string("/nowhere") && $0["status"] == .string("404") })
    }
}
