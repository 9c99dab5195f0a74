// Matrix multiply for CPUs with AVX-512 (F, DQ, BW, VL): the GotoBLAS/BLIS blocking of the AVX2 kernel in
// ForziumKernelsSIMD/Matmul.swift, with a 6 × 32 micro-kernel of 24 `SIMD8<Double>` (ZMM) accumulators: per k, four
// 8-wide loads of the packed B panel and 6 broadcasts of packed A feed 24 FMAs (AVX-512 has 32 vector registers).
// Inside a packed A block the loop runs over A micro-panels (6 × 256 doubles = 12 KiB, kept in L1) and streams the
// B micro-panels (256 × 32 = 64 KiB each) from L2, as the AVX2 kernel does.
// Measured on an AMD EPYC (Zen 4) at 1 thread, n = 1024/2048 (CPU time, best of 3): 6 × 32 52.1/51.2 GFLOPS, 8 × 24 51.8/50.1, 12 × 16 50.1/48.9, 14 × 16 49.5/48.6, 4 × 48 50.1/49.1.
//
// This module is compiled with `-target-cpu skylake-avx512` (F, CD, DQ, BW, VL; see Package.swift). Nothing here may run before
// `forzium_cpu_has_avx512()` (CForziumCPU: cpuid + xgetbv) has said yes; `SIMDKernels` calls `GemmAVX512.rows` and
// `GemmAVX512.packB` only when its ISA is `.avx512`, chosen once at start-up.
//
// Accumulation order for C[i][j] is exactly that of the AVX2 kernel: within each block of `kc` = 256 values of k
// (the same `gemmKC`), k ascending with fused multiply–add starting from 0; the block sums are added to C in
// ascending block order (the first block's sum plus +0.0, so a zero output is +0.0). The tile shape only decides which outputs are computed together, never the order of one
// output's operations, so both ISAs give bit-identical results (a test checks it).

