import ForziumJSON
import NIOCore

/// The hot route's plain answer (`InlineCompute`), encoded as HTTP/1.1 by the gateway itself: one buffer holding the
/// status line, the fields and the body, written to the socket in one piece (`HTTPEdgeHandler.writeEncodedResponse`)
/// instead of a head, a body and an end passed through NIOHTTP1's encoder (no `HTTPResponseHead`, no `HTTPHeaders`,
/// one pending write and one promise instead of three writes and two promises).
///
/// The body is written first, behind room reserved for the head; the keep-alive head goes into that room at once, while
/// the buffer is still uniquely referenced, so a kept-alive answer is never copied or moved. For the rare answer after
/// which the connection closes, `encoded(close:)` writes the head again, with `Connection: close`, into the same room
/// (the answer may have been copied on its way to the connection's handler, and that write then copies it).
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

    /// The readable bytes are the keep-alive head and the body; the body starts at `bodyStart`.
    private var buffer: ByteBuffer
    private let bodyStart: Int
    private let kind: String
    private let requestID: RequestID

    /// `writeBody` writes the body into the buffer it is given (after the head's room).
    init(kind: String, clientRequestID: String?, bodyCapacity: Int, writeBody: (inout ByteBuffer) -> Void) {
        self.kind = kind
        let requestID = clientRequestID.map { RequestID.client($0) } ?? .generated(RequestIDGenerator.nextNumber())
        self.requestID = requestID
        let room = Self.longestHead(kind: kind, requestIDLength: requestID.length)
        var buffer = ByteBufferAllocator().buffer(capacity: room + bodyCapacity)
        buffer.moveWriterIndex(to: room)
        buffer.moveReaderIndex(to: room)
        writeBody(&buffer)
        Self.writeHead(into: &buffer, bodyStart: room, kind: kind, requestID: requestID, close: false)
        self.buffer = buffer
        bodyStart = room
    }

    /// The body alone (for an answer that goes through the responder chain after all, to be compressed).
    var body: ByteBuffer { buffer.getSlice(at: bodyStart, length: buffer.writerIndex - bodyStart)! }

    /// The request id the answer carries.
    var requestIDText: String {
        switch requestID {
        case .client(let id): id
        case .generated(let n): String(unsafeUninitializedCapacity: RequestIDGenerator.length(of: n)) {
            RequestIDGenerator.write(n, to: UnsafeMutableRawBufferPointer($0))
        }
        }
    }

    /// The whole response, its readable bytes starting at the status line.
    consuming func encoded(close: Bool) -> ByteBuffer {
        if close { Self.writeHead(into: &buffer, bodyStart: bodyStart, kind: kind, requestID: requestID, close: true) }
        return buffer
    }

    private static let statusAndType: StaticString = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Forzium-Engine: "
    private static let lengthName: StaticString = "\r\nContent-Length: "
    private static let requestIDName: StaticString = "\r\nX-Request-ID: "
    private static let dateName: StaticString = "\r\nDate: "
    private static let connectionClose: StaticString = "\r\nConnection: close"
    private static let end: StaticString = "\r\n\r\n"

    private static func fixedLength(close: Bool) -> Int {
        statusAndType.utf8CodeUnitCount + lengthName.utf8CodeUnitCount + requestIDName.utf8CodeUnitCount
            + dateName.utf8CodeUnitCount + end.utf8CodeUnitCount + HTTPDate.length + (close ? connectionClose.utf8CodeUnitCount : 0)
    }

    private static func longestHead(kind: String, requestIDLength: Int) -> Int {
        fixedLength(close: true) + kind.utf8.count + requestIDLength + 20
    }

    /// Writes the head so that it ends where the body starts, and makes it the start of the readable bytes.
    private static func writeHead(into buffer: inout ByteBuffer, bodyStart: Int, kind: String, requestID: RequestID, close: Bool) {
        JSONWriter.withDecimal(buffer.writerIndex - bodyStart) { length in
            let headLength = fixedLength(close: close) + kind.utf8.count + length.count + requestID.length
            precondition(headLength <= bodyStart, "the head outgrew the room reserved for it")
            var at = bodyStart - headLength
            buffer.moveReaderIndex(to: at)
            at += buffer.setStaticString(statusAndType, at: at)
            at += buffer.setString(kind, at: at)
            at += buffer.setStaticString(lengthName, at: at)
            at += buffer.setBytes(length, at: at)
            at += buffer.setStaticString(requestIDName, at: at)
            switch requestID {
            case .client(let id):
                at += buffer.setString(id, at: at)
            case .generated(let n):
                let offset = at - buffer.readerIndex
                at += buffer.withUnsafeMutableReadableBytes { RequestIDGenerator.write(n, to: UnsafeMutableRawBufferPointer(rebasing: $0[offset...])) }
            }
            at += buffer.setStaticString(dateName, at: at)
            at += HTTPDate.withNow { buffer.setBytes($0, at: at) }
            if close { at += buffer.setStaticString(connectionClose, at: at) }
            at += buffer.setStaticString(end, at: at)
            assert(at == bodyStart)
        }
    }
}
