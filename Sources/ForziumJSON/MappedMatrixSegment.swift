#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A shared-memory segment mapped into this process, for computing from and into it in place (the SIMD engine's
/// matmul over segments: no copy of the inputs into the heap, none of the result out of it).
///
/// An output segment gets all its pages allocated (`posix_fallocate`) before it is first mapped, so a full `/dev/shm`
/// is an error at that point, never a SIGBUS on a store.
///
/// A caller's segments that it reuses stay mapped after use (`SegmentMappingCache`): the gateway hands the same pooled
/// segments to the engine request after request, and mapping a 1024² request's three 8 MiB segments afresh
/// (`MAP_POPULATE`, then an unmap that interrupts every thread that touched them) took ~3 ms of its ~35.
public final class MappedMatrixSegment: @unchecked Sendable {
    public let name: String
    /// The segment's size in bytes.
    public var byteCount: Int { mapping.byteCount }
    /// Whether this process created it (and removes it if the answer that names it is never sent).
    public let created: Bool
    private let mapping: SegmentMapping

    private init(name: String, created: Bool, mapping: SegmentMapping) {
        self.name = name
        self.created = created
        self.mapping = mapping
    }

    /// The elements (little-endian binary64 on a little-endian machine, which is the only kind that maps them).
    public var doubles: UnsafeMutablePointer<Double> { mapping.base.assumingMemoryBound(to: Double.self) }

    /// The existing segment `name` holding exactly `byteCount` bytes, mapped with its pages in place (read-write where
    /// this process may write it, so that the same mapping serves when the segment later comes back as a result;
    /// nothing here writes an input); nil when it cannot be (the caller then reads it the ordinary way, which reports
    /// why). `keep`: leave it mapped for the next request that names it — for a caller that reuses its segments (one
    /// that also names its own result segment, as the gateway's pool does); a segment used once and removed would
    /// otherwise stay in memory until the next look at the kept mappings.
    public static func open(_ name: String, byteCount: Int, keep: Bool = false) -> MappedMatrixSegment? {
        guard byteCount > 0, SharedMatrixSegment.isValidName(name) else { return nil }
        var writable = true
        var fd = shm_open(name, O_RDWR | O_CLOEXEC, 0)
        if fd < 0 && errno == EACCES {
            writable = false
            fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0)
        }
        guard fd >= 0 else { return nil }
        guard let identity = SegmentIdentity(fd), identity.size == byteCount else {
            close(fd)
            return nil
        }
        let cache = SegmentMappingCache.shared
        if let kept = cache.take(name: name, identity: identity, writable: false) {
            close(fd)
            return MappedMatrixSegment(name: name, created: false, mapping: kept)
        }
        guard let mapping = SegmentMapping(fd: fd, identity: identity, byteCount: byteCount, writable: writable) else {
            close(fd)
            return nil
        }
        if keep {
            cache.keep(mapping, name: name)
        } else {
            mapping.closeDescriptor()
        }
        return MappedMatrixSegment(name: name, created: false, mapping: mapping)
    }

    /// The caller's existing segment `name`, resized to `byteCount` bytes with every page allocated, mapped for
    /// writing a result into and left mapped for the next request that names it; nil when it cannot be.
    public static func openForResult(_ name: String, byteCount: Int) -> MappedMatrixSegment? {
        guard byteCount > 0, SharedMatrixSegment.isValidName(name) else { return nil }
        let fd = shm_open(name, O_RDWR | O_CLOEXEC, 0)
        guard fd >= 0 else { return nil }
        let cache = SegmentMappingCache.shared
        // Mapped before at this size (so resized and its pages allocated then): as it is.
        if let identity = SegmentIdentity(fd), identity.size == byteCount,
           let kept = cache.take(name: name, identity: identity, writable: true) {
            close(fd)
            return MappedMatrixSegment(name: name, created: false, mapping: kept)
        }
        guard prepare(fd, byteCount: byteCount), let identity = SegmentIdentity(fd),
              let mapping = SegmentMapping(fd: fd, identity: identity, byteCount: byteCount, writable: true) else {
            close(fd)
            return nil
        }
        cache.keep(mapping, name: name)
        return MappedMatrixSegment(name: name, created: false, mapping: mapping)
    }

    /// A new segment of this process of `byteCount` bytes with every page allocated, mapped for writing a result
    /// into; nil (and nothing left behind) when shared memory is unavailable or full. Not kept mapped: its reader
    /// removes it.
    public static func createForResult(byteCount: Int) -> MappedMatrixSegment? {
        guard byteCount > 0 else { return nil }
        let name = SharedMatrixSegment.newName()
        let fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        guard prepare(fd, byteCount: byteCount), let identity = SegmentIdentity(fd),
              let mapping = SegmentMapping(fd: fd, identity: identity, byteCount: byteCount, writable: true) else {
            close(fd)
            shm_unlink(name)
            return nil
        }
        mapping.closeDescriptor()
        return MappedMatrixSegment(name: name, created: true, mapping: mapping)
    }

    /// Sizes `fd` to `byteCount` and allocates its pages.
    private static func prepare(_ fd: Int32, byteCount: Int) -> Bool {
        guard SharedMatrixSegment.resize(fd, to: byteCount) else { return false }
        #if os(Linux)
        return posix_fallocate(fd, 0, off_t(byteCount)) == 0
        #else
        return true
        #endif
    }
}

