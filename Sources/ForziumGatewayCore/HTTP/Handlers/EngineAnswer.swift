import ForziumJSON
import ForziumRPC
import Hummingbird
import NIOCore

/// How engine answers become HTTP: the error table, sliced bodies, and the small JSON pieces around a result.
enum EngineAnswer {
    /// Maps a JSON-RPC error from an engine onto the status table.
    static func map(engineError error: RPCError) -> GatewayError {
        switch error.knownCode {
        case .invalidParams?: GatewayError(.validation, error.message, errors: error.issues)
        case .tooLarge?: GatewayError(.bodyTooLarge, error.message)
        case .overloaded?: GatewayError(.unavailable(retryAfterSeconds: 1), "the engine is overloaded: \(error.message)")
        case .shuttingDown?: GatewayError(.unavailable(retryAfterSeconds: 1), "the engine is shutting down")
        case .methodNotFound?: GatewayError(.validation, "the engine does not support this operation: \(error.message)")
        case .internalError?: GatewayError(.engineInternal, "the engine failed: \(error.message)")
        case .requestCancelled?: GatewayError(.deadline, "the request was cancelled: \(error.message)")
        case .parseError?, .invalidRequest?: GatewayError(.engineFailed, "the engine rejected the request: \(error.message)")
        case nil: GatewayError(.engineInternal, "engine error \(error.code): \(error.message)")
        }
    }

    /// A response body of `head`, `text` and `tail`. A large text goes out in slices of 1 MiB, each copied into a
    /// buffer only as it is written, so the response never exists twice in memory (a 1024² result is 20 MB of text).
    static func body(head: ByteBuffer, _ text: [UInt8], tail: ByteBuffer) -> ResponseBody {
        let slice = 1 << 20
        guard text.count > slice else { return ResponseBody(byteBuffer: whole(head: head, text, tail: tail)) }
        return ResponseBody(contentLength: head.readableBytes + text.count + tail.readableBytes) { writer in
            try await writer.write(head)
            var start = 0
            while start < text.count {
                let end = min(start + slice, text.count)
                try await writer.write(ByteBuffer(bytes: text[start..<end]))
                start = end
            }
            try await writer.write(tail)
            try await writer.finish(nil)
        }
    }

    /// `head`, `text` and `tail` in one buffer (a small answer).
    static func whole(head: ByteBuffer, _ text: [UInt8], tail: ByteBuffer) -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(head.readableBytes + text.count + tail.readableBytes)
        out.writeImmutableBuffer(head)
        out.writeBytes(text)
        out.writeImmutableBuffer(tail)
        return out
    }

    /// `12.345`: milliseconds with three decimals, written without Foundation or an intermediate string.
    static func writeMilliseconds(_ value: Double, into out: inout ByteBuffer) {
        // Rounded half away from zero, as `rounded()` would, without its call into libm (the fraction is exact).
        let scaled = max(0, value) * 1000
        var micros = Int(scaled)
        if scaled - Double(micros) >= 0.5 { micros += 1 }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { buffer in
            var at = buffer.count
            var rest = micros
            for place in 0... {
                at -= 1
                buffer[at] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                if place == 2 {
                    at -= 1
                    buffer[at] = UInt8(ascii: ".")
                }
                if place >= 3 && rest == 0 { break }
            }
            out.writeBytes(UnsafeRawBufferPointer(rebasing: buffer[at...]))
        }
    }

    /// `s` as a JSON string literal: as is between quotes when nothing needs escaping (operation and engine names).
    static func writeJSONString(_ s: String, into out: inout ByteBuffer) {
        var s = s
        let written = s.withUTF8 { utf8 -> Bool in
            for byte in utf8 where JSONWriter.needsEscape(byte) { return false }
            out.writeInteger(UInt8(ascii: "\""))
            out.writeBytes(UnsafeRawBufferPointer(utf8))
            out.writeInteger(UInt8(ascii: "\""))
            return true
        }
        if !written {
            var bytes: [UInt8] = []
            JSONWriter.writeString(s, into: &bytes)
            out.writeBytes(bytes)
        }
    }
}
