#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// An engine sent a line longer than the gateway accepts: the engine is treated as broken.
package struct EngineLineTooLong: Error, CustomStringConvertible {
    package var limit: Int
    package var description: String { "engine sent a line longer than \(limit) bytes" }
}

/// Frames newline-terminated lines (a trailing CR is dropped; empty lines are skipped).
///
/// The decoder remembers how far it already searched, so a line arriving in many reads is scanned once, not once per
/// read. A line longer than `maxLineBytes` either fails the channel (`overflow: .fail`, engine stdout) or is cut into
/// pieces of that size (`overflow: .split`, engine stderr going to the log).
package struct EngineLineDecoder: ByteToMessageDecoder {
    package typealias InboundOut = ByteBuffer

    package enum Overflow: Sendable { case fail, split }

    private let maxLineBytes: Int
    private let overflow: Overflow
    /// Bytes after the reader index already known to hold no newline.
    private var scanned = 0

    package init(maxLineBytes: Int, overflow: Overflow = .fail) {
        self.maxLineBytes = max(1, maxLineBytes)
        self.overflow = overflow
    }

    package mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let available = buffer.readableBytes
        let newline: Int? = buffer.withUnsafeReadableBytes { raw -> Int? in
            guard scanned < raw.count, let base = raw.baseAddress else { return nil }
            guard let hit = memchr(base + scanned, 0x0A, raw.count - scanned) else { return nil }
            return base.distance(to: UnsafeRawPointer(hit))
        }
        guard let newline else {
            scanned = available
            if available > maxLineBytes {
                switch overflow {
                case .fail:
                    throw EngineLineTooLong(limit: maxLineBytes)
                case .split:
                    scanned = 0
                    let piece = buffer.readSlice(length: maxLineBytes)!
                    context.fireChannelRead(NIOAny(piece))
                    return .continue
                }
            }
            return .needMoreData
        }
        scanned = 0
        if newline > maxLineBytes, overflow == .fail { throw EngineLineTooLong(limit: maxLineBytes) }
        var line = buffer.readSlice(length: newline)!
        buffer.moveReaderIndex(forwardBy: 1)
        if line.readableBytes > 0, line.getInteger(at: line.writerIndex - 1, as: UInt8.self) == 0x0D {
            line.moveWriterIndex(to: line.writerIndex - 1)
        }
        if line.readableBytes > 0 { context.fireChannelRead(NIOAny(line)) }
        return .continue
    }

    package mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        // A last piece without its newline: log text is delivered as is (an engine's last words); a protocol line cut
        // off by the engine's death is dropped.
        if buffer.readableBytes > 0, overflow == .split {
            let rest = buffer.readSlice(length: buffer.readableBytes)!
            scanned = 0
            context.fireChannelRead(NIOAny(rest))
        }
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }
}
