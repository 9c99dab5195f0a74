/// The numeric work behind every operation. Two implementations: `FallbackKernels` (portable, scalar,
/// single-threaded, the reference) and `SIMDKernels` (vectorised, multithreaded) in ForziumKernelsSIMD.
///
/// Kernels receive inputs that the operation catalogue has already validated (shapes agree, sizes are
/// within limits, pool size divides the shape, ...). They never fail.
public protocol Kernels: Sendable {
    /// `"fallback"` or `"simd"`.
    var kind: String { get }
    /// Worker threads the kernels may use.
    var threads: Int { get }
    /// Doubles per vector register the kernels use (1 for scalar code).
    var vectorWidth: Int { get }
    /// The instruction set the kernels run on: `"scalar"` (portable code), `"avx2"` or `"avx512"`.
    var isa: String { get }

    func scale(_ a: Matrix, by factor: Double) -> Matrix
    func offset(_ a: Matrix, by addend: Double) -> Matrix
    func matmul(_ a: Matrix, _ b: Matrix) -> Matrix
    /// `a` (m×k) times `b` (k×n) written into `c` (m×n), all row-major in storage the caller owns (e.g. mapped
    /// shared-memory segments): the same result, bit for bit, as `matmul(_:_:)`. Default: through `matmul(_:_:)`.
    func matmul(m: Int, n: Int, k: Int, a: UnsafePointer<Double>, b: UnsafePointer<Double>, into c: UnsafeMutablePointer<Double>)
    func transpose(_ a: Matrix) -> Matrix
    func elementwise(_ op: ElementwiseOp, _ a: Matrix, _ b: Matrix) -> Matrix
    func conv2d(_ a: Matrix, kernel: Matrix) -> Matrix
    func maxPool2d(_ a: Matrix, size: Int) -> Matrix
    /// `axis == nil`: a 1×1 matrix; `.rows`: 1×cols; `.cols`: rows×1.
    func reduce(_ op: ReductionOp, _ a: Matrix, axis: Axis?) -> Matrix
    /// `nil` when `mode == .minmax` and the matrix is constant (max == min), which has no normalisation.
    func normalize(_ a: Matrix, mode: NormalizeMode) -> Matrix?

    /// How finely the catalogue cuts matmul and conv2d into row blocks when a request can be cancelled (see
    /// `OperationCatalogue.evaluate(method:params:isCancelled:)`). Default: `RowBlocking.reference`.
    var rowBlocking: RowBlocking { get }

    /// The whole-matrix statistics `normalize` uses, so a stream can normalise row blocks one at a time;
    /// `nil` exactly when `normalize(a, mode:)` is `nil`. Default: the scalar reference (see `NormalizationStats`).
    func normalizationStats(_ a: Matrix, mode: NormalizeMode) -> NormalizationStats?
    /// Applies `stats` to every element of `a` (which may be a row block of the matrix the stats came from):
    /// `(x - stats.shift) / stats.divisor`. Must agree exactly with `normalize(_:mode:)`.
    func normalize(_ a: Matrix, with stats: NormalizationStats) -> Matrix
}

/// The size of the row blocks a cancellable matmul or conv2d is computed in: rows enough for about `work`
/// multiply-adds, and for matmul never fewer than `minimumRows` (so that cutting costs the kernel little). Row blocks
/// give exactly the whole call's result, so this only trades how soon a cancel is seen against per-block overhead.
public struct RowBlocking: Sendable, Equatable {
    /// Multiply-adds per block.
    public var work: Int
    /// Fewest rows per matmul block.
    public var minimumRows: Int

    public init(work: Int, minimumRows: Int = 1) {
        self.work = work
        self.minimumRows = minimumRows
    }

    /// 16 M multiply-adds (a few milliseconds for the scalar kernels), and at least 64 rows: each block reloads
    /// the whole right-hand matrix, which 64 rows amortise (row blocks of a 2000² matmul then take ~50 ms).
    public static let reference = RowBlocking(work: 1 << 24, minimumRows: 64)
}

/// What `normalize` computes over the whole matrix before it touches any element:
/// the result is `(x - shift) / divisor` for every element `x`.
public struct NormalizationStats: Sendable, Equatable {
    /// `minmax`: the minimum; `l2`: 0.
    public var shift: Double
    /// `minmax`: maximum - minimum; `l2`: the Euclidean norm, or 1 when it is 0 (a zero matrix stays zero).
    public var divisor: Double

    public init(shift: Double, divisor: Double) {
        self.shift = shift
        self.divisor = divisor
    }
}

extension Kernels {
    public func matmul(m: Int, n: Int, k: Int, a: UnsafePointer<Double>, b: UnsafePointer<Double>, into c: UnsafeMutablePointer<Double>) {
        let product = matmul(Matrix(rows: m, cols: k, storage: Array(UnsafeBufferPointer(start: a, count: m * k))),
                             Matrix(rows: k, cols: n, storage: Array(UnsafeBufferPointer(start: b, count: k * n))))
        product.storage.withUnsafeBufferPointer { c.update(from: $0.baseAddress!, count: m * n) }
    }

    public var rowBlocking: RowBlocking { .reference }
    public var isa: String { "scalar" }

    /// Reference statistics: `minmax` takes NaN-propagating min and max in row-major order (`nil` when
    /// max == min); `l2` sums `x * x` in row-major order from `+0.0` and takes the square root, rescaled per
    /// `NumericRules.l2Norm` when the squares under- or overflowed.
    public func normalizationStats(_ a: Matrix, mode: NormalizeMode) -> NormalizationStats? {
        a.storage.withUnsafeBufferPointer { p -> NormalizationStats? in
            switch mode {
            case .minmax:
                var lo = p[0], hi = p[0]
                for x in p {
                    if x < lo || x.isNaN { lo = x }
                    if x > hi || x.isNaN { hi = x }
                }
                if lo == hi { return nil }
                return NormalizationStats(shift: lo, divisor: hi - lo)
            case .l2:
                var squares = 0.0
                for x in p {
                    let square = x * x
                    squares = squares + square
                }
                let norm = NumericRules.l2Norm(sumOfSquares: squares, p.baseAddress!, count: p.count)
                return NormalizationStats(shift: 0, divisor: norm == 0 ? 1 : norm)
            }
        }
    }

    /// Reference application: `(x - shift) / divisor` per element.
    public func normalize(_ a: Matrix, with stats: NormalizationStats) -> Matrix {
        var out = [Double](repeating: 0, count: a.count)
        let shift = stats.shift, divisor = stats.divisor
        a.storage.withUnsafeBufferPointer { pa in
            out.withUnsafeMutableBufferPointer { po in
                for i in 0..<pa.count { po[i] = (pa[i] - shift) / divisor }
            }
        }
        return Matrix(rows: a.rows, cols: a.cols, storage: out)
    }
}

public enum ElementwiseOp: String, Sendable, CaseIterable {
    case add, sub, mul, div
}

public enum ReductionOp: String, Sendable, CaseIterable {
    case sum, mean, min, max
}

/// `rows` (axis 0) reduces down each column; `cols` (axis 1) reduces along each row.
public enum Axis: Int, Sendable {
    case rows = 0
    case cols = 1
}

public enum NormalizeMode: String, Sendable, CaseIterable {
    /// (x - min) / (max - min) over the whole matrix.
    case minmax
    /// x / sqrt(sum of x²) over the whole matrix; a zero matrix stays zero.
    case l2
}
