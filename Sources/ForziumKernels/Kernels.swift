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

    func scale(_ a: Matrix, by factor: Double) -> Matrix
    func offset(_ a: Matrix, by addend: Double) -> Matrix
    func matmul(_ a: Matrix, _ b: Matrix) -> Matrix
    func transpose(_ a: Matrix) -> Matrix
    func elementwise(_ op: ElementwiseOp, _ a: Matrix, _ b: Matrix) -> Matrix
    func conv2d(_ a: Matrix, kernel: Matrix) -> Matrix
    func maxPool2d(_ a: Matrix, size: Int) -> Matrix
    /// `axis == nil`: a 1×1 matrix; `.rows`: 1×cols; `.cols`: rows×1.
    func reduce(_ op: ReductionOp, _ a: Matrix, axis: Axis?) -> Matrix
    /// `nil` when `mode == .minmax` and the matrix is constant (max == min), which has no normalisation.
    func normalize(_ a: Matrix, mode: NormalizeMode) -> Matrix?
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
