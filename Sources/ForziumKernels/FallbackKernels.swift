/// The portable reference kernels: scalar Swift, single-threaded, deterministic.
///
/// Every result is defined by the evaluation order documented on each method, so another implementation
/// (the SIMD kernels) can state its tolerance against this one. Arithmetic is IEEE 754 binary64 with
/// separate multiply and add (never a fused multiply-add); accumulators start at `+0.0`.
///
/// NaN: `min`/`max` reductions and `maxPool2d` propagate NaN — a window, row, column or matrix that contains a
/// NaN reduces to NaN. Sums propagate NaN and infinities by IEEE rules (`inf + -inf` is NaN).
/// Overflow and underflow follow `NumericRules`: a sum, mean or matmul output of finite inputs whose evaluation
/// overflowed is redone on scaled inputs, and l2 norms whose squares under- or overflowed are rescaled.
public struct FallbackKernels: Kernels {
    public init() {}

    public var kind: String { "fallback" }
    public var threads: Int { 1 }
    public var vectorWidth: Int { 1 }

    /// `a[i, j] * factor` for every element.
    public func scale(_ a: Matrix, by factor: Double) -> Matrix {
        map(a) { $0 * factor }
    }

    /// `a[i, j] + addend` for every element.
    public func offset(_ a: Matrix, by addend: Double) -> Matrix {
        map(a) { $0 + addend }
    }

