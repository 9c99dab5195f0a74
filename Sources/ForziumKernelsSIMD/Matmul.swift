import ForziumJSON
import ForziumKernelsAVX512
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Matrix multiply, GotoBLAS/BLIS style (the AVX2 + FMA kernel; the AVX-512 one is ForziumKernelsAVX512):
//
//   for jc in columns of C, NC at a time            (B block: KC × NC, packed, lives in L2/L3)
//     for pc in the inner dimension, KC at a time
//       pack B[pc ..< pc+KC, jc ..< jc+NC] into 8-wide panels (zero padded)
//       for ic in rows of C, MC at a time         (A block: MC × KC, packed, lives in L2)
//         pack A[ic ..< ic+MC, pc ..< pc+KC] into 6-tall panels (zero padded)
//         for ir in 6-row panels                   (A micro-panel: 6 × KC = 12 KiB, stays in L1)
//           for jr in 8-column panels              (B micro-panels stream from L2, or L3 for NC > 512)
//             6 × 8 micro-kernel: 12 SIMD4<Double> accumulators, one FMA per (row, half) per k
//
// (Keeping the A micro-panel in L1 and streaming B, rather than the other way round, took this kernel from 42 to
// 51 GFLOPS per core at n = 1024 and 2048 on an AMD EPYC (Zen 4), level with OpenBLAS's Haswell kernels there; NC =
// 2048 packs each A block once for products up to 2048 wide. A B block small enough for L2 was measured and is
// slower, because A is then re-read and re-packed n / NC times: AVX-512 at n = 2048, one core, NC = 256 / 384 / 512 /
// 768 / 2048 gave 48.1 / 49.5 / 50.1 / 50.6 / 51.9 GFLOPS.)
//
// Accumulation order for C[i][j]: within each KC block, k ascending with fused multiply–add, starting from 0;
// the block sums are then added to C in ascending block order; the first block's sum is stored plus +0.0, so a zero
// output is +0.0 (an FMA whose exact product underflows, e.g. -1e-320 · 1e-10 + 0, gives -0.0; the unfused reference
// gives +0.0). So |Δ| versus any other summation order is
// bounded by k·ε·Σ|a||b| (ε = 2⁻⁵²), the tolerance the tests and the differential tests use.
//
// Threads: when C has at least two 6-row panels per thread, the threads share each packed block of B and split C's
// rows into equal parts claimed as threads come free (`gemmSharedB`); otherwise C is cut into column strips (or row
// strips when it is tall and narrow), one per thread, each packing its own panels. Either way each output is computed
// by one thread in the same order, so results do not depend on the thread count.
//
// Memory: packing buffers are kept between products (`GemmScratchCache`); a C of 4 MiB or more is advised as huge
// pages, a smaller one is mapped part by part before its first stores (shared-B path), and the last k block reports non-finite
// outputs as it stores them, so no pass over C is made after the product unless the overflow rescue has work.

@usableFromInline let gemmMR = 6
@usableFromInline let gemmNR = 8
@usableFromInline let gemmKC = 256
@usableFromInline let gemmMC = 96
@usableFromInline let gemmNC = 2048

