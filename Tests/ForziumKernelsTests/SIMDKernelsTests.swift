import ForziumKernels
import ForziumKernelsSIMD
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// SIMDKernels against the scalar reference (Reference in SIMDTestSupport.swift), with the tolerances of
/// docs/simd-tolerance.md. Every test is skipped on a CPU without AVX2/FMA.
@Suite(.enabled(if: SIMDKernels.cpuSupported, "needs AVX2 + FMA"))
struct SIMDKernelsTests {
    /// Odd and even shapes from 1×1 up to ~300, crossing the 6×8 tile, KC = 256 and the parallel thresholds.
    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (1, 7, 1), (2, 2, 2), (3, 5, 7), (6, 8, 8), (7, 9, 13), (5, 1, 17), (1, 300, 1),
        (13, 257, 9), (17, 33, 65), (64, 64, 64), (97, 255, 31), (101, 100, 99), (150, 7, 299), (299, 1, 2),
        (211, 263, 157), (300, 300, 300), (257, 513, 6),
    ]

    @Test("info: kind simd, vector width of the widest supported ISA, threads as asked")
    func info() {
        let k = SIMDKernels(threads: 3)
        #expect(k.kind == "simd")
        #expect(k.vectorWidth == SIMDISA.best!.vectorWidth)
        #expect(k.isa == SIMDISA.best!.rawValue)
        #expect(k.threads == 3)
        #expect(SIMDKernels().threads == SIMDKernels.availableCores)
    }

    @Test("matmul within k·ε·Σ|a||b| of the reference on random shapes", arguments: [1, 2, 3])
    func matmulRandomShapes(threads: Int) {
        let kernels = SIMDKernels(threads: threads)
        var rng = SIMDTestRNG(seed: 11)
        for (m, k, n) in Self.shapes {
            let a = randomMatrix(m, k, &rng, scale: 10)
            let b = randomMatrix(k, n, &rng)
            let got = kernels.matmul(a, b)
            let want = Reference.matmul(a, b)
            let magnitude = Reference.matmulMagnitude(a, b)
            #expect(got.rows == m && got.cols == n)
            var bad = 0
            for i in 0 ..< got.count where !withinDotTolerance(got: got.storage[i], want: want.storage[i], magnitude: magnitude.storage[i], terms: k) {
                bad += 1
            }
            #expect(bad == 0, "\(m)×\(k)·\(k)×\(n): \(bad) elements outside tolerance")
        }
    }

    @Test("matmul is bit-identical whatever the thread count (same accumulation order)")
    func matmulThreadIndependent() {
        var rng = SIMDTestRNG(seed: 12)
        for (m, k, n) in [(300, 300, 300), (257, 513, 6), (6, 300, 299), (128, 1000, 128)] {
            let a = randomMatrix(m, k, &rng), b = randomMatrix(k, n, &rng)
            let one = SIMDKernels(threads: 1).matmul(a, b)
            for threads in [2, 3, 4] {
                let many = SIMDKernels(threads: threads).matmul(a, b)
                #expect(zip(one.storage, many.storage).allSatisfy { sameBits($0, $1) }, "\(m)×\(k)×\(n) threads \(threads)")
            }
        }
    }

    @Test("matmul with special values (±0, ±inf, NaN, huge, tiny, subnormal)")
    func matmulSpecialValues() {
        let kernels = SIMDKernels(threads: 2)
        var rng = SIMDTestRNG(seed: 13)
        for (m, k, n) in [(1, 1, 1), (3, 4, 5), (7, 9, 13), (31, 17, 29), (70, 300, 90)] {
            for fraction in [0.02, 0.3] {
                let a = randomMatrix(m, k, &rng, special: fraction)
                let b = randomMatrix(k, n, &rng, special: fraction)
                let got = kernels.matmul(a, b), want = Reference.matmul(a, b)
                let magnitude = Reference.matmulMagnitude(a, b)
                var bad = 0
                for i in 0 ..< got.count where !withinDotTolerance(got: got.storage[i], want: want.storage[i], magnitude: magnitude.storage[i], terms: k) {
                    bad += 1
                }
                #expect(bad == 0, "\(m)×\(k)×\(n) special \(fraction): \(bad) elements differ")
            }
        }
        // Exact small cases.
        let nanRow = kernels.matmul(Matrix(rows: 1, cols: 2, storage: [.nan, 1]), Matrix(rows: 2, cols: 1, storage: [0, 2]))
        #expect(nanRow.storage[0].isNaN)
        let infZero = kernels.matmul(Matrix(rows: 1, cols: 1, storage: [.infinity]), Matrix(rows: 1, cols: 1, storage: [0]))
        #expect(infZero.storage[0].isNaN)
        let inf = kernels.matmul(Matrix(rows: 1, cols: 2, storage: [.infinity, 1]), Matrix(rows: 2, cols: 1, storage: [2, 3]))
        #expect(inf.storage[0] == .infinity)
        let tiny = kernels.matmul(Matrix(rows: 1, cols: 1, storage: [.leastNonzeroMagnitude]), Matrix(rows: 1, cols: 1, storage: [1]))
        #expect(tiny.storage[0] == .leastNonzeroMagnitude)
    }

    @Test("scale, offset, elementwise ops are bit-identical to scalar IEEE arithmetic")
    func elementwiseExact() {
        let kernels = SIMDKernels(threads: 2)
        var rng = SIMDTestRNG(seed: 14)
        for (rows, _, cols) in Self.shapes {
            let a = randomMatrix(rows, cols, &rng, special: 0.1)
            let b = randomMatrix(rows, cols, &rng, special: 0.1)
            for factor in [2.5, -0.0, Double.infinity, .nan] {
                let got = kernels.scale(a, by: factor)
                #expect(got.rows == rows && got.cols == cols)
                #expect(zip(got.storage, a.storage).allSatisfy { sameBits($0, $1 * factor) })
                let shifted = kernels.offset(a, by: factor)
                #expect(zip(shifted.storage, a.storage).allSatisfy { sameBits($0, $1 + factor) })
            }
            for op in ElementwiseOp.allCases {
                let got = kernels.elementwise(op, a, b)
                let f: (Double, Double) -> Double = switch op {
                case .add: (+)
                case .sub: (-)
                case .mul: (*)
                case .div: (/)
                }
                #expect(got.rows == rows && got.cols == cols)
                #expect((0 ..< a.count).allSatisfy { sameBits(got.storage[$0], f(a.storage[$0], b.storage[$0])) }, "\(op) \(rows)×\(cols)")
            }
        }
        let div = kernels.elementwise(.div, Matrix(rows: 1, cols: 4, storage: [1, -1, 0, .nan]), Matrix(rows: 1, cols: 4, storage: [0, 0, 0, 1]))
        #expect(div.storage[0] == .infinity && div.storage[1] == -.infinity && div.storage[2].isNaN && div.storage[3].isNaN)
    }

    @Test("transpose is exact for every shape")
    func transposeExact() {
        let kernels = SIMDKernels(threads: 2)
        var rng = SIMDTestRNG(seed: 15)
        for (rows, cols, _) in Self.shapes + [(1000, 70, 0), (33, 2049, 0)] {
            let a = randomMatrix(rows, cols, &rng, special: 0.05)
            let t = kernels.transpose(a)
            #expect(t.rows == cols && t.cols == rows)
            var ok = true
            for i in 0 ..< rows { for j in 0 ..< cols where !sameBits(t[j, i], a[i, j]) { ok = false } }
            #expect(ok, "\(rows)×\(cols)")
        }
    }

    @Test("conv2d within K·ε·Σ|a||w| of the naive valid cross-correlation")
    func conv2dTolerance() {
        let kernels = SIMDKernels(threads: 2)
        var rng = SIMDTestRNG(seed: 16)
        let cases: [(Int, Int, Int, Int)] = [(1, 1, 1, 1), (3, 3, 3, 3), (5, 7, 2, 3), (9, 4, 1, 4), (64, 65, 3, 3),
                                              (300, 299, 5, 2), (257, 300, 1, 1), (40, 41, 11, 13)]
        for (rows, cols, kr, kc) in cases {
            for special in [0.0, 0.05] {
                let a = randomMatrix(rows, cols, &rng, special: special)
                let w = randomMatrix(kr, kc, &rng)
                let got = kernels.conv2d(a, kernel: w)
                let want = Reference.conv2d(a, w), magnitude = Reference.conv2d(a, w, magnitude: true)
                #expect(got.rows == rows - kr + 1 && got.cols == cols - kc + 1)
                var bad = 0
                for i in 0 ..< got.count where !withinDotTolerance(got: got.storage[i], want: want.storage[i], magnitude: magnitude.storage[i], terms: kr * kc) {
                    bad += 1
                }
                #expect(bad == 0, "conv2d \(rows)×\(cols) * \(kr)×\(kc): \(bad) differ")
            }
        }
    }

    @Test("max_pool2d is exact and NaN propagates")
    func maxPoolExact() {
        let kernels = SIMDKernels(threads: 2)
        var rng = SIMDTestRNG(seed: 17)
        for (rows, cols, size) in [(1, 1, 1), (2, 2, 2), (6, 9, 3), (300, 300, 2), (300, 300, 5), (7, 7, 7), (256, 1024, 4), (12, 300, 1)] {
            let a = randomMatrix(rows, cols, &rng, special: 0.01)
            let got = kernels.maxPool2d(a, size: size), want = Reference.maxPool2d(a, size)
            #expect(got.rows == rows / size && got.cols == cols / size)
            #expect(zip(got.storage, want.storage).allSatisfy { sameValue($0, $1) }, "\(rows)×\(cols) size \(size)")
        }
        let nan = kernels.maxPool2d(Matrix(rows: 2, cols: 4, storage: [1, .nan, 5, 6, 2, 3, 7, .infinity]), size: 2)
        #expect(nan.storage[0].isNaN && nan.storage[1] == .infinity)
        // Four windows at once (the vector path for size 2): NaN in the first, second, third and fourth slot.
        let wide = kernels.maxPool2d(Matrix(rows: 2, cols: 10, storage: [
            .nan, 1, 2, 3, 4, 5, 6, 7, 8, 9,
            0, 0, 0, .nan, -1, -2, 3, .nan, -.infinity, -.infinity,
        ]), size: 2)
        #expect(wide.storage[0].isNaN && wide.storage[1].isNaN && wide.storage[2] == 5 && wide.storage[3].isNaN)
        #expect(wide.storage[4] == 9)
    }

    @Test("reductions: min/max and axis-0 sums exact; other sums within n·ε·Σ|x|", arguments: [nil, Axis.rows, Axis.cols])
    func reductions(axis: Axis?) {
        let kernels = SIMDKernels(threads: 2)
        var rng = SIMDTestRNG(seed: 18)
        for (rows, cols, _) in Self.shapes + [(512, 512, 0), (1, 100_000, 0), (100_000, 1, 0)] {
            for special in [0.0, 0.01] {
                let a = randomMatrix(rows, cols, &rng, special: special, scale: 1000)
                let groups = Reference.groups(a, axis: axis)
                for op in ReductionOp.allCases {
                    let got = kernels.reduce(op, a, axis: axis)
                    switch axis {
                    case nil: #expect(got.rows == 1 && got.cols == 1)
                    case .rows: #expect(got.rows == 1 && got.cols == cols)
                    case .cols: #expect(got.rows == rows && got.cols == 1)
                    }
                    var bad = 0
                    for (index, values) in groups.enumerated() {
                        let want = Reference.reduce(op, values), value = got.storage[index]
                        let exact = op == .min || op == .max || axis == .rows
                        if exact {
                            if !sameValue(value, want) { bad += 1 }
                        } else {
                            var magnitude = values.reduce(0) { $0 + abs($1) }
                            if op == .mean { magnitude /= Double(values.count) }
                            if !withinDotTolerance(got: value, want: want, magnitude: magnitude, terms: values.count + 1) { bad += 1 }
                        }
                    }
                    #expect(bad == 0, "\(op) axis \(String(describing: axis)) \(rows)×\(cols) special \(special)")
                }
            }
        }
        #expect(kernels.reduce(.max, Matrix(rows: 1, cols: 3, storage: [1, .nan, 2]), axis: axis).storage.allSatisfy { $0.isNaN } || axis == .rows)
        #expect(kernels.reduce(.min, Matrix(rows: 1, cols: 9, storage: [-0.0, 5, 4, 3, 2, 1, 7, 8, -.infinity]), axis: nil).storage == [-.infinity])
    }

    @Test("normalize: minmax exact, l2 within (n+1)·ε relative, constant minmax → nil, zero l2 stays zero")
    func normalize() {
        let kernels = SIMDKernels(threads: 2)
        var rng = SIMDTestRNG(seed: 19)
        for (rows, cols, _) in Self.shapes {
            let a = randomMatrix(rows, cols, &rng, scale: 100)
            let all = a.storage
            let lo = Reference.minOf(all), hi = Reference.maxOf(all)
            if let got = kernels.normalize(a, mode: .minmax) {
                #expect(hi != lo)
                #expect(zip(got.storage, all).allSatisfy { sameBits($0, ($1 - lo) / (hi - lo)) })
            } else {
                #expect(hi == lo)
            }
            let norm = all.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let l2 = kernels.normalize(a, mode: .l2)!
            let bound = Double(all.count + 1) * epsilon
            #expect(zip(l2.storage, all).allSatisfy { abs($0 - $1 / norm) <= bound * abs($1 / norm) + Double.leastNonzeroMagnitude })
        }
        #expect(kernels.normalize(Matrix(rows: 2, cols: 2, storage: [3, 3, 3, 3]), mode: .minmax) == nil)
        #expect(kernels.normalize(Matrix(rows: 300, cols: 300, storage: .init(repeating: -1.5, count: 90_000)), mode: .minmax) == nil)
        #expect(kernels.normalize(Matrix(rows: 1, cols: 3, storage: [0, -0.0, 0]), mode: .l2)?.storage == [0, -0.0, 0])
        #expect(kernels.normalize(Matrix(rows: 1, cols: 2, storage: [1, 3]), mode: .minmax)?.storage == [0, 1])
        #expect(kernels.normalize(Matrix(rows: 1, cols: 2, storage: [3, 4]), mode: .l2)?.storage == [0.6, 0.8])
    }

    @Test("concurrent callers share the pool without deadlock and get the same results")
    func concurrentCallers() async {
        let kernels = SIMDKernels(threads: 2)
        var rng = SIMDTestRNG(seed: 20)
        let a = randomMatrix(200, 180, &rng), b = randomMatrix(180, 190, &rng)
        let big = randomMatrix(400, 400, &rng)
        let expected = kernels.matmul(a, b)
        let expectedSum = kernels.reduce(.sum, big, axis: .rows)
        let expectedT = kernels.transpose(big)
        let results = await withTaskGroup(of: Bool.self, returning: [Bool].self) { group in
            for task in 0 ..< 16 {
                group.addTask {
                    for _ in 0 ..< 5 {
                        switch task % 3 {
                        case 0: if kernels.matmul(a, b) != expected { return false }
                        case 1: if kernels.reduce(.sum, big, axis: .rows) != expectedSum { return false }
                        default: if kernels.transpose(big) != expectedT { return false }
                        }
                    }
                    return true
                }
            }
            var all: [Bool] = []
            for await ok in group { all.append(ok) }
            return all
        }
        #expect(results.count == 16 && results.allSatisfy { $0 })
    }
}
