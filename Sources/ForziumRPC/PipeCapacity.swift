#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The kernel buffer of the pipes that carry protocol lines.
public enum PipeCapacity {
    /// Bytes asked for: 1 MiB instead of Linux's default 64 KiB, so that a 10 MB request or result crosses in about ten
    /// wake-ups of each end instead of 160 (the unprivileged maximum, `/proc/sys/fs/pipe-max-size`, is 1 MiB by default).
    public static let preferred = 1 << 20

    /// Asks for `bytes` of buffer on `descriptor` if it is a pipe (best effort: nothing happens on a file, a terminal,
    /// a socket, or where `F_SETPIPE_SZ` is missing or capped lower). Either end of a pipe may ask; the buffer is the
    /// pipe's. Returns the capacity the pipe has afterwards, or nil when the descriptor is not a pipe.
    @discardableResult
    public static func enlarge(_ descriptor: Int32, to bytes: Int = preferred) -> Int? {
        #if os(Linux)
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFIFO else { return nil }
        let setPipeSize: Int32 = 1031, getPipeSize: Int32 = 1032  // F_SETPIPE_SZ, F_GETPIPE_SZ
        let current = fcntl(descriptor, getPipeSize)
        if current >= 0 && Int(current) >= bytes { return Int(current) }
        _ = fcntl(descriptor, setPipeSize, Int32(clamping: bytes))
        let after = fcntl(descriptor, getPipeSize)
        return after >= 0 ? Int(after) : nil
        #else
        return nil
        #endif
    }
}