/// Packs `kc` rows × `nc` columns of B (row stride `ldb`) into 8-wide panels: panel p holds, for each k,
/// the 8 values B[k][8p ..< 8p+8] contiguously; columns past `nc` are zero. Eight rows of B at a time, each read left
/// to right across all full panels (sequential streams for the prefetcher; see `GemmAVX512.packB`).
@inline(__always)
func packB(_ b: UnsafePointer<Double>, _ ldb: Int, _ kc: Int, _ nc: Int, into out: UnsafeMutablePointer<Double>) {
    let fullPanels = nc / gemmNR
    let panelSize = kc * gemmNR
    var k0 = 0
    while k0 < kc {
        let rows = min(8, kc - k0)
        for p in 0 ..< fullPanels {
            var src = b + k0 * ldb + p * gemmNR
            var dst = out + p * panelSize + k0 * gemmNR
            for _ in 0 ..< rows {
                let lo = UnsafeRawPointer(src).loadUnaligned(as: SIMD4<Double>.self)
                let hi = UnsafeRawPointer(src + 4).loadUnaligned(as: SIMD4<Double>.self)
                UnsafeMutableRawPointer(dst).storeBytes(of: lo, as: SIMD4<Double>.self)
                UnsafeMutableRawPointer(dst + 4).storeBytes(of: hi, as: SIMD4<Double>.self)
                src += ldb
                dst += gemmNR
            }
        }
        k0 += rows
    }
    let width = nc - fullPanels * gemmNR
    if width > 0 {
        var src = b + fullPanels * gemmNR
        var dst = out + fullPanels * panelSize
        for _ in 0 ..< kc {
            for q in 0 ..< gemmNR { dst[q] = q < width ? src[q] : 0 }
            src += ldb
            dst += gemmNR
        }
    }
}

/// Packs `mc` rows × `kc` columns of A (row stride `lda`) into 6-tall panels: panel p holds, for each k,
/// the 6 values A[6p ..< 6p+6][k] contiguously; rows past `mc` are zero.
@inline(__always)
func packA(_ a: UnsafePointer<Double>, _ lda: Int, _ mc: Int, _ kc: Int, into out: UnsafeMutablePointer<Double>) {
    var dst = out
    var i = 0
    while i < mc {
        let height = min(gemmMR, mc - i)
        let base = a + i * lda
        if height == gemmMR {
            let r0 = base, r1 = base + lda, r2 = base + 2 * lda
            let r3 = base + 3 * lda, r4 = base + 4 * lda, r5 = base + 5 * lda
            for p in 0..<kc {
                dst[0] = r0[p]; dst[1] = r1[p]; dst[2] = r2[p]
                dst[3] = r3[p]; dst[4] = r4[p]; dst[5] = r5[p]
                dst += gemmMR
            }
        } else {
            for p in 0..<kc {
                for r in 0..<gemmMR { dst[r] = r < height ? base[r * lda + p] : 0 }
                dst += gemmMR
            }
        }
        i += gemmMR
    }
}