/// The AVX-512 matmul micro-kernel, its packing and its loop over one packed block of B (the drivers, serial and
/// threaded, are ForziumKernelsSIMD's, shared with the AVX2 kernel).
package enum GemmAVX512 {
    /// Rows of C per micro-tile.
    package static let mr = 6
    /// Columns of C per micro-tile (four ZMM registers per row).
    package static let nr = 32
    /// Values of k per packed block; must equal the AVX2 kernel's so that both ISAs sum in the same order.
    package static let kc = 256
    /// Rows of A per packed block (a multiple of `mr`): 96 × 256 doubles = 192 KiB, in L2.
    package static let mc = 96
    /// Columns of B per packed block: 256 × 2048 doubles = 4 MiB (L3); a 2048-wide C then packs each A block once.
    package static let nc = 2048

    /// C[0 ..< m][0 ..< nc] (+)= A[0 ..< m][0 ..< kc] · (one packed block of B, kc × nc): packs A `mc` rows at a time
    /// into `aPack` (room for mc × kc) and runs the micro-kernels. `accumulate`: add to C (every k block but the first).
    /// `check` (the last k block): returns whether any value stored is ±inf or NaN (otherwise returns false), so the
    /// caller needs no second pass over C to find outputs for the overflow rescue.
    package static func rows(
        m: Int, nc ncb: Int, kc kcb: Int, a: UnsafePointer<Double>, lda: Int, bPack: UnsafePointer<Double>,
        aPack: UnsafeMutablePointer<Double>, c: UnsafeMutablePointer<Double>, ldc: Int, accumulate: Bool, check: Bool
    ) -> Bool {
        // Lanes stay +0 while every checked value is finite (x - x = 0); one inf or NaN makes a lane NaN for good.
        var poison = SIMD8<Double>()
        var ic = 0
        while ic < m {
            let mcb = min(mc, m - ic)
            packA(a + ic * lda, lda, mcb, kcb, into: aPack)
            // A micro-panel (6 × 256 doubles = 12 KiB) stays in L1 while the B micro-panels stream from L2.
            var ir = 0
            while ir < mcb {
                let mrb = min(mr, mcb - ir)
                let aPanel = UnsafePointer(aPack + (ir / mr) * kcb * mr)
                var jr = 0
                while jr < ncb {
                    let nrb = min(nr, ncb - jr)
                    microKernel(
                        kcb, aPanel, bPack + (jr / nr) * kcb * nr,
                        c + (ic + ir) * ldc + jr, ldc, mrb, nrb, accumulate, check, &poison)
                    jr += nr
                }
                ir += mr
            }
            ic += mcb
        }
        return poison.sum().isNaN
    }

    /// Packs `kc` rows × `nc` columns of B into `nr`-wide (32) panels (columns past `nc` are zero).
    /// Eight rows of B at a time, each read left to right across all full panels: eight sequential streams the
    /// hardware prefetcher follows (panel by panel, the reads would jump a whole row of B, 16 KiB at n = 2048, at
    /// every step, and prefetchers stop at page boundaries).
    package static func packB(_ b: UnsafePointer<Double>, _ ldb: Int, _ kc: Int, _ nc: Int, into out: UnsafeMutablePointer<Double>) {
        let fullPanels = nc / nr
        let panelSize = kc * nr
        var k0 = 0
        while k0 < kc {
            let rows = min(8, kc - k0)
            for p in 0 ..< fullPanels {
                var src = b + k0 * ldb + p * nr
                var dst = out + p * panelSize + k0 * nr
                for _ in 0 ..< rows {
                    for v in 0 ..< nr / 8 {
                        let x = UnsafeRawPointer(src + 8 * v).loadUnaligned(as: SIMD8<Double>.self)
                        UnsafeMutableRawPointer(dst + 8 * v).storeBytes(of: x, as: SIMD8<Double>.self)
                    }
                    src += ldb
                    dst += nr
                }
            }
            k0 += rows
        }
        let width = nc - fullPanels * nr
        if width > 0 {
            var src = b + fullPanels * nr
            var dst = out + fullPanels * panelSize
            for _ in 0 ..< kc {
                for q in 0 ..< nr { dst[q] = q < width ? src[q] : 0 }
                src += ldb
                dst += nr
            }
        }
    }

    /// Packs `mc` rows × `kc` columns of A into `mr`-tall (6) panels (rows past `mc` are zero).
    @inline(__always)
    static func packA(_ a: UnsafePointer<Double>, _ lda: Int, _ mc: Int, _ kc: Int, into out: UnsafeMutablePointer<Double>) {
        var dst = out
        var i = 0
        while i < mc {
            let height = min(mr, mc - i)
            let base = a + i * lda
            if height == mr {
                for p in 0..<kc {
                    var row = base + p
                    for r in 0..<mr { dst[r] = row[0]; row += lda }
                    dst += mr
                }
            } else {
                for p in 0..<kc {
                    for r in 0..<mr { dst[r] = r < height ? base[r * lda + p] : 0 }
                    dst += mr
                }
            }
            i += mr
        }
    }

    /// C[0..<mr][0..<nr] (+)= packed A panel (kc × 6) · packed B panel (kc × 32): 24 ZMM accumulators.
    /// `check`: adds x - x of every value stored to `poison` (NaN from then on if any was ±inf or NaN).
    @inline(__always)
    static func microKernel(
        _ kc: Int, _ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>,
        _ c: UnsafeMutablePointer<Double>, _ ldc: Int, _ mrb: Int, _ nrb: Int, _ accumulate: Bool,
        _ check: Bool, _ poison: inout SIMD8<Double>
    ) {
        var c0_0 = SIMD8<Double>(), c0_1 = SIMD8<Double>(), c0_2 = SIMD8<Double>(), c0_3 = SIMD8<Double>()
        var c1_0 = SIMD8<Double>(), c1_1 = SIMD8<Double>(), c1_2 = SIMD8<Double>(), c1_3 = SIMD8<Double>()
        var c2_0 = SIMD8<Double>(), c2_1 = SIMD8<Double>(), c2_2 = SIMD8<Double>(), c2_3 = SIMD8<Double>()
        var c3_0 = SIMD8<Double>(), c3_1 = SIMD8<Double>(), c3_2 = SIMD8<Double>(), c3_3 = SIMD8<Double>()
        var c4_0 = SIMD8<Double>(), c4_1 = SIMD8<Double>(), c4_2 = SIMD8<Double>(), c4_3 = SIMD8<Double>()
        var c5_0 = SIMD8<Double>(), c5_1 = SIMD8<Double>(), c5_2 = SIMD8<Double>(), c5_3 = SIMD8<Double>()
        var ap = a
        var bp = UnsafeRawPointer(b)
        for _ in 0..<kc {
            let b0 = bp.loadUnaligned(fromByteOffset: 0, as: SIMD8<Double>.self)
            let b1 = bp.loadUnaligned(fromByteOffset: 64, as: SIMD8<Double>.self)
            let b2 = bp.loadUnaligned(fromByteOffset: 128, as: SIMD8<Double>.self)
            let b3 = bp.loadUnaligned(fromByteOffset: 192, as: SIMD8<Double>.self)
            let a0 = SIMD8<Double>(repeating: ap[0])
            c0_0 = c0_0.addingProduct(a0, b0); c0_1 = c0_1.addingProduct(a0, b1); c0_2 = c0_2.addingProduct(a0, b2); c0_3 = c0_3.addingProduct(a0, b3)
            let a1 = SIMD8<Double>(repeating: ap[1])
            c1_0 = c1_0.addingProduct(a1, b0); c1_1 = c1_1.addingProduct(a1, b1); c1_2 = c1_2.addingProduct(a1, b2); c1_3 = c1_3.addingProduct(a1, b3)
            let a2 = SIMD8<Double>(repeating: ap[2])
            c2_0 = c2_0.addingProduct(a2, b0); c2_1 = c2_1.addingProduct(a2, b1); c2_2 = c2_2.addingProduct(a2, b2); c2_3 = c2_3.addingProduct(a2, b3)
            let a3 = SIMD8<Double>(repeating: ap[3])
            c3_0 = c3_0.addingProduct(a3, b0); c3_1 = c3_1.addingProduct(a3, b1); c3_2 = c3_2.addingProduct(a3, b2); c3_3 = c3_3.addingProduct(a3, b3)
            let a4 = SIMD8<Double>(repeating: ap[4])
            c4_0 = c4_0.addingProduct(a4, b0); c4_1 = c4_1.addingProduct(a4, b1); c4_2 = c4_2.addingProduct(a4, b2); c4_3 = c4_3.addingProduct(a4, b3)
            let a5 = SIMD8<Double>(repeating: ap[5])
            c5_0 = c5_0.addingProduct(a5, b0); c5_1 = c5_1.addingProduct(a5, b1); c5_2 = c5_2.addingProduct(a5, b2); c5_3 = c5_3.addingProduct(a5, b3)
            ap += mr
            bp += nr * MemoryLayout<Double>.stride
        }
        if mrb == mr && nrb == nr {
            @inline(__always) func put(_ row: Int, _ x0: SIMD8<Double>, _ x1: SIMD8<Double>, _ x2: SIMD8<Double>, _ x3: SIMD8<Double>) -> SIMD8<Double> {
                let p = UnsafeMutableRawPointer(c + row * ldc)
                let y0, y1, y2, y3: SIMD8<Double>
                if accumulate {
                    y0 = UnsafeRawPointer(p).loadUnaligned(fromByteOffset: 0, as: SIMD8<Double>.self) + x0
                    y1 = UnsafeRawPointer(p).loadUnaligned(fromByteOffset: 64, as: SIMD8<Double>.self) + x1
                    y2 = UnsafeRawPointer(p).loadUnaligned(fromByteOffset: 128, as: SIMD8<Double>.self) + x2
                    y3 = UnsafeRawPointer(p).loadUnaligned(fromByteOffset: 192, as: SIMD8<Double>.self) + x3
                } else {
                    // `+ 0`: a zero output is +0.0 (the signed-zero rule; see ForziumKernelsSIMD/Matmul.swift).
                    y0 = x0 + SIMD8<Double>(); y1 = x1 + SIMD8<Double>(); y2 = x2 + SIMD8<Double>(); y3 = x3 + SIMD8<Double>()
                }
                p.storeBytes(of: y0, toByteOffset: 0, as: SIMD8<Double>.self)
                p.storeBytes(of: y1, toByteOffset: 64, as: SIMD8<Double>.self)
                p.storeBytes(of: y2, toByteOffset: 128, as: SIMD8<Double>.self)
                p.storeBytes(of: y3, toByteOffset: 192, as: SIMD8<Double>.self)
                return ((y0 - y0) + (y1 - y1)) + ((y2 - y2) + (y3 - y3))
            }
            let r0 = put(0, c0_0, c0_1, c0_2, c0_3)
            let r1 = put(1, c1_0, c1_1, c1_2, c1_3)
            let r2 = put(2, c2_0, c2_1, c2_2, c2_3)
            let r3 = put(3, c3_0, c3_1, c3_2, c3_3)
            let r4 = put(4, c4_0, c4_1, c4_2, c4_3)
            let r5 = put(5, c5_0, c5_1, c5_2, c5_3)
            if check { poison += ((r0 + r1) + (r2 + r3)) + (r4 + r5) }
        } else {
            // Edge tile: spill the accumulators, copy the part that lies inside C.
            withUnsafeTemporaryAllocation(of: SIMD8<Double>.self, capacity: 24) { tile in
                tile[0] = c0_0; tile[1] = c0_1; tile[2] = c0_2; tile[3] = c0_3
                tile[4] = c1_0; tile[5] = c1_1; tile[6] = c1_2; tile[7] = c1_3
                tile[8] = c2_0; tile[9] = c2_1; tile[10] = c2_2; tile[11] = c2_3
                tile[12] = c3_0; tile[13] = c3_1; tile[14] = c3_2; tile[15] = c3_3
                tile[16] = c4_0; tile[17] = c4_1; tile[18] = c4_2; tile[19] = c4_3
                tile[20] = c5_0; tile[21] = c5_1; tile[22] = c5_2; tile[23] = c5_3
                let t = UnsafeRawPointer(tile.baseAddress!).assumingMemoryBound(to: Double.self)
                var finite = true
                for r in 0..<mrb {
                    let row = c + r * ldc
                    for q in 0..<nrb {
                        let y = accumulate ? row[q] + t[r * nr + q] : t[r * nr + q] + 0
                        row[q] = y
                        finite = finite && y.isFinite
                    }
                }
                if check && !finite { poison[0] = .nan }
            }
        }
    }
}
