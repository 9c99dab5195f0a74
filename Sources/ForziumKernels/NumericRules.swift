/// The rules both engines follow where evaluating the same formula in a different order (or fused) could turn a finite
/// answer into `±inf`/NaN in one engine and not the other, or leave l2 normalisation undone. `FallbackKernels` and
/// `SIMDKernels` compute as usual and call these only for the rare results they concern; the rescue computations here
/// are scalar, in a fixed order, and shared, so both engines give the same bits whenever a rescue decides the answer.
/// Stated in docs/simd-tolerance.md ("Overflow, underflow and signed zero").
public enum NumericRules {
    /// 2⁻⁶⁴: sums and dot products whose plain evaluation overflowed are redone on inputs scaled by this (exact for
    /// every input above 2⁻⁹⁵⁸; smaller ones lose low bits, far below the stated tolerance), then scaled back.
    public static let overflowScale = 0x1p-64

    /// Whether any of `count` values (every `stride`-th from `p`) is ±inf or NaN.
    @inlinable
    public static func anyNonFinite(_ p: UnsafePointer<Double>, count: Int, stride: Int = 1) -> Bool {
        if stride == 1 {
            // x · 0 is 0 for finite x and NaN otherwise; lanes accumulate it without branches.
            var acc = SIMD8<Double>()
            var i = 0
            let raw = UnsafeRawPointer(p)
            while i + 8 <= count {
                acc += raw.loadUnaligned(fromByteOffset: i * 8, as: SIMD8<Double>.self) * 0
                i += 8
            }
            if acc.sum() != 0 { return true }
            while i < count { if !p[i].isFinite { return true }; i += 1 }
            return false
        }
        for i in 0 ..< count where !p[i * stride].isFinite { return true }
        return false
    }

    /// Sum rule: `plain` is a sum of `count` values (every `stride`-th from `p`) in the engine's own order. When it is
    /// finite, or some value is not, it stands. Otherwise (finite inputs, an overflowing evaluation) the sum is
    /// Σ (x · 2⁻⁶⁴) in ascending index order from +0.0, then times 2⁶⁴ — or, for a mean, divided by `divisor` first —
    /// so that an overflowing intermediate cannot decide the answer: ±inf only if the scaled-back result overflows.
    public static func sum(
        _ plain: Double, _ p: UnsafePointer<Double>, count: Int, stride: Int = 1, divisor: Double = 1
    ) -> Double {
        if plain.isFinite || anyNonFinite(p, count: count, stride: stride) { return plain }
        var scaled = 0.0
        for i in 0 ..< count { scaled = scaled + p[i * stride] * overflowScale }
        return scaled / divisor / overflowScale
    }

    /// Matmul rule: for every output C[i][j] (C is m × n, row-major) that is ±inf or NaN although row i of A (m × k) and
    /// column j of B (k × n) are finite, C[i][j] = 2⁶⁴ · Σₚ (A[i][p] · 2⁻⁶⁴) · B[p][j], p ascending from +0.0, each
    /// product rounded before it is added (the reference order). Returns how many outputs were recomputed.
    @discardableResult
    public static func rescueMatmul(
        m: Int, n: Int, k: Int, a: UnsafePointer<Double>, b: UnsafePointer<Double>, c: UnsafeMutablePointer<Double>
    ) -> Int {
        if m == 0 || n == 0 || k == 0 || !anyNonFinite(UnsafePointer(c), count: m * n) { return 0 }
        // 0 = not known yet, 1 = finite, 2 = has a non-finite value.
        var rowState = [UInt8](repeating: 0, count: m)
        var colState = [UInt8](repeating: 0, count: n)
        var rescued = 0
        for i in 0 ..< m {
            let row = c + i * n
            for j in 0 ..< n where !row[j].isFinite {
                if rowState[i] == 0 { rowState[i] = anyNonFinite(a + i * k, count: k) ? 2 : 1 }
                if rowState[i] == 2 { break }
                if colState[j] == 0 { colState[j] = anyNonFinite(b + j, count: k, stride: n) ? 2 : 1 }
                if colState[j] == 2 { continue }
                var scaled = 0.0
                for p in 0 ..< k {
                    let product = (a[i * k + p] * overflowScale) * b[p * n + j]
                    scaled = scaled + product
                }
                row[j] = scaled / overflowScale
                rescued += 1
            }
        }
        return rescued
    }

    /// l2 rule: `sumOfSquares` is Σx² in the engine's own order. When it is below 2⁻¹⁰²² (zero or subnormal: squares
    /// underflowed) although some x ≠ 0, or +inf although every x is finite, the norm is recomputed as
    /// 2ᵉ · √Σ (x · 2⁻ᵉ)² (ascending order, unfused, 2ᵉ the power of two at or below max|x| — an exact scaling), so that
    /// underflow cannot leave a matrix unnormalised and overflow cannot zero it. Returns the norm (`√sumOfSquares`
    /// when no rescue applies).
    public static func l2Norm(sumOfSquares: Double, _ p: UnsafePointer<Double>, count: Int) -> Double {
        let plain = sumOfSquares.squareRoot()
        let underflowed = sumOfSquares < 0x1p-1022
        let overflowed = sumOfSquares == .infinity
        if !underflowed && !overflowed { return plain }
        var largest = 0.0
        for i in 0 ..< count {
            let x = p[i].magnitude
            if !x.isFinite { return plain }
            if x > largest { largest = x }
        }
        if largest == 0 { return plain }
        let e = Int(largest.exponent)  // 2^e ≤ largest < 2^(e+1), also for subnormals
        // x · 2^-e in at most two exact steps (2^-e alone overflows for e < -1023).
        let first = -e > 1000 ? 1000 : -e
        let step1 = Double(sign: .plus, exponent: first, significand: 1)
        let step2 = Double(sign: .plus, exponent: -e - first, significand: 1)
        var squares = 0.0
        for i in 0 ..< count {
            let y = p[i] * step1 * step2
            squares = squares + y * y
        }
        // norm = √squares · 2^e, again in two exact steps.
        return squares.squareRoot() / step2 / step1
    }

    /// Signed-zero rule: a sum or dot product that is zero is +0.0 (what summation from +0.0 gives): `x + 0`.
    @inlinable
    public static func positiveZero(_ x: Double) -> Double { x + 0 }
}