/// C[0..<mr][0..<nr] (+)= packed A panel (kc × 6) · packed B panel (kc × 8).
/// `check`: adds x - x of every value stored to `poison` (NaN from then on if any was ±inf or NaN).
@inline(__always)
func microKernel6x8(
    _ kc: Int, _ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>,
    _ c: UnsafeMutablePointer<Double>, _ ldc: Int, _ mr: Int, _ nr: Int, _ accumulate: Bool,
    _ check: Bool, _ poison: inout SIMD4<Double>
) {
    var c00 = SIMD4<Double>(), c01 = SIMD4<Double>()
    var c10 = SIMD4<Double>(), c11 = SIMD4<Double>()
    var c20 = SIMD4<Double>(), c21 = SIMD4<Double>()
    var c30 = SIMD4<Double>(), c31 = SIMD4<Double>()
    var c40 = SIMD4<Double>(), c41 = SIMD4<Double>()
    var c50 = SIMD4<Double>(), c51 = SIMD4<Double>()
    var ap = a
    var bp = UnsafeRawPointer(b)
    for _ in 0..<kc {
        let b0 = bp.loadUnaligned(as: SIMD4<Double>.self)
        let b1 = bp.loadUnaligned(fromByteOffset: 32, as: SIMD4<Double>.self)
        let a0 = SIMD4<Double>(repeating: ap[0])
        c00 = c00.addingProduct(a0, b0); c01 = c01.addingProduct(a0, b1)
        let a1 = SIMD4<Double>(repeating: ap[1])
        c10 = c10.addingProduct(a1, b0); c11 = c11.addingProduct(a1, b1)
        let a2 = SIMD4<Double>(repeating: ap[2])
        c20 = c20.addingProduct(a2, b0); c21 = c21.addingProduct(a2, b1)
        let a3 = SIMD4<Double>(repeating: ap[3])
        c30 = c30.addingProduct(a3, b0); c31 = c31.addingProduct(a3, b1)
        let a4 = SIMD4<Double>(repeating: ap[4])
        c40 = c40.addingProduct(a4, b0); c41 = c41.addingProduct(a4, b1)
        let a5 = SIMD4<Double>(repeating: ap[5])
        c50 = c50.addingProduct(a5, b0); c51 = c51.addingProduct(a5, b1)
        ap += gemmMR
        bp += gemmNR * MemoryLayout<Double>.stride
    }
    if mr == gemmMR && nr == gemmNR {
        @inline(__always) func put(_ row: Int, _ lo: SIMD4<Double>, _ hi: SIMD4<Double>) -> SIMD4<Double> {
            let p = UnsafeMutableRawPointer(c + row * ldc)
            let yLo, yHi: SIMD4<Double>
            if accumulate {
                yLo = UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Double>.self) + lo
                yHi = UnsafeRawPointer(p).loadUnaligned(fromByteOffset: 32, as: SIMD4<Double>.self) + hi
            } else {
                // `+ 0` turns a -0.0 block sum into +0.0 (the signed-zero rule: a zero output is +0.0, as the
                // unfused reference that starts from +0.0 gives); every other value is unchanged.
                yLo = lo + SIMD4<Double>()
                yHi = hi + SIMD4<Double>()
            }
            p.storeBytes(of: yLo, as: SIMD4<Double>.self)
            p.storeBytes(of: yHi, toByteOffset: 32, as: SIMD4<Double>.self)
            return (yLo - yLo) + (yHi - yHi)
        }
        let r0 = put(0, c00, c01), r1 = put(1, c10, c11), r2 = put(2, c20, c21)
        let r3 = put(3, c30, c31), r4 = put(4, c40, c41), r5 = put(5, c50, c51)
        if check { poison += ((r0 + r1) + (r2 + r3)) + (r4 + r5) }
    } else {
        // Edge tile: spill the accumulators, copy the part that lies inside C.
        withUnsafeTemporaryAllocation(of: SIMD4<Double>.self, capacity: 12) { tile in
            tile[0] = c00; tile[1] = c01; tile[2] = c10; tile[3] = c11
            tile[4] = c20; tile[5] = c21; tile[6] = c30; tile[7] = c31
            tile[8] = c40; tile[9] = c41; tile[10] = c50; tile[11] = c51
            let t = UnsafeRawPointer(tile.baseAddress!).assumingMemoryBound(to: Double.self)
            var finite = true
            for r in 0..<mr {
                let row = c + r * ldc
                for q in 0..<nr {
                    let y = accumulate ? row[q] + t[r * gemmNR + q] : t[r * gemmNR + q] + 0
                    row[q] = y
                    finite = finite && y.isFinite
                }
            }
            if check && !finite { poison[0] = .nan }
        }
    }
}

