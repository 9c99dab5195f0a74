import NIOCore

/// The hot route's plain answer (`InlineCompute`), encoded as HTTP/1.1 by the gateway itself: one buffer holding the
/// status line, the fields and the body, written to the socket in one piece (`HTTPEdgeHandler.writeEncodedResponse`)
/// instead of a head, a body and an end passed through NIOHTTP1's encoder (no `HTTPResponseHead`, no `HTTPHeaders`,
/// one pending write and one promise instead of three writes and two promises).
///
/// The body is written first, behind room reserved for the head; the head goes into that room once the connection's
/// handler knows whether the connection closes after it (`encoded(close:)`), so the bytes are never moved.
///
/// The fields are those the responder chain gives the same answer, in the same order: `Content-Type`,
/// `X-Forzium-Engine`, `Content-Length`, `X-Request-ID`, `Date`, and `Connection: close` when the connection ends.
struct InlineAnswer: Sendable {
    private enum RequestID: Sendable {
        case client(String)
        case generated(UInt64)

        var length: Int {
            switch self {
            case .client(let id): id.utf8.count
            case .generated(let n): RequestIDGenerator.length(of: n)
            }
        }
    }

    /// The body is readable; the bytes before its reader index are the head's room.
    private var buffer: ByteBuffer
    private let kind: String
    private let requestID: RequestID

    /// `writeBody` writes the body into the buffer it is given (after the head's room).
    init(kind: String, clientRequestID: String?, bodyCapacity: Int, writeBody: (inout ByteBuffer) -> Void) {
        self.kind = kind
        requestID = clientRequestID.map { .client($0) } ?? .generated(RequestIDGenerator.nextNumber())
        let room = Self.longestHead(kind: kind, requestIDLength: requestID.length)
        var buffer = ByteBuffer()
        buffer.reserveCapacity(room + bodyCapacity)
        buffer.moveWriterIndex(to: room)
        buffer.moveReaderIndex(to: room)
        writeBody(&buffer)
        self.buffer = buffer
    }

    /// The body alone (for an answer that goes through the responder chain after all, to be compressed).
    var body: ByteBuffer { buffer }

    /// The request id the answer carries.
    var requestIDText: String {
        switch requestID {
        case .client(let id): id
        case .generated(let n): String(unsafeUninitializedCapacity: RequestIDGenerator.length(of: n)) {
            RequestIDGenerator.write(n, to: UnsafeMutableRawBufferPointer($0))
        }
        }
    }

    private static let statusAndType: StaticString = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Forzium-Engine: "
    private static let lengthName: StaticString = "\r\nContent-Length: "
    private static let requestIDName: StaticString = "\r\nX-Request-ID: "
    private static let dateName: StaticString = "\r\nDate: "
    private static let connectionClose: StaticString = "\r\nConnection: close"
    private static let end: StaticString = "\r\n\r\n"
    /// `Date` values are 29 bytes (IMF-fixdate).
    private static let dateLength = 29

    private static func fixedLength(close: Bool) -> Int {
        statusAndType.utf8CodeUnitCount + lengthName.utf8CodeUnitCount + requestIDName.utf8CodeUnitCount
            + dateName.utf8CodeUnitCount + end.utf8CodeUnitCount + dateLength + (close ? connectionClose.utf8CodeUnitCount : 0)
    }

    private static func longestHead(kind: String, requestIDLength: Int) -> Int {
        fixedLength(close: true) + kind.utf8.count + requestIDLength + 20
    }

    /// The whole response: the head written into the room before the body, the buffer's readable bytes starting at
    /// the status line.
    consuming func encoded(close: Bool) -> ByteBuffer {
        let bodyStart = buffer.readerIndex
        let length = String(buffer.readableBytes)
        let date = HTTPDate.now()
        let headLength = Self.fixedLength(close: close) + kind.utf8.count + length.utf8.count + requestID.length
            + date.utf8.count - Self.dateLength
        precondition(headLength <= bodyStart, "the head outgrew the room reserved for it")
        var at = bodyStart - headLength
        buffer.moveReaderIndex(to: at)
        at += buffer.setStaticString(Self.statusAndType, at: at)
        at += buffer.setString(kind, at: at)
        at += buffer.setStaticString(Self.lengthName, at: at)
        at += buffer.setString(length, at: at)
        at += buffer.setStaticString(Self.requestIDName, at: at)
        switch requestID {
        case .client(let id):
            at += buffer.setString(id, at: at)
        case .generated(let n):
            let offset = at - buffer.readerIndex
            at += buffer.withUnsafeMutableReadableBytes { RequestIDGenerator.write(n, to: UnsafeMutableRawBufferPointer(rebasing: $0[offset...])) }
        }
        at += buffer.setStaticString(Self.dateName, at: at)
        at += buffer.setString(date, at: at)
        if close { at += buffer.setStaticString(Self.connectionClose, at: at) }
        at += buffer.setStaticString(Self.end, at: at)
        assert(at == bodyStart)
        return buffer
    }
}
