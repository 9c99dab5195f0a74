#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// POSIX shared-memory objects holding one matrix's doubles each (little-endian binary64, row-major, nothing else):
/// the fastest way for a matrix to cross between two processes of ours on one machine (`forzium-bench wire`: a 512×512
/// matrix in ~1.3 ms against 10–15 ms as base64 text through a pipe). Named in a `BinaryMatrix` as `"shm"`.
///
/// The bytes go in with one `write` and come out with one `pread` — no mapping, so no page-fault storm and no TLB
/// shootdown on unmap — and a full `/dev/shm` is an error (`ENOSPC`), never a SIGBUS.
///
/// Names are `/forzium-<creator pid>-<n>`; the reader accepts no other shape, so a request cannot make an engine open an
/// arbitrary object. Ownership: the process that creates an input segment removes it when its request is over; the
/// reader of a result segment removes it once it has read it. Whatever a dead process leaves behind is removed by
/// `removeOrphans()` (the gateway runs it at start-up and whenever an engine exits).
public enum SharedMatrixSegment {
    private static let counter = AtomicCounter()

    /// A name no segment of this process has had: `/forzium-<pid>-<n>`.
    package static func newName() -> String { "/forzium-\(getpid())-\(counter.next())" }

    /// Creates a segment holding a copy of `storage`; nil when shared memory is unavailable or full (the caller then
    /// uses base64).
    public static func create(copying storage: UnsafeBufferPointer<Double>) -> String? {
        guard storage.count > 0 else { return nil }
        let name = newName()
        let fd = shm_open(name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        #if _endian(big)
        let bytes = storage.map { $0.bitPattern.littleEndian }
        let written = bytes.withUnsafeBytes { writeAll(fd, $0) }
        #else
        let written = writeAll(fd, UnsafeRawBufferPointer(storage))
        #endif
        guard written else {
            shm_unlink(name)
            return nil
        }
        return name
    }

    /// Replaces the contents of the existing segment `name` (made by the process that asked for the result, and reused
    /// by it from request to request) with a copy of `storage`, resizing it to fit; false when it cannot (no such
    /// segment, not a Forzium name, `/dev/shm` full), and the caller then makes a segment of its own.
    public static func overwrite(_ name: String, copying storage: UnsafeBufferPointer<Double>) -> Bool {
        guard storage.count > 0, isValidName(name) else { return false }
        let fd = shm_open(name, O_RDWR | O_CLOEXEC, 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard resize(fd, to: storage.count * MemoryLayout<Double>.size) else { return false }
        #if _endian(big)
        let bytes = storage.map { $0.bitPattern.littleEndian }
        return bytes.withUnsafeBytes { writeAll(fd, $0) }
        #else
        return writeAll(fd, UnsafeRawBufferPointer(storage))
        #endif
    }

    /// Creates a segment holding a copy of `bytes` (already little-endian binary64, e.g. straight from a request body:
    /// no alignment needed); nil when shared memory is unavailable or full.
    public static func create(bytes: UnsafeRawBufferPointer) -> String? {
        guard bytes.count > 0 else { return nil }
        let name = newName()
        let fd = shm_open(name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard writeAll(fd, bytes) else {
            shm_unlink(name)
            return nil
        }
        return name
    }

    /// Reads the segment `name`, which must hold exactly `destination.count` bytes, into `destination` as they are
    /// (little-endian binary64): a result can go into a response buffer without passing through `[Double]`.
    public static func read(_ name: String, into destination: UnsafeMutableRawBufferPointer) throws(PointerIssue) {
        let fd = try openHolding(name, byteCount: destination.count, expected: "\(destination.count) bytes")
        defer { close(fd) }
        guard readAll(fd, into: destination) else { throw PointerIssue(pointer: "", message: "cannot read shared memory \(name)") }
    }

    /// The `count` doubles of the segment `name`, which must hold exactly that many.
    public static func read(_ name: String, count: Int) throws(PointerIssue) -> [Double] {
        let byteCount = count * MemoryLayout<Double>.size
        // The size is checked before anything is allocated.
        let fd = try openHolding(name, byteCount: byteCount, expected: "\(count) doubles")
        defer { close(fd) }
        var complete = false
        let values = [Double](unsafeUninitializedCapacity: count) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            complete = readAll(fd, into: raw)
            if !complete { raw.initializeMemory(as: UInt8.self, repeating: 0) }
            initialized = count
        }
        guard complete else { throw PointerIssue(pointer: "", message: "cannot read shared memory \(name)") }
        #if _endian(big)
        return values.map { Double(bitPattern: UInt64(littleEndian: $0.bitPattern)) }
        #else
        return values
        #endif
    }

    /// Opens the segment `name` for reading in pieces (`read(_:into:at:)`) after checking that it holds exactly
    /// `byteCount` bytes. The caller closes the descriptor.
    public static func open(_ name: String, byteCount: Int) throws(PointerIssue) -> Int32 {
        try openHolding(name, byteCount: byteCount, expected: "\(byteCount) bytes")
    }

    /// Fills `destination` from offset `offset` of the open segment `fd`; false when those bytes cannot all be read.
    public static func read(_ fd: Int32, into destination: UnsafeMutableRawBufferPointer, at offset: Int) -> Bool {
        var done = 0
        while done < destination.count {
            let n = pread(fd, destination.baseAddress! + done, destination.count - done, off_t(offset + done))
            if n > 0 { done += n } else if n < 0 && errno == EINTR { continue } else { break }
        }
        return done == destination.count
    }

    /// Opens the segment `name` (a Forzium name) for reading after checking that it holds exactly `byteCount` bytes,
    /// at least one (`expected` names that size in the error). The caller closes the descriptor.
    private static func openHolding(_ name: String, byteCount: Int, expected: String) throws(PointerIssue) -> Int32 {
        guard isValidName(name) else {
            throw PointerIssue(pointer: "", message: "not a Forzium shared-memory name (expected /forzium-<pid>-<n>)")
        }
        let fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0)
        guard fd >= 0 else {
            throw PointerIssue(pointer: "", message: "cannot open shared memory \(name): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard byteCount > 0, fstat(fd, &info) == 0, Int(info.st_size) == byteCount else {
            close(fd)
            throw PointerIssue(pointer: "", message: "shared memory \(name) does not hold \(expected)")
        }
        return fd
    }

    /// Threads that copy a large matrix in or out of a segment together (an engine sets its kernel thread count at
    /// start-up; 1, the default, copies on the calling thread). Copying out of tmpfs into fresh pages runs at ~3 GB/s
    /// on one core here, so a 1024² matmul's 16 MB of inputs took ~6 ms on one thread before its matmul could start.
    nonisolated(unsafe) public static var copyThreads = 1

    /// Copies of at least this many bytes are split between `copyThreads` threads (below it the hand-off costs what it saves).
    static let parallelCopyBytes = 1 << 22

    /// Reads `destination.count` bytes from the start of `fd` into `destination`; false when they cannot all be read.
    private static func readAll(_ fd: Int32, into destination: UnsafeMutableRawBufferPointer) -> Bool {
        inParts(destination.count) { range in
            read(fd, into: UnsafeMutableRawBufferPointer(rebasing: destination[range]), at: range.lowerBound)
        }
    }

    /// Runs `copy` over `0..<byteCount` in page-aligned parts on `copyThreads` threads when it is large enough,
    /// else whole on this thread; true when every part succeeded.
    private static func inParts(_ byteCount: Int, _ copy: (Range<Int>) -> Bool) -> Bool {
        let threads = copyThreads
        guard threads > 1, byteCount >= parallelCopyBytes else { return copy(0..<byteCount) }
        var failed = [Bool](repeating: false, count: threads)
        failed.withUnsafeMutableBufferPointer { failed in
            ForkJoinPool.shared(threads: threads).forEachRange(byteCount, parts: threads, granule: 1 << 12) { part, range in
                failed[part] = !copy(range)
            }
        }
        return !failed.contains(true)
    }

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

    /// Gives the open segment `fd` exactly `byteCount` bytes (nothing to do when it has them already); false on an error.
    package static func resize(_ fd: Int32, to byteCount: Int) -> Bool {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return false }
        return Int(info.st_size) == byteCount || ftruncate(fd, off_t(byteCount)) == 0
    }

    /// Writes all of `bytes` at `offset` of `fd`; false on any error (`ENOSPC` when `/dev/shm` is full).
    package static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n > 0 { done += n } else if n < 0 && errno == EINTR { continue } else { return false }
        }
        return true
    }

    /// Writes all of `bytes` from the start of `fd` (in parts on `copyThreads` threads when large).
    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        inParts(bytes.count) { range in write(fd, UnsafeRawBufferPointer(rebasing: bytes[range]), at: range.lowerBound) }
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