    /// Matrix product `a × b` (`a.cols == b.rows`).
    ///
    /// Accumulation order (the reference the SIMD engine's tolerance is stated against): each output element is
    /// `c[i, j] = (((0 + a[i,0]·b[0,j]) + a[i,1]·b[1,j]) + …) + a[i,n-1]·b[n-1,j]` — the products summed in
    /// ascending `k`, each product rounded before it is added (no FMA), starting from `+0.0`. The loop order is
    /// i-k-j (a row of `c` accumulates scaled rows of `b`), which gives exactly that order per element. For cache
    /// reuse the j and k ranges are cut into tiles (`matmulColumnTile` × `matmulDepthTile` of `b`); tiles of k are
    /// visited in ascending order, so the per-element order above is unchanged.
    public func matmul(_ a: Matrix, _ b: Matrix) -> Matrix {
        let n = a.rows, inner = a.cols, m = b.cols
        var out = [Double](repeating: 0, count: n * m)
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { pc in
                    for j0 in stride(from: 0, to: m, by: Self.matmulColumnTile) {
                        let width = Swift.min(Self.matmulColumnTile, m - j0)
                        for k0 in stride(from: 0, to: inner, by: Self.matmulDepthTile) {
                            let k1 = Swift.min(k0 + Self.matmulDepthTile, inner)
                            for i in 0..<n {
                                let cRow = pc.baseAddress! + i * m + j0
                                let aRow = pa.baseAddress! + i * inner
                                for k in k0..<k1 {
                                    let aik = aRow[k]
                                    let bRow = pb.baseAddress! + k * m + j0
                                    for j in 0..<width {
                                        let product = aik * bRow[j]
                                        cRow[j] = cRow[j] + product
                                    }
                                }
                            }
                        }
                    }
                    NumericRules.rescueMatmul(m: n, n: m, k: inner, a: pa.baseAddress!, b: pb.baseAddress!, c: pc.baseAddress!)
                }
            }
        }
        return Matrix(rows: n, cols: m, storage: out)
    }

    /// Columns of `b` (and `c`) per matmul tile.
    static let matmulColumnTile = 256
    /// Rows of `b` (values of k) per matmul tile: a tile of `b` is 128 × 256 doubles = 256 KiB, within L2.
    static let matmulDepthTile = 128

    /// `out[j, i] = a[i, j]`.
    public func transpose(_ a: Matrix) -> Matrix {
        let rows = a.rows, cols = a.cols
        var out = [Double](repeating: 0, count: a.count)
        a.storage.withUnsafeBufferPointer { pa in
            out.withUnsafeMutableBufferPointer { po in
                // Blocked so both sides stay in cache on large matrices.
                let tile = 32
                for i0 in stride(from: 0, to: rows, by: tile) {
                    let i1 = Swift.min(i0 + tile, rows)
                    for j0 in stride(from: 0, to: cols, by: tile) {
                        let j1 = Swift.min(j0 + tile, cols)
                        for i in i0..<i1 {
                            for j in j0..<j1 {
                                po[j * rows + i] = pa[i * cols + j]
                            }
                        }
                    }
                }
            }
        }
        return Matrix(rows: cols, cols: rows, storage: out)
    }

    /// Element by element, same shapes; IEEE semantics (division by zero gives ±inf or NaN).
    public func elementwise(_ op: ElementwiseOp, _ a: Matrix, _ b: Matrix) -> Matrix {
        switch op {
        case .add: zip(a, b) { $0 + $1 }
        case .sub: zip(a, b) { $0 - $1 }
        case .mul: zip(a, b) { $0 * $1 }
        case .div: zip(a, b) { $0 / $1 }
        }
    }

    /// "Valid" cross-correlation, stride 1, no padding: the result is
    /// `(a.rows - kernel.rows + 1) × (a.cols - kernel.cols + 1)` and
    /// `out[i, j] = Σ_p Σ_q a[i+p, j+q] · kernel[p, q]`, summed with `p` ascending, then `q` ascending within
    /// each `p`, from `+0.0`, no FMA.
    public func conv2d(_ a: Matrix, kernel: Matrix) -> Matrix {
        let kh = kernel.rows, kw = kernel.cols
        let outRows = a.rows - kh + 1, outCols = a.cols - kw + 1
        let cols = a.cols
        var out = [Double](repeating: 0, count: outRows * outCols)
        a.storage.withUnsafeBufferPointer { pa in
            kernel.storage.withUnsafeBufferPointer { pk in
                out.withUnsafeMutableBufferPointer { po in
                    // Output row i accumulates, for each kernel element in (p, q) order, a shifted input row
                    // scaled by it: per output element that is exactly the documented order.
                    for i in 0..<outRows {
                        let oRow = po.baseAddress! + i * outCols
                        for p in 0..<kh {
                            let aRow = pa.baseAddress! + (i + p) * cols
                            for q in 0..<kw {
                                let w = pk[p * kw + q]
                                let src = aRow + q
                                for j in 0..<outCols {
                                    let product = src[j] * w
                                    oRow[j] = oRow[j] + product
                                }
                            }
                        }
                    }
                }
            }
        }
        return Matrix(rows: outRows, cols: outCols, storage: out)
    }

    /// Maximum over non-overlapping `size × size` windows (`size` divides both dimensions).
    /// A window containing NaN gives NaN; otherwise, among equal maxima (e.g. `-0.0` and `+0.0`) the first in
    /// row-major window order is kept.
    public func maxPool2d(_ a: Matrix, size: Int) -> Matrix {
        let outRows = a.rows / size, outCols = a.cols / size
        let cols = a.cols
        var out = [Double](repeating: 0, count: outRows * outCols)
        a.storage.withUnsafeBufferPointer { pa in
            out.withUnsafeMutableBufferPointer { po in
                for oi in 0..<outRows {
                    for oj in 0..<outCols {
                        var best = pa[oi * size * cols + oj * size]
                        for p in 0..<size {
                            let row = pa.baseAddress! + (oi * size + p) * cols + oj * size
                            for q in 0..<size {
                                best = Self.maxPropagatingNaN(best, row[q])
                            }
                        }
                        po[oi * outCols + oj] = best
                    }
                }
            }
        }
        return Matrix(rows: outRows, cols: outCols, storage: out)
    }

    /// `sum`: ascending index order from `+0.0` (row-major for the whole matrix, ascending row index down a
    /// column, ascending column index along a row). `mean`: that sum divided by the element count.
    /// `min` / `max`: NaN-propagating; among equal values the first is kept.
    public func reduce(_ op: ReductionOp, _ a: Matrix, axis: Axis?) -> Matrix {
        let rows = a.rows, cols = a.cols
        return a.storage.withUnsafeBufferPointer { pa -> Matrix in
            switch axis {
            case nil:
                var acc = Self.initial(op, pa[0])
                for x in pa { acc = Self.step(op, acc, x) }
                let value = Self.finish(op, acc, count: pa.count)
                return Matrix(rows: 1, cols: 1, storage: [Self.sumRule(op, value, pa.baseAddress!, count: pa.count, stride: 1)])
            case .rows:
                var acc = [Double](repeating: 0, count: cols)
                for j in 0..<cols { acc[j] = Self.initial(op, pa[j]) }
                for i in 0..<rows {
                    for j in 0..<cols { acc[j] = Self.step(op, acc[j], pa[i * cols + j]) }
                }
                for j in 0..<cols {
                    acc[j] = Self.sumRule(op, Self.finish(op, acc[j], count: rows), pa.baseAddress! + j, count: rows, stride: cols)
                }
                return Matrix(rows: 1, cols: cols, storage: acc)
            case .cols:
                var out = [Double](repeating: 0, count: rows)
                for i in 0..<rows {
                    var acc = Self.initial(op, pa[i * cols])
                    for j in 0..<cols { acc = Self.step(op, acc, pa[i * cols + j]) }
                    out[i] = Self.sumRule(op, Self.finish(op, acc, count: cols), pa.baseAddress! + i * cols, count: cols, stride: 1)
                }
                return Matrix(rows: rows, cols: 1, storage: out)
            }
        }
    }

    /// See `NormalizeMode`; computed as `normalize(a, with: normalizationStats(a, mode:))`.
    public func normalize(_ a: Matrix, mode: NormalizeMode) -> Matrix? {
        guard let stats = normalizationStats(a, mode: mode) else { return nil }
        return normalize(a, with: stats)
    }

    // MARK: - Helpers

    @inline(__always)
    static func maxPropagatingNaN(_ current: Double, _ x: Double) -> Double {
        (x > current || x.isNaN) ? x : current
    }

    @inline(__always)
    static func minPropagatingNaN(_ current: Double, _ x: Double) -> Double {
        (x < current || x.isNaN) ? x : current
    }

    @inline(__always)
    static func initial(_ op: ReductionOp, _ first: Double) -> Double {
        switch op {
        case .sum, .mean: 0
        case .min, .max: first
        }
    }

    @inline(__always)
    static func step(_ op: ReductionOp, _ acc: Double, _ x: Double) -> Double {
        switch op {
        case .sum, .mean: acc + x
        case .min: minPropagatingNaN(acc, x)
        case .max: maxPropagatingNaN(acc, x)
        }
    }

    @inline(__always)
    static func finish(_ op: ReductionOp, _ acc: Double, count: Int) -> Double {
        op == .mean ? acc / Double(count) : acc
    }

    /// `NumericRules.sum` for sums and means (an overflowing sum of finite values is redone scaled); min/max as is.
    @inline(__always)
    static func sumRule(_ op: ReductionOp, _ value: Double, _ p: UnsafePointer<Double>, count: Int, stride: Int) -> Double {
        switch op {
        case .sum: NumericRules.sum(value, p, count: count, stride: stride)
        case .mean: NumericRules.sum(value, p, count: count, stride: stride, divisor: Double(count))
        case .min, .max: value
        }
    }

    private func map(_ a: Matrix, _ f: (Double) -> Double) -> Matrix {
        var out = [Double](repeating: 0, count: a.count)
        a.storage.withUnsafeBufferPointer { pa in
            out.withUnsafeMutableBufferPointer { po in
                for i in 0..<pa.count { po[i] = f(pa[i]) }
            }
        }
        return Matrix(rows: a.rows, cols: a.cols, storage: out)
    }

    private func zip(_ a: Matrix, _ b: Matrix, _ f: (Double, Double) -> Double) -> Matrix {
        var out = [Double](repeating: 0, count: a.count)
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { po in
                    for i in 0..<pa.count { po[i] = f(pa[i], pb[i]) }
                }
            }
        }
        return Matrix(rows: a.rows, cols: a.cols, storage: out)
    }
}