/// C (m × n, row stride ldc) = A (m × k, row stride lda) · B (k × n, row stride ldb) on the calling thread, with one
/// ISA's packing and micro-kernels. `k` must be at least 1. Returns whether any output is ±inf or NaN.
func gemmSerial(
    _ isa: GemmPieces, m: Int, n: Int, k: Int,
    a: UnsafePointer<Double>, lda: Int,
    b: UnsafePointer<Double>, ldb: Int,
    c: UnsafeMutablePointer<Double>, ldc: Int
) -> Bool {
    let ncMax = min(isa.nc, (n + isa.nr - 1) / isa.nr * isa.nr)
    let kcMax = min(isa.kc, k)
    let mcMax = min(isa.mc, (m + isa.mr - 1) / isa.mr * isa.mr)
    let bCount = (kcMax * ncMax + 7) / 8 * 8
    let scratch = GemmScratchCache.shared.take(bytes: (bCount + kcMax * mcMax) * MemoryLayout<Double>.stride)
    defer { GemmScratchCache.shared.give(scratch) }
    let bPack = scratch.pointer.bindMemory(to: Double.self, capacity: bCount + kcMax * mcMax)
    let aPack = bPack + bCount

    var nonFinite = false
    var jc = 0
    while jc < n {
        let nc = min(isa.nc, n - jc)
        var pc = 0
        while pc < k {
            let kc = min(isa.kc, k - pc)
            isa.packB(b + pc * ldb + jc, ldb, kc, nc, bPack)
            if isa.rows(m, nc, kc, a + pc, lda, bPack, aPack, c + jc, ldc, pc > 0, pc + kc == k) { nonFinite = true }
            pc += kc
        }
        jc += nc
    }
    return nonFinite
}

/// A packing buffer lent by `GemmScratchCache`.
struct GemmScratchBuffer: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let bytes: Int
}

/// `free` (the cache's own `free` list hides the C function's name).
private func releaseMemory(_ p: UnsafeMutableRawPointer) {
    #if canImport(Glibc)
    Glibc.free(p)
    #elseif canImport(Darwin)
    Darwin.free(p)
    #endif
}

/// Packing buffers kept from one matmul to the next. Allocated afresh, a 1024² product's 2 MiB packed-B block is a
/// new mapping (see `MemoryTuning`: buffers of 1 MiB or more are mapped and unmapped), and the page faults that fill
/// it cost about as much as the packing itself; kept, the pages stay mapped and warm. Buffers are 2 MiB-aligned
/// whole multiples of 2 MiB, advised as huge pages (Linux), so a packed block spans one or two TLB entries.
/// At most `keep` buffers are kept (one per thread of a two-thread product split in strips; a shared-B product takes
/// one), of at most `maxKeptBytes` each, so an idle process holds at most 16 MiB of them (6 MiB after 2048² products
/// on two threads); any others are freed when given back.
final class GemmScratchCache: Sendable {
    static let shared = GemmScratchCache()
    static let granule = 2 << 20
    let keep = 2
    let maxKeptBytes = 8 << 20
    private let free = Mutex<[GemmScratchBuffer]>([])

    /// A buffer of at least `bytes` bytes, 64-byte aligned (2 MiB in fact); give it back with `give`.
    func take(bytes: Int) -> GemmScratchBuffer {
        let found: GemmScratchBuffer? = free.withLock { list in
            // The smallest kept buffer that is large enough.
            var best: Int?
            for (i, buffer) in list.enumerated() where buffer.bytes >= bytes {
                if best == nil || buffer.bytes < list[best!].bytes { best = i }
            }
            return best.map { list.remove(at: $0) }
        }
        if let found { return found }
        let size = max(Self.granule, (bytes + Self.granule - 1) / Self.granule * Self.granule)
        var raw: UnsafeMutableRawPointer?
        if posix_memalign(&raw, Self.granule, size) != 0 || raw == nil {
            return GemmScratchBuffer(pointer: UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64), bytes: -bytes)
        }
        #if os(Linux)
        _ = madvise(raw, size, Int32(MADV_HUGEPAGE))
        #endif
        return GemmScratchBuffer(pointer: raw!, bytes: size)
    }

    /// Gives back a buffer from `take`: kept for the next product, or freed.
    func give(_ buffer: GemmScratchBuffer) {
        if buffer.bytes < 0 {
            buffer.pointer.deallocate()
            return
        }
        let evicted: GemmScratchBuffer? = free.withLock { list in
            if buffer.bytes > maxKeptBytes { return buffer }
            list.append(buffer)
            if list.count <= keep { return nil }
            // Keep the largest buffers: drop the smallest.
            let smallest = list.indices.min { list[$0].bytes < list[$1].bytes }!
            return list.remove(at: smallest)
        }
        if let evicted { releaseMemory(evicted.pointer) }
    }
}