/// Which object an open segment is (a name removed and made again is another object) and its size now.
struct SegmentIdentity: Equatable {
    let device: UInt64
    let inode: UInt64
    let size: Int
    /// Names pointing at it (0: removed).
    let links: UInt64

    init?(_ fd: Int32) {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        device = UInt64(truncatingIfNeeded: info.st_dev)
        inode = UInt64(truncatingIfNeeded: info.st_ino)
        size = Int(info.st_size)
        links = UInt64(truncatingIfNeeded: info.st_nlink)
    }

    func isSameObject(as other: SegmentIdentity) -> Bool { device == other.device && inode == other.inode }
}

/// One mapping of a segment, unmapped (and its descriptor closed) when the last holder lets go. The descriptor is kept
/// while the mapping may be reused, to tell whether the segment was removed or resized since.
final class SegmentMapping: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let byteCount: Int
    let writable: Bool
    let identity: SegmentIdentity
    private(set) var descriptor: Int32

    init?(fd: Int32, identity: SegmentIdentity, byteCount: Int, writable: Bool) {
        #if _endian(little)
        #if os(Linux)
        let flags = MAP_SHARED | MAP_POPULATE
        #else
        let flags = MAP_SHARED
        #endif
        let address = mmap(nil, byteCount, writable ? PROT_READ | PROT_WRITE : PROT_READ, flags, fd, 0)
        guard let address, address != MAP_FAILED else { return nil }
        base = address
        self.byteCount = byteCount
        self.writable = writable
        self.identity = identity
        descriptor = fd
        #else
        return nil
        #endif
    }

    /// Closes the descriptor of a mapping that will not be kept for reuse.
    func closeDescriptor() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
    }

    /// Whether the segment is still the one mapped, under a name, at the mapped size (else it must not be reused: a
    /// shrunk segment would fault on the pages past its end).
    var isCurrent: Bool {
        guard descriptor >= 0, let now = SegmentIdentity(descriptor) else { return false }
        return now.links > 0 && now.size == byteCount
    }

    deinit {
        munmap(base, byteCount)
        if descriptor >= 0 { close(descriptor) }
    }
}

/// Mappings of the caller's segments kept for the next request that names them, least recently used dropped first
/// beyond `budget` bytes (the gateway's segment pool keeps 64 MiB of released segments; mappings of more could not be
/// reused) or `maxEntries` mappings. A mapping whose segment was removed or resized is dropped at the next look (its pages go back to the
/// system once nothing maps them). Nothing is kept mapped for a segment this process created.
package final class SegmentMappingCache: Sendable {
    package static let shared = SegmentMappingCache(budget: 64 << 20)

    package let budget: Int
    /// At most this many mappings (each holds a descriptor, and every look checks each one), whatever their bytes.
    package let maxEntries: Int
    private struct Entry {
        let name: String
        let mapping: SegmentMapping
    }
    /// Least recently used first.
    private let entries = Mutex<[Entry]>([])

    package init(budget: Int, maxEntries: Int = 32) {
        self.budget = budget
        self.maxEntries = maxEntries
    }

    /// Mappings kept, and their bytes.
    package var kept: (count: Int, bytes: Int) {
        entries.withLock { ($0.count, $0.reduce(0) { $0 + $1.mapping.byteCount }) }
    }

    /// The kept mapping of `name` when it maps the object `identity` at its size (and is writable if `writable`),
    /// marked most recently used; nil otherwise. Drops mappings of segments removed or resized since.
    func take(name: String, identity: SegmentIdentity, writable: Bool) -> SegmentMapping? {
        entries.withLock { entries in
            entries.removeAll { !$0.mapping.isCurrent }
            guard let index = entries.firstIndex(where: {
                $0.name == name && $0.mapping.identity.isSameObject(as: identity) && $0.mapping.byteCount == identity.size
                    && (!writable || $0.mapping.writable)
            }) else { return nil }
            let entry = entries.remove(at: index)
            entries.append(entry)
            return entry.mapping
        }
    }

    /// Keeps `mapping` of `name` (replacing any other mapping of that name), dropping the least recently used beyond
    /// the budget.
    func keep(_ mapping: SegmentMapping, name: String) {
        guard mapping.byteCount <= budget else {
            mapping.closeDescriptor()
            return
        }
        entries.withLock { entries in
            entries.removeAll { $0.name == name || !$0.mapping.isCurrent }
            entries.append(Entry(name: name, mapping: mapping))
            var bytes = entries.reduce(0) { $0 + $1.mapping.byteCount }
            while bytes > budget || entries.count > maxEntries, let oldest = entries.first {
                bytes -= oldest.mapping.byteCount
                entries.removeFirst()
            }
        }
    }

    /// Drops every kept mapping.
    package func removeAll() {
        entries.withLock { $0.removeAll() }
    }
}
