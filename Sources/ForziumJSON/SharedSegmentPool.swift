#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Shared-memory segments a process creates once and fills again for request after request.
///
/// A new segment costs its creator the kernel's page allocation (zeroing and accounting every 4 KiB page) on top of
/// the copy; a segment already holding pages is overwritten in place, so a warm one costs only the copy. The pool
/// keeps released segments, with their pages, up to `retainedBytes` in all; a segment released past that is removed.
///
/// Segments are ordinary `SharedMatrixSegment` objects (`/forzium-<pid>-<n>`, exactly `byteCount` bytes long), so a
/// reader opens them by name as it would any other; the pool's process removes them (`release` past the budget,
/// `removeAll`, or `SharedMatrixSegment.removeOrphans()` in another process once this one is gone).
public final class SharedSegmentPool: @unchecked Sendable {
    /// One segment: its name, an open read-write descriptor, and its current size.
    public final class Segment: @unchecked Sendable {
        public let name: String
        package let descriptor: Int32
        /// The segment's size in bytes (what a reader's size check sees).
        public fileprivate(set) var byteCount: Int

        fileprivate init(name: String, descriptor: Int32, byteCount: Int) {
            self.name = name
            self.descriptor = descriptor
            self.byteCount = byteCount
        }

        /// The size the segment has now (another process may have resized it); nil when it cannot be read.
        public func currentByteCount() -> Int? {
            var info = stat()
            return fstat(descriptor, &info) == 0 ? Int(info.st_size) : nil
        }

        /// Writes `bytes` at `offset`; false on an error (`ENOSPC` when `/dev/shm` is full) or past the segment's end.
        public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> Bool {
            guard offset >= 0, bytes.count <= byteCount - offset else { return false }
            return SharedMatrixSegment.write(descriptor, bytes, at: offset)
        }

        /// Fills `destination` from `offset`; false when those bytes cannot all be read.
        public func read(into destination: UnsafeMutableRawBufferPointer, at offset: Int) -> Bool {
            guard offset >= 0, destination.count <= byteCount - offset else { return false }
            return SharedMatrixSegment.read(descriptor, into: destination, at: offset)
        }
    }

    /// Bytes of released segments kept for reuse, at most.
    public let retainedBytes: Int
    private var free: [Segment] = []
    private var freeBytes = 0
    private var lock = pthread_mutex_t()

    public init(retainedBytes: Int) {
        self.retainedBytes = max(0, retainedBytes)
        pthread_mutex_init(&lock, nil)
    }

    deinit {
        removeAll()
        pthread_mutex_destroy(&lock)
    }

    /// A segment of exactly `byteCount` bytes (at least one): the released one closest in size, resized, or a new one.
    /// Its contents are unspecified until written. nil when shared memory is unavailable.
    public func acquire(byteCount: Int) -> Segment? {
        guard byteCount > 0 else { return nil }
        let reused: Segment? = locked {
            // The smallest that is large enough (shrinking hands back only its tail), else the largest (it grows).
            let fits = free.indices.filter { free[$0].byteCount >= byteCount }
            let pick = fits.min { free[$0].byteCount < free[$1].byteCount } ?? free.indices.max { free[$0].byteCount < free[$1].byteCount }
            guard let pick else { return nil }
            freeBytes -= free[pick].byteCount
            return free.remove(at: pick)
        }
        if let segment = reused {
            if SharedMatrixSegment.resize(segment.descriptor, to: byteCount) {
                segment.byteCount = byteCount
                return segment
            }
            discard(segment)
        }
        let name = SharedMatrixSegment.newName()
        let fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        guard SharedMatrixSegment.resize(fd, to: byteCount) else {
            close(fd)
            shm_unlink(name)
            return nil
        }
        return Segment(name: name, descriptor: fd, byteCount: byteCount)
    }

    /// Gives `segment` back: kept for the next `acquire` while the released segments stay within `retainedBytes`,
    /// removed otherwise. Give back only a segment no other process will still write (for an engine's input or result
    /// segment: once the engine has answered); otherwise `discard` it. Its size is read again, since the process that
    /// wrote a result into it may have resized it.
    public func release(_ segment: Segment) {
        guard let size = segment.currentByteCount() else { return discard(segment) }
        segment.byteCount = size
        let kept = locked { () -> Bool in
            guard freeBytes + segment.byteCount <= retainedBytes else { return false }
            free.append(segment)
            freeBytes += segment.byteCount
            return true
        }
        if !kept { discard(segment) }
    }

    /// Removes every released segment (segments still acquired are removed when they are released past the budget).
    public func removeAll() {
        let segments = locked { () -> [Segment] in
            defer { free = []; freeBytes = 0 }
            return free
        }
        for segment in segments { discard(segment) }
    }

    /// Bytes held by released segments.
    public var heldBytes: Int { locked { freeBytes } }

    /// Removes `segment` without keeping it (e.g. an engine that never answered may still read or write it).
    public func discard(_ segment: Segment) {
        close(segment.descriptor)
        shm_unlink(segment.name)
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return body()
    }
}