/// C[0 ..< m][0 ..< nc] (+)= A[0 ..< m][0 ..< kc] · (one packed block of B, kc × nc): packs A `MC` rows at a time into
/// `aPack` (room for MC × KC) and runs the micro-kernels. `accumulate`: add to C (every k block but the first).
/// `check` (the last k block): returns whether any value stored is ±inf or NaN (otherwise returns false).
func gemmRows(
    m: Int, nc: Int, kc: Int, a: UnsafePointer<Double>, lda: Int, bPack: UnsafePointer<Double>,
    aPack: UnsafeMutablePointer<Double>, c: UnsafeMutablePointer<Double>, ldc: Int, accumulate: Bool, check: Bool
) -> Bool {
    var poison = SIMD4<Double>()
    var ic = 0
    while ic < m {
        let mc = min(gemmMC, m - ic)
        packA(a + ic * lda, lda, mc, kc, into: aPack)
        var ir = 0
        while ir < mc {
            let mr = min(gemmMR, mc - ir)
            let aPanel = UnsafePointer(aPack + (ir / gemmMR) * kc * gemmMR)
            var jr = 0
            while jr < nc {
                let nr = min(gemmNR, nc - jr)
                microKernel6x8(
                    kc, aPanel, bPack + (jr / gemmNR) * kc * gemmNR,
                    c + (ic + ir) * ldc + jr, ldc, mr, nr, accumulate, check, &poison)
                jr += gemmNR
            }
            ir += gemmMR
        }
        ic += mc
    }
    return poison.sum().isNaN
}

/// Below this many multiply–adds (m·n·k) the matmul stays on the calling thread.
@usableFromInline let gemmParallelThreshold = 96 * 96 * 96

/// One ISA's matmul pieces, for the drivers in `SIMDKernels.gemm`.
struct GemmPieces: Sendable {
    /// Micro-tile rows and columns, and the k-block length (the same for every ISA: it fixes the summation order).
    let mr: Int, nr: Int, kc: Int, mc: Int, nc: Int
    /// Packs kc × nc of B (b, ldb, kc, nc, out) into nr-wide panels.
    let packB: @Sendable (UnsafePointer<Double>, Int, Int, Int, UnsafeMutablePointer<Double>) -> Void
    /// Rows on a packed B block (m, nc, kc, a, lda, bPack, aPack, c, ldc, accumulate, check); with `check` (last k
    /// block), whether a value stored is ±inf or NaN.
    let rows: @Sendable (Int, Int, Int, UnsafePointer<Double>, Int, UnsafePointer<Double>, UnsafeMutablePointer<Double>,
               UnsafeMutablePointer<Double>, Int, Bool, Bool) -> Bool

    static let avx2 = GemmPieces(
        mr: gemmMR, nr: gemmNR, kc: gemmKC, mc: gemmMC, nc: gemmNC,
        packB: { b, ldb, kc, nc, out in ForziumKernelsSIMD.packB(b, ldb, kc, nc, into: out) },
        rows: { m, nc, kc, a, lda, bPack, aPack, c, ldc, accumulate, check in
            gemmRows(m: m, nc: nc, kc: kc, a: a, lda: lda, bPack: bPack, aPack: aPack, c: c, ldc: ldc, accumulate: accumulate, check: check)
        })

    static let avx512 = GemmPieces(
        mr: GemmAVX512.mr, nr: GemmAVX512.nr, kc: GemmAVX512.kc, mc: GemmAVX512.mc, nc: GemmAVX512.nc,
        packB: { b, ldb, kc, nc, out in GemmAVX512.packB(b, ldb, kc, nc, into: out) },
        rows: { m, nc, kc, a, lda, bPack, aPack, c, ldc, accumulate, check in
            GemmAVX512.rows(m: m, nc: nc, kc: kc, a: a, lda: lda, bPack: bPack, aPack: aPack, c: c, ldc: ldc,
                            accumulate: accumulate, check: check)
        })
}

