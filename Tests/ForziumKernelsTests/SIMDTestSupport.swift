import ForziumKernels
import ForziumTesting

// Support for the SIMD kernel tests: deterministic random inputs, a straightforward reference, and the
// tolerance checks documented in docs/simd-tolerance.md.

/// The SIMD tests' generator: SplitMix64, the same inputs on every run.
typealias SIMDTestRNG = SplitMix64

let epsilon = Double.ulpOfOne // 2⁻⁵²

/// Special values mixed into inputs: signed zeros, infinities, NaN, huge, tiny and subnormal magnitudes.
let specialValues: [Double] = [0.0, -0.0, .infinity, -.infinity, .nan, 1e300, -1e300, 1e-300, -1e-300,
                               .leastNonzeroMagnitude, -.leastNormalMagnitude, 1, -2.5, 0.1]

/// A matrix of uniform values in [-1, 1); with `special > 0`, roughly that fraction are special values.
func randomMatrix(_ rows: Int, _ cols: Int, _ rng: inout SIMDTestRNG, special: Double = 0, scale: Double = 1) -> Matrix {
    var storage = [Double](repeating: 0, count: rows * cols)
    for i in storage.indices {
        if special > 0 && Double.random(in: 0 ..< 1, using: &rng) < special {
            storage[i] = specialValues.randomElement(using: &rng)!
        } else {
            storage[i] = Double.random(in: -1 ..< 1, using: &rng) * scale
        }
    }
    return Matrix(rows: rows, cols: cols, storage: storage)
}

/// Straightforward scalar kernels with the catalogue's semantics: sums in ascending order from 0,
/// unfused multiply–add, NaN propagating through min/max/pooling.
enum Reference {
    static func matmul(_ a: Matrix, _ b: Matrix) -> Matrix {
        var c = Matrix(rows: a.rows, cols: b.cols, storage: .init(repeating: 0, count: a.rows * b.cols))
        for i in 0 ..< a.rows {
            for j in 0 ..< b.cols {
                var s = 0.0
                for p in 0 ..< a.cols { s += a[i, p] * b[p, j] }
                c[i, j] = s
            }
        }
        return c
    }

    /// Σ|a||b| for each output of `a · b` (the scale of the matmul error bound).
    static func matmulMagnitude(_ a: Matrix, _ b: Matrix) -> Matrix {
        var c = Matrix(rows: a.rows, cols: b.cols, storage: .init(repeating: 0, count: a.rows * b.cols))
        for i in 0 ..< a.rows {
            for j in 0 ..< b.cols {
                var s = 0.0
                for p in 0 ..< a.cols { s += abs(a[i, p]) * abs(b[p, j]) }
                c[i, j] = s
            }
        }
        return c
    }

    static func conv2d(_ a: Matrix, _ k: Matrix, magnitude: Bool = false) -> Matrix {
        let rows = a.rows - k.rows + 1, cols = a.cols - k.cols + 1
        var out = Matrix(rows: rows, cols: cols, storage: .init(repeating: 0, count: rows * cols))
        for i in 0 ..< rows {
            for j in 0 ..< cols {
                var s = 0.0
                for p in 0 ..< k.rows {
                    for q in 0 ..< k.cols {
                        s += magnitude ? abs(a[i + p, j + q]) * abs(k[p, q]) : a[i + p, j + q] * k[p, q]
                    }
                }
                out[i, j] = s
            }
        }
        return out
    }

    static func maxOf(_ values: some Sequence<Double>) -> Double {
        var m = -Double.infinity
        for v in values { if v.isNaN { return .nan }; if v > m { m = v } }
        return m
    }

    static func minOf(_ values: some Sequence<Double>) -> Double {
        var m = Double.infinity
        for v in values { if v.isNaN { return .nan }; if v < m { m = v } }
        return m
    }

    static func maxPool2d(_ a: Matrix, _ size: Int) -> Matrix {
        let rows = a.rows / size, cols = a.cols / size
        var out = Matrix(rows: rows, cols: cols, storage: .init(repeating: 0, count: rows * cols))
        for i in 0 ..< rows {
            for j in 0 ..< cols {
                var window: [Double] = []
                for p in 0 ..< size { for q in 0 ..< size { window.append(a[i * size + p, j * size + q]) } }
                out[i, j] = maxOf(window)
            }
        }
        return out
    }

    /// The values each output of `reduce(op, a, axis)` folds, in ascending order.
    static func groups(_ a: Matrix, axis: Axis?) -> [[Double]] {
        switch axis {
        case nil: return [a.storage]
        case .rows: return (0 ..< a.cols).map { j in (0 ..< a.rows).map { a[$0, j] } }
        case .cols: return (0 ..< a.rows).map { i in Array(a.storage[i * a.cols ..< (i + 1) * a.cols]) }
        }
    }

    static func reduce(_ op: ReductionOp, _ values: [Double]) -> Double {
        switch op {
        case .sum: return values.reduce(0, +)
        case .mean: return values.reduce(0, +) / Double(values.count)
        case .min: return minOf(values)
        case .max: return maxOf(values)
        }
    }
}

/// Same IEEE value: equal (−0 == +0), or both NaN.
func sameValue(_ x: Double, _ y: Double) -> Bool { x == y || (x.isNaN && y.isNaN) }

/// Identical bits, except that any NaN matches any NaN.
func sameBits(_ x: Double, _ y: Double) -> Bool { x.bitPattern == y.bitPattern || (x.isNaN && y.isNaN) }

/// The dot-product tolerance: |got − want| ≤ terms·ε·magnitude when the magnitude is finite. When it is not
/// (infinite or NaN inputs, or products that overflow), the non-finite outcome must agree: ±∞ exactly,
/// NaN as NaN — except that a fused multiply–add may turn the fallback's NaN into ±∞ when an overflowing
/// product meets an infinity (fma(1e300, 1e300, −∞) = −∞ while 1e300·1e300 + (−∞) = NaN).
func withinDotTolerance(got: Double, want: Double, magnitude: Double, terms: Int) -> Bool {
    if magnitude.isFinite && want.isFinite {
        return got.isFinite && abs(got - want) <= Double(terms) * epsilon * magnitude
    }
    if want.isInfinite { return got == want }
    if want.isNaN { return got.isNaN || got.isInfinite }
    // want finite although Σ|a||b| overflowed: summation order decides; any finite or infinite answer is an
    // acceptable rounding of the same exact sum only if it is the same value or non-finite.
    return got == want || !got.isFinite
}
