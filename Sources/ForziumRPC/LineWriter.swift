#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The single writer of protocol lines: each line goes out whole with write(2) (no stdio buffering), under a lock,
/// so concurrent responders never interleave. Once the other end is gone (EPIPE or any write error) it stays closed
/// and drops further lines; SIGPIPE must be ignored by the process for EPIPE to be seen instead of a kill.
public final class LineWriter: @unchecked Sendable {
    /// The descriptor written to (e.g. 1 for stdout). The caller keeps ownership.
    public let descriptor: Int32
    private let lock = ConditionLock()
    private var failed: Int32?

    public init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    /// True once a write failed (the reader of our output went away).
    public var isClosed: Bool { lock.withLock { failed != nil } }

    /// errno of the failed write, if any.
    public var writeError: Int32? { lock.withLock { failed } }

    /// Writes `line` completely (it should end with LF). Returns false when the output is closed.
    @discardableResult
    public func write(_ line: [UInt8]) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard failed == nil else { return false }
        return line.withUnsafeBytes { writeAll($0) }
    }

    /// Writes one line given in parts (see `LineSink.writeLine(parts:)`), holding the lock throughout so no other line
    /// comes out in between; parts after a failed write are dropped.
    @discardableResult
    public func writeLine(parts body: (_ emit: (UnsafeRawBufferPointer) -> Void) -> Void) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard failed == nil else { return false }
        body { part in
            if failed == nil { _ = writeAll(part) }
        }
        return failed == nil
    }

    /// write(2) until all of `bytes` is out; on failure records it and returns false. Call with the lock held.
    private func writeAll(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            #if canImport(Glibc)
            let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            #else
            let written = Darwin.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            #endif
            if written > 0 {
                offset += written
            } else if written < 0 && errno == EINTR {
                continue
            } else {
                failed = written < 0 ? errno : EPIPE
                return false
            }
        }
        return true
    }
}