/// Maps the pages of `bytes` bytes at `p` ready for writing in one call (Linux 5.14+ `MADV_POPULATE_WRITE`; a no-op
/// where it is missing), instead of one page fault per 4 KiB page on the first stores.
@inline(__always)
func prefaultForWriting(_ p: UnsafeMutableRawPointer, bytes: Int) {
    #if os(Linux)
    let start = Int(bitPattern: p) & ~4095
    let end = (Int(bitPattern: p) + bytes + 4095) & ~4095
    _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, 23)
    #endif
}

/// Scratch pointers handed to the pool's parts.
private struct GemmScratch: @unchecked Sendable {
    let bPack: UnsafeMutablePointer<Double>
    let aPacks: UnsafeMutablePointer<Double>
    let aPackStride: Int
}

extension SIMDKernels {
    var gemmPieces: GemmPieces {
        switch instructionSet {
        case .avx2: .avx2
        case .avx512: .avx512
        }
    }

    /// C = A · B with the threads of the pool. Returns whether any output is ±inf or NaN (found as the outputs are
    /// stored, so the overflow rescue needs no pass over C when there is none).
    func gemm(m: Int, n: Int, k: Int, a: UnsafePointer<Double>, b: UnsafePointer<Double>, c: UnsafeMutablePointer<Double>) -> Bool {
        if k == 0 {
            c.initialize(repeating: 0, count: m * n)
            return false
        }
        // A large product's C is a fresh mapping each time: one fault per 2 MiB page instead of per 4 KiB (8192 for
        // a 2048² C, several per cent of the product's time on a virtual machine), and C's rows, 16 KiB apart at
        // n = 2048, share TLB entries.
        HugePages.advise(UnsafeMutableRawPointer(c), bytes: m * n * MemoryLayout<Double>.stride)
        let isa = gemmPieces
        let mr = isa.mr, nr = isa.nr
        let rowPanels = (m + mr - 1) / mr
        let colPanels = (n + nr - 1) / nr
        if threads == 1 || m * n * k < gemmParallelThreshold || max(rowPanels, colPanels) < 2 {
            return gemmSerial(isa, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: c, ldc: n)
        }
        if rowPanels >= 2 * threads {
            // More parts than threads, claimed as threads come free: on a shared machine a thread that loses its core
            // for a while no longer holds the other at the end of every k block; on a quiet one each thread still
            // takes the same number of equal parts (so the count is a multiple of the threads: 5 parts on 2 threads
            // would leave one thread idle for a fifth of every block). At least 16 row panels (one 96-row A block) per part.
            let parts = threads * max(1, min(4, rowPanels / (16 * threads)))
            return gemmSharedB(m: m, n: n, k: k, a: a, b: b, c: c, isa: isa, parts: parts)
        }
        // One flag per part (each part writes only its own; the join orders the writes before the reads).
        return withUnsafeTemporaryAllocation(of: Bool.self, capacity: threads) { flags in
            flags.initialize(repeating: false)
            if colPanels >= rowPanels {
                // Few rows: column strips; each part owns C[:, j0 ..< j1] and packs all of A for it.
                pool.forEachRange(colPanels, parts: min(threads, colPanels)) { part, panels in
                    let j0 = panels.lowerBound * nr, j1 = min(n, panels.upperBound * nr)
                    flags[part] = gemmSerial(isa, m: m, n: j1 - j0, k: k, a: a, lda: k, b: b + j0, ldb: n, c: c + j0, ldc: n)
                }
            } else {
                // Row strips; each part owns C[i0 ..< i1, :] and packs all of B for it.
                pool.forEachRange(rowPanels, parts: min(threads, rowPanels)) { part, panels in
                    let i0 = panels.lowerBound * mr, i1 = min(m, panels.upperBound * mr)
                    flags[part] = gemmSerial(isa, m: i1 - i0, n: n, k: k, a: a + i0 * k, lda: k, b: b, ldb: n, c: c + i0 * n, ldc: n)
                }
            }
            return flags.contains(true)
        }
    }

