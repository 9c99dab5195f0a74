import ForziumKernels
import ForziumKernelsSIMD
import Testing

/// SIMDKernels against FallbackKernels (the engine's reference) for every kernel, on random odd shapes with
/// special values mixed in, using the agreement table of docs/simd-tolerance.md.
@Suite(.enabled(if: SIMDKernels.cpuSupported, "needs AVX2 + FMA"))
struct SIMDvsFallbackTests {
    let simd = SIMDKernels(threads: 2)
    let fallback = FallbackKernels()

    /// Random shapes from 1×1 to ~300×300, with a fraction of special values (±0, ±inf, NaN, huge, tiny).
    static func cases(seed: UInt64, count: Int = 14) -> [(Matrix, Matrix)] {
        var rng = SIMDTestRNG(seed: seed)
        var result: [(Matrix, Matrix)] = []
        let fixed = [(1, 1), (1, 300), (300, 1), (2, 3), (299, 301)]
        for index in 0 ..< count {
            let (rows, cols) = index < fixed.count ? fixed[index]
                : (Int.random(in: 1 ... 300, using: &rng), Int.random(in: 1 ... 300, using: &rng))
            let special = [0.0, 0.01, 0.2][index % 3]
            result.append((randomMatrix(rows, cols, &rng, special: special, scale: 100),
                           randomMatrix(rows, cols, &rng, special: special)))
        }
        return result
    }

    func expectBits(_ got: Matrix, _ want: Matrix, _ what: String) {
        #expect(got.rows == want.rows && got.cols == want.cols, "\(what): shape")
        let bad = zip(got.storage, want.storage).filter { !sameBits($0, $1) }.count
        #expect(bad == 0, "\(what) \(want.rows)×\(want.cols): \(bad) elements differ in bits")
    }

    func expectValues(_ got: Matrix, _ want: Matrix, _ what: String) {
        #expect(got.rows == want.rows && got.cols == want.cols, "\(what): shape")
        let bad = zip(got.storage, want.storage).filter { !sameValue($0, $1) }.count
        #expect(bad == 0, "\(what) \(want.rows)×\(want.cols): \(bad) elements differ")
    }

    @Test("bit-identical: scale, offset, elementwise, transpose, conv2d, axis-0 sums, normalize minmax")
    func bitIdentical() {
        for (a, b) in Self.cases(seed: 31) {
            for factor in [3.0, -0.5, 0.0, .infinity] {
                expectBits(simd.scale(a, by: factor), fallback.scale(a, by: factor), "scale \(factor)")
                expectBits(simd.offset(a, by: factor), fallback.offset(a, by: factor), "add \(factor)")
            }
            for op in ElementwiseOp.allCases {
                expectBits(simd.elementwise(op, a, b), fallback.elementwise(op, a, b), "elementwise_\(op)")
            }
            expectBits(simd.transpose(a), fallback.transpose(a), "transpose")
            for op in [ReductionOp.sum, .mean] {
                expectBits(simd.reduce(op, a, axis: .rows), fallback.reduce(op, a, axis: .rows), "\(op) axis 0")
            }
            let kr = min(a.rows, 1 + a.rows % 5), kc = min(a.cols, 1 + a.cols % 4)
            var rng = SIMDTestRNG(seed: UInt64(a.rows * 1000 + a.cols))
            let kernel = randomMatrix(kr, kc, &rng, special: 0.1)
            expectBits(simd.conv2d(a, kernel: kernel), fallback.conv2d(a, kernel: kernel), "conv2d \(kr)×\(kc)")
            let s = simd.normalize(a, mode: .minmax), f = fallback.normalize(a, mode: .minmax)
            #expect((s == nil) == (f == nil))
            if let s, let f { expectBits(s, f, "normalize minmax") }
            #expect(simd.normalizationStats(a, mode: .minmax).map { [$0.shift, $0.divisor] }.map { $0.map(\.bitPattern) }
                == fallback.normalizationStats(a, mode: .minmax).map { [$0.shift, $0.divisor] }.map { $0.map(\.bitPattern) }
                || a.storage.contains { $0.isNaN })
        }
    }

    @Test("same values (NaN propagates; ±0 either): max_pool2d, min, max on every axis")
    func sameValues() {
        for (a, _) in Self.cases(seed: 32) {
            for size in [1, 2, 3, 5] where a.rows % size == 0 && a.cols % size == 0 {
                expectValues(simd.maxPool2d(a, size: size), fallback.maxPool2d(a, size: size), "max_pool2d \(size)")
            }
            for axis in [nil, Axis.rows, .cols] {
                for op in [ReductionOp.min, .max] {
                    expectValues(simd.reduce(op, a, axis: axis), fallback.reduce(op, a, axis: axis), "\(op) axis \(String(describing: axis))")
                }
            }
        }
    }

    @Test("matmul within k·ε·Σ|a||b| of FallbackKernels")
    func matmul() {
        var rng = SIMDTestRNG(seed: 33)
        for index in 0 ..< 16 {
            let m = index == 0 ? 1 : Int.random(in: 1 ... 260, using: &rng)
            let k = index == 0 ? 1 : Int.random(in: 1 ... 300, using: &rng)
            let n = index == 0 ? 1 : Int.random(in: 1 ... 260, using: &rng)
            let special = [0.0, 0.003, 0.05][index % 3]
            let a = randomMatrix(m, k, &rng, special: special, scale: 1e3)
            let b = randomMatrix(k, n, &rng, special: special, scale: 1e-3)
            let got = simd.matmul(a, b), want = fallback.matmul(a, b)
            let magnitude = Reference.matmulMagnitude(a, b)
            #expect(got.rows == m && got.cols == n)
            let bad = (0 ..< got.count).filter {
                !withinDotTolerance(got: got.storage[$0], want: want.storage[$0], magnitude: magnitude.storage[$0], terms: k)
            }.count
            #expect(bad == 0, "\(m)×\(k)·\(k)×\(n) special \(special): \(bad) outside tolerance")
        }
    }

    @Test("sum/mean over the matrix and along rows within (n+1)·ε·Σ|x|; normalize l2 within (n+1)·ε relative")
    func sums() {
        for (a, _) in Self.cases(seed: 34) {
            for axis in [nil, Axis.cols] {
                for op in [ReductionOp.sum, .mean] {
                    let got = simd.reduce(op, a, axis: axis), want = fallback.reduce(op, a, axis: axis)
                    let groups = Reference.groups(a, axis: axis)
                    #expect(got.rows == want.rows && got.cols == want.cols)
                    var bad = 0
                    for (index, values) in groups.enumerated() {
                        var magnitude = values.reduce(0) { $0 + abs($1) }
                        if op == .mean { magnitude /= Double(values.count) }
                        if !withinDotTolerance(got: got.storage[index], want: want.storage[index], magnitude: magnitude, terms: values.count + 1) {
                            bad += 1
                        }
                    }
                    #expect(bad == 0, "\(op) axis \(String(describing: axis)) \(a.rows)×\(a.cols)")
                }
            }
            guard let s = simd.normalize(a, mode: .l2), let f = fallback.normalize(a, mode: .l2) else {
                Issue.record("l2 normalize returned nil")
                continue
            }
            let bound = Double(a.count + 1) * epsilon
            let bad = zip(s.storage, f.storage).filter { x, y in
                if !y.isFinite || !x.isFinite { return !sameValue(x, y) }
                return abs(x - y) > bound * abs(y) + Double.leastNonzeroMagnitude
            }.count
            #expect(bad == 0, "normalize l2 \(a.rows)×\(a.cols): \(bad) differ")
        }
    }
}
