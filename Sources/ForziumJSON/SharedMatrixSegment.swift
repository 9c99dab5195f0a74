#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A POSIX shared-memory object holding one matrix's doubles (little-endian binary64, row-major, nothing else): the
/// fastest way for a matrix to cross between two processes of ours on one machine (`forzium-bench wire`: a 512×512
/// matrix in ~2 ms against ~10 ms as base64 text through a pipe). Named in a `BinaryMatrix` as `"shm"`.
///
/// Names are `/forzium-<creator pid>-<n>`; the reader accepts no other shape, so a request cannot make an engine open an
/// arbitrary object. Ownership: the process that creates an input segment removes it when its request is over; the
/// reader of a result segment removes it once it has mapped it. Whatever a dead process leaves behind is removed by
/// `removeOrphans()` (the gateway runs it at start-up and whenever an engine exits).
public final class SharedMatrixSegment: @unchecked Sendable {
    /// The object's name (`/forzium-<pid>-<n>`).
    public let name: String
    /// The mapped doubles.
    public let elements: UnsafeBufferPointer<Double>

    private static let counter = AtomicCounter()

    /// Shared, and on Linux populated at once (one call faults every page in, instead of a fault per 4 KiB page as the
    /// copy touches it).
    #if os(Linux)
    static let mapFlags = MAP_SHARED | MAP_POPULATE
    #else
    static let mapFlags = MAP_SHARED
    #endif

    /// Creates a segment holding a copy of `storage`; nil when shared memory is unavailable or full (the caller then
    /// uses base64). Space is reserved up front (`posix_fallocate`), so a full `/dev/shm` is an error here, never a
    /// SIGBUS later.
    public static func create(copying storage: UnsafeBufferPointer<Double>) -> String? {
        create(count: storage.count) { $0.baseAddress!.update(from: storage.baseAddress!, count: storage.count) }
    }

    /// Creates a segment of `count` doubles and lets `fill` write them in place (native byte order; converted to
    /// little-endian afterwards where that differs); nil when shared memory is unavailable or full.
    public static func create(count: Int, fill: (UnsafeMutableBufferPointer<Double>) -> Void) -> String? {
        let byteCount = count * MemoryLayout<Double>.size
        guard byteCount > 0 else { return nil }
        let name = "/forzium-\(getpid())-\(counter.next())"
        let fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard posix_fallocate(fd, 0, off_t(byteCount)) == 0,
              let map = mmap(nil, byteCount, PROT_READ | PROT_WRITE, Self.mapFlags, fd, 0), map != MAP_FAILED else {
            shm_unlink(name)
            return nil
        }
        fill(UnsafeMutableBufferPointer(start: map.bindMemory(to: Double.self, capacity: count), count: count))
        #if _endian(big)
        let doubles = map.assumingMemoryBound(to: UInt64.self)
        for index in 0..<count { doubles[index] = doubles[index].littleEndian }
        #endif
        munmap(map, byteCount)
        return name
    }

    /// Maps the segment `name`, which must hold exactly `count` doubles.
    public init(mapping name: String, count: Int) throws(PointerIssue) {
        guard Self.isValidName(name) else {
            throw PointerIssue(pointer: "", message: "not a Forzium shared-memory name (expected /forzium-<pid>-<n>)")
        }
        let fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0)
        guard fd >= 0 else {
            throw PointerIssue(pointer: "", message: "cannot open shared memory \(name): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, Int(info.st_size) == count * MemoryLayout<Double>.size else {
            throw PointerIssue(pointer: "", message: "shared memory \(name) does not hold \(count) doubles")
        }
        guard count > 0, let map = mmap(nil, count * MemoryLayout<Double>.size, PROT_READ, Self.mapFlags, fd, 0), map != MAP_FAILED else {
            throw PointerIssue(pointer: "", message: "cannot map shared memory \(name)")
        }
        self.name = name
        self.elements = UnsafeBufferPointer(start: map.assumingMemoryBound(to: Double.self), count: count)
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: elements.baseAddress!), elements.count * MemoryLayout<Double>.size)
    }

    /// A copy of the doubles (converted from little-endian where needed).
    public func copy() -> [Double] {
        #if _endian(big)
        return elements.map { Double(bitPattern: UInt64(littleEndian: $0.bitPattern)) }
        #else
        return Array(elements)
        #endif
    }

    /// Removes the object's name; the mapping stays valid until this value goes away.
    public func unlink() { Self.unlink(name) }

    /// Removes the object `name` (no error when it is already gone).
    public static func unlink(_ name: String) {
        if isValidName(name) { shm_unlink(name) }
    }

    /// `/forzium-<digits>-<digits>`.
    public static func isValidName(_ name: String) -> Bool {
        guard name.hasPrefix("/forzium-") else { return false }
        let parts = name.dropFirst("/forzium-".count).split(separator: "-", omittingEmptySubsequences: false)
        return parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.count <= 20 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }
    }

    /// Removes every `/forzium-<pid>-<n>` object whose creating process no longer exists; returns how many.
    @discardableResult
    public static func removeOrphans(directory: String = "/dev/shm") -> Int {
        guard let dir = opendir(directory) else { return 0 }
        defer { closedir(dir) }
        var removed = 0
        while let entry = readdir(dir) {
            let fileName = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            let name = "/" + fileName
            guard isValidName(name), let pid = Int32(name.split(separator: "-")[1]) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                shm_unlink(name)
                removed += 1
            }
        }
        return removed
    }
}

/// A process-wide counter for segment names.
private final class AtomicCounter: @unchecked Sendable {
    private var value: UInt64 = 0
    private var lock = pthread_mutex_t()

    init() { pthread_mutex_init(&lock, nil) }

    func next() -> UInt64 {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        value &+= 1
        return value
    }
}