    /// The parts share each packed block of B: for every (column block, k block) they first pack disjoint panels of
    /// it, then each runs its own rows of C on the whole block (two fork–joins per block, no barrier inside a job, so
    /// it is also correct when the pool runs the parts one after another). Each part has its own packed-A buffer, so
    /// `parts` may exceed the pool's threads. B is packed once instead of once per part.
    /// Each output is still summed in the same order (k blocks of `kc`, ascending), so the result is bit-identical to
    /// the single-thread one.
    func gemmSharedB(
        m: Int, n: Int, k: Int, a: UnsafePointer<Double>, b: UnsafePointer<Double>, c: UnsafeMutablePointer<Double>,
        isa: GemmPieces, parts: Int
    ) -> Bool {
        let mr = isa.mr, nr = isa.nr
        let ncMax = min(isa.nc, (n + nr - 1) / nr * nr)
        let kcMax = min(isa.kc, k)
        let mcMax = min(isa.mc, (m + mr - 1) / mr * mr)
        let aStride = (kcMax * mcMax + 7) / 8 * 8
        let bCount = (kcMax * ncMax + 7) / 8 * 8
        let buffer = GemmScratchCache.shared.take(bytes: (bCount + aStride * parts) * MemoryLayout<Double>.stride)
        defer { GemmScratchCache.shared.give(buffer) }
        let bPack = buffer.pointer.bindMemory(to: Double.self, capacity: bCount + aStride * parts)
        let scratch = GemmScratch(bPack: bPack, aPacks: bPack + bCount, aPackStride: aStride)
        let rowPanels = (m + mr - 1) / mr
        // A C too small for huge pages (under 4 MiB: n = 512 is 2 MiB) is mapped by each part for its own rows in one
        // call before its first stores (2-5 % faster at n = 512 on this VM than 4 KiB page faults one by one).
        let populate = m * n * MemoryLayout<Double>.stride < 2 * GemmScratchCache.granule
        let flags = UnsafeMutableBufferPointer<Bool>.allocate(capacity: parts)
        flags.initialize(repeating: false)
        defer { flags.deallocate() }
        var jc = 0
        while jc < n {
            let nc = min(isa.nc, n - jc)
            let colPanels = (nc + nr - 1) / nr
            var pc = 0
            while pc < k {
                let kc = min(isa.kc, k - pc)
                let packParts = min(parts, colPanels)
                pool.forEachRange(colPanels, parts: packParts) { _, panels in
                    let j0 = panels.lowerBound * nr, j1 = min(nc, panels.upperBound * nr)
                    isa.packB(b + pc * n + jc + j0, n, kc, j1 - j0, scratch.bPack + panels.lowerBound * kc * nr)
                }
                pool.forEachRange(rowPanels, parts: parts) { part, panels in
                    let i0 = panels.lowerBound * mr, i1 = min(m, panels.upperBound * mr)
                    if populate && jc == 0 && pc == 0 {
                        prefaultForWriting(UnsafeMutableRawPointer(c + i0 * n), bytes: (i1 - i0) * n * MemoryLayout<Double>.stride)
                    }
                    if isa.rows(i1 - i0, nc, kc, a + i0 * k + pc, k, scratch.bPack,
                                scratch.aPacks + part * scratch.aPackStride, c + i0 * n + jc, n, pc > 0, pc + kc == k) {
                        flags[part] = true
                    }
                }
                pc += kc
            }
            jc += nc
        }
        return flags.contains(true)
    }
}
