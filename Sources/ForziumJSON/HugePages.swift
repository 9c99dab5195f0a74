#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Transparent huge pages for large buffers that are written once and dropped: a matrix's storage as it is parsed,
/// a reply's text, a matmul's result.
///
/// Buffers of 1 MiB and more are mappings of their own (`MemoryTuning`), so every 4 KiB page of one faults on its
/// first store: 1,200 faults for a 512² reply's 5 MB of text, about 2 µs each on a virtual machine. A 2 MiB page takes
/// one fault. The kernel grants them only in `madvise` or `always` THP mode; elsewhere this does nothing.
package enum HugePages {
    /// The huge page size asked for (x86-64's PMD size).
    package static let size = 2 << 20

    /// Asks for huge pages on the whole 2 MiB pages inside `bytes` bytes at `p` (no-op below two of them, where no
    /// whole aligned one need fit, and off Linux).
    @inline(__always)
    package static func advise(_ p: UnsafeMutableRawPointer, bytes: Int) {
        #if os(Linux)
        if bytes < 2 * size { return }
        let start = (Int(bitPattern: p) + size - 1) / size * size
        let end = (Int(bitPattern: p) + bytes) / size * size
        if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, Int32(MADV_HUGEPAGE)) }
        #endif
    }
}
