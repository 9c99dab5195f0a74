#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A response read off a real socket.
struct HTTPReply {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
    }
    var text: String { String(decoding: body, as: UTF8.self) }
}

struct HTTPClientError: Error, CustomStringConvertible {
    var description: String
}

/// A deliberately small HTTP/1.1 client over a blocking 127.0.0.1 socket (one request per connection,
/// `Connection: close`), with a receive timeout so no test can hang.
struct TestHTTPClient {
    var port: Int
    var timeoutSeconds: Int = 60

    func request(_ method: String, _ path: String, body: [UInt8]? = nil, contentType: String? = "application/json",
                 headers: [(String, String)] = []) throws -> HTTPReply {
        let fd = try connectSocket()
        defer { close(fd) }
        try send(fd, head(method, path, body: body, contentType: contentType, headers: headers) + (body ?? []))
        let raw = try readAll(fd) { _ in }
        return try Self.parse(raw)
    }

    /// Sends a request and calls `onData(allBytesSoFar, secondsSinceSend)` after every read until EOF.
    func streaming(_ method: String, _ path: String, body: [UInt8], headers: [(String, String)] = [],
                   onData: ([UInt8], Double) -> Void) throws -> HTTPReply {
        let fd = try connectSocket()
        defer { close(fd) }
        let started = Date()
        try send(fd, head(method, path, body: body, contentType: "application/json", headers: headers) + body)
        let raw = try readAll(fd) { raw in onData(raw, Date().timeIntervalSince(started)) }
        return try Self.parse(raw)
    }

    /// Sends the head with `Expect: 100-continue`, returns what arrived before the body was sent (the interim
    /// response, if any, within `wait` seconds), then sends the body and returns the final reply.
    func expectContinue(_ path: String, body: [UInt8], wait: Int = 5) throws -> (interim: String, reply: HTTPReply) {
        let fd = try connectSocket()
        defer { close(fd) }
        try send(fd, head("POST", path, body: body, contentType: "application/json", headers: [("Expect", "100-continue")]))
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var interim: [UInt8] = []
        if poll(&pfd, 1, Int32(wait * 1000)) > 0 {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n > 0 { interim = Array(chunk[0..<n]) }
        }
        let interimText = String(decoding: interim, as: UTF8.self)
        if interimText.hasPrefix("HTTP/1.1 100") {
            try send(fd, body)
            let raw = try readAll(fd) { _ in }
            return (interimText, try Self.parse(raw))
        }
        let raw = interim + (try readAll(fd) { _ in })
        return (interimText, try Self.parse(raw))
    }

    /// Sends a request, reads until `bytes` bytes arrived, then closes the connection (a client going away).
    func abandon(_ path: String, body: [UInt8], after bytes: Int) throws -> Int {
        let fd = try connectSocket()
        try send(fd, head("POST", path, body: body, contentType: "application/json", headers: []) + body)
        var received = 0
        var chunk = [UInt8](repeating: 0, count: 4096)
        while received < bytes {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n <= 0 { break }
            received += n
        }
        close(fd)
        return received
    }

    /// Sends a whole request and closes the connection without reading anything (a client giving up while it waits).
    func sendThenClose(_ path: String, body: [UInt8], headers: [(String, String)] = []) throws {
        let fd = try connectSocket()
        try send(fd, head("POST", path, body: body, contentType: "application/json", headers: headers) + body)
        close(fd)
    }

    private func readAll(_ fd: Int32, onData: ([UInt8]) -> Void) throws -> [UInt8] {
        var raw: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == ECONNRESET, !raw.isEmpty { break }
                throw HTTPClientError(description: "recv failed or timed out: errno \(errno)")
            }
            if n == 0 { break }
            raw.append(contentsOf: chunk[0..<n])
            onData(raw)
        }
        return raw
    }

    private func head(_ method: String, _ path: String, body: [UInt8]?, contentType: String?, headers: [(String, String)]) -> [UInt8] {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        if let body {
            text += "Content-Length: \(body.count)\r\n"
            if let contentType { text += "Content-Type: \(contentType)\r\n" }
        }
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        return Array((text + "\r\n").utf8)
    }

    private func connectSocket() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HTTPClientError(description: "socket failed") }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw HTTPClientError(description: "connect to 127.0.0.1:\(port) failed: errno \(errno)")
        }
        return fd
    }

    private func send(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                // The server may answer (413) and close before reading the whole body; the reply is still readable.
                return
            }
            offset += n
        }
    }

    static func parse(_ raw: [UInt8]) throws -> HTTPReply {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = find(separator, in: raw[...]) else {
            throw HTTPClientError(description: "no complete response head in \(raw.count) bytes")
        }
        let headText = String(decoding: raw[..<end], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw HTTPClientError(description: "bad status line") }
        let headers: [(String, String)] = lines.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var body = Array(raw[(end + 4)...])
        if headers.contains(where: { $0.0.lowercased() == "transfer-encoding" && $0.1.lowercased().contains("chunked") }) {
            body = try dechunk(body)
        }
        return HTTPReply(status: status, headers: headers, body: body)
    }

    static func dechunk(_ bytes: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            guard let lineEnd = find([13, 10], in: bytes[i...]) else { break }
            let sizeText = String(decoding: bytes[i..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                throw HTTPClientError(description: "bad chunk size")
            }
            if size == 0 { break }
            let start = lineEnd + 2
            guard start + size <= bytes.count else { throw HTTPClientError(description: "truncated chunk") }
            out.append(contentsOf: bytes[start..<(start + size)])
            i = start + size + 2
        }
        return out
    }

    static func find(_ needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var i = haystack.startIndex
        while i <= haystack.endIndex - needle.count {
            if haystack[i] == needle[0], haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}
