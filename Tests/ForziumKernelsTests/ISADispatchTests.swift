import CForziumCPU
import ForziumKernels
import ForziumKernelsSIMD
import Testing

/// Run-time ISA dispatch: every ISA this machine supports is run (the test names say which), each matmul path is
/// checked against the reference within the documented bound, and the paths must agree bit for bit.
@Suite(.enabled(if: SIMDKernels.cpuSupported, "needs AVX2 + FMA"))
struct ISADispatchTests {
    /// Shapes crossing both micro-tiles (6 × 8 and 6 × 32), KC = 256, NC = 1024 and the thread split.
    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (1, 17, 1), (5, 3, 9), (12, 16, 16), (13, 257, 17), (11, 15, 33), (24, 512, 32),
        (97, 255, 31), (101, 100, 99), (150, 7, 299), (211, 263, 157), (300, 300, 300), (257, 513, 6),
        (6, 300, 1100), (40, 600, 1030),
    ]

    @Test("cpuid + xgetbv detection is consistent: AVX-512 implies AVX2 + FMA; best is the widest supported")
    func detection() {
        let avx512 = forzium_cpu_has_avx512() != 0
        if avx512 { #expect(forzium_cpu_has_avx2_fma() != 0) }
        #expect(SIMDISA.best == (avx512 ? .avx512 : .avx2))
        #expect(SIMDISA.supported.contains(.avx2))
        print("ISA dispatch: this machine supports \(SIMDISA.supported.map(\.rawValue)); auto picks \(SIMDISA.best!)")
    }

    @Test("select: flag over environment over auto; unknown names and unsupported ISAs are refused")
    func selection() throws {
        #expect(try SIMDISA.select(flag: nil, environment: nil) == SIMDISA.best)
        #expect(try SIMDISA.select(flag: "auto", environment: "avx2") == SIMDISA.best)
        #expect(try SIMDISA.select(flag: "AVX2", environment: nil) == .avx2)
        #expect(try SIMDISA.select(flag: nil, environment: "avx2") == .avx2)
        #expect(throws: SIMDISA.SelectionError.self) { try SIMDISA.select(flag: "sse9", environment: nil) }
        if !SIMDISA.avx512.isSupported {
            #expect(throws: SIMDISA.SelectionError.self) { try SIMDISA.select(flag: "avx512", environment: nil) }
        } else {
            #expect(try SIMDISA.select(flag: nil, environment: "avx512") == .avx512)
        }
    }

    @Test("kernels report the ISA and its vector width", arguments: SIMDISA.supported)
    func reports(isa: SIMDISA) {
        let kernels = SIMDKernels(threads: 2, isa: isa)
        #expect(kernels.isa == isa.rawValue)
        #expect(kernels.vectorWidth == (isa == .avx512 ? 8 : 4))
        #expect(FallbackKernels().isa == "scalar")
    }

    @Test("matmul on each ISA is within k·ε·Σ|a||b| of the reference", arguments: SIMDISA.supported, [1, 2])
    func matmulPerISA(isa: SIMDISA, threads: Int) {
        print("ISA dispatch: matmul on \(isa), \(threads) thread(s)")
        let kernels = SIMDKernels(threads: threads, isa: isa)
        var rng = SIMDTestRNG(seed: 21)
        for (m, k, n) in Self.shapes {
            let a = randomMatrix(m, k, &rng, scale: 10), b = randomMatrix(k, n, &rng)
            let got = kernels.matmul(a, b)
            let want = Reference.matmul(a, b), magnitude = Reference.matmulMagnitude(a, b)
            #expect(got.rows == m && got.cols == n)
            var bad = 0
            for i in 0 ..< got.count where !withinDotTolerance(got: got.storage[i], want: want.storage[i], magnitude: magnitude.storage[i], terms: k) {
                bad += 1
            }
            #expect(bad == 0, "\(isa) \(m)×\(k)·\(k)×\(n): \(bad) elements outside tolerance")
        }
    }

    @Test("AVX2 and AVX-512 matmuls are bit-identical (same k blocks, same FMA order per output)",
          .enabled(if: SIMDISA.avx512.isSupported, "needs AVX-512 (this CPU or OS lacks it)"))
    func matmulISAsAgreeBitForBit() {
        var rng = SIMDTestRNG(seed: 22)
        // (520, 20, 1030): C over 4 MiB, so its whole 2 MiB pages are advised as huge pages; (70, 300, 2048): rows
        // 16 KiB apart, and packed B blocks of the full NC (the scratch cache hands out buffers of several sizes in turn).
        for (m, k, n) in Self.shapes + [(64, 1500, 70), (520, 20, 1030), (70, 300, 2048), (13, 257, 17)] {
            let a = randomMatrix(m, k, &rng, scale: 1e3), b = randomMatrix(k, n, &rng)
            let narrow = SIMDKernels(threads: 2, isa: .avx2).matmul(a, b)
            let wide = SIMDKernels(threads: 2, isa: .avx512).matmul(a, b)
            let one = SIMDKernels(threads: 1, isa: .avx512).matmul(a, b)
            #expect(zip(narrow.storage, wide.storage).allSatisfy { sameBits($0, $1) }, "\(m)×\(k)×\(n)")
            #expect(zip(one.storage, wide.storage).allSatisfy { sameBits($0, $1) }, "\(m)×\(k)×\(n) 1 vs 2 threads")
        }
    }

    @Test("a lone overflow is found wherever it lands (full or edge tile, first or last k block, each thread split) and rescued",
          arguments: SIMDISA.supported, [1, 2])
    func matmulOverflowFoundInEveryTile(isa: SIMDISA, threads: Int) {
        let kernels = SIMDKernels(threads: threads, isa: isa)
        var rng = SIMDTestRNG(seed: 23)
        // Shared packed B (61 rows), column strips (7 rows), row or column strips with a long k (18 rows),
        // a C of more than 4 MiB (huge-page advice) with k below one block.
        for (m, k, n) in [(61, 300, 75), (7, 300, 600), (18, 3000, 20), (520, 20, 1030)] {
            var a = randomMatrix(m, k, &rng), b = randomMatrix(k, n, &rng)
            // Three outputs whose sums overflow in ascending order (1e308 + 1e308 - 1e308) although the exact value,
            // about 1e308, is finite: at the first tile, the last (edge) tile and one inside, with their k terms in
            // the first k block, a middle one and the last.
            let spots = [(0, 0, 0), (m - 1, n - 1, k - 3), (m / 2, n / 2, k / 2)]
            for (i, j, p) in spots {
                a.storage[i * k + p] = 1e308; a.storage[i * k + p + 1] = 1e308; a.storage[i * k + p + 2] = -1e308
                for q in 0 ..< n {
                    for r in p ..< p + 3 { b.storage[r * n + q] = q == j ? 1 : 0 }
                }
            }
            let got = kernels.matmul(a, b)
            let want = Reference.matmul(a, b), magnitude = Reference.matmulMagnitude(a, b)
            var bad = 0
            for i in 0 ..< m {
                for j in 0 ..< n {
                    let x = got.storage[i * n + j]
                    if spots.contains(where: { $0.0 == i && $0.1 == j }) {
                        if !(x.isFinite && abs(x / 1e308 - 1) < 1e-12) { bad += 1 }
                    } else if !withinDotTolerance(got: x, want: want.storage[i * n + j], magnitude: magnitude.storage[i * n + j], terms: k) {
                        bad += 1
                    }
                }
            }
            #expect(bad == 0, "\(isa) \(threads) thread(s) \(m)×\(k)×\(n): \(bad) outputs wrong")
        }
    }
}
