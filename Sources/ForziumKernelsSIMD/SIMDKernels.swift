import CForziumCPU
import ForziumJSON
import ForziumKernels

/// Vectorised (`SIMD4<Double>`, AVX2 + FMA) and multithreaded kernels.
///
/// This module is compiled with `-target-cpu haswell`: call `SIMDKernels.cpuSupported` (or
/// `forzium_cpu_has_avx2_fma()` from CForziumCPU) before using any kernel, and refuse to start otherwise.
///
/// Semantics are those of `FallbackKernels`; where the order of floating-point operations differs the
/// results stay within the tolerances documented in `docs/simd-tolerance.md`:
/// - bit-identical: scale, offset, elementwise add/sub/mul/div, transpose, conv2d, sums along axis 0,
///   normalize minmax; identical values (NaN propagating): max_pool2d, min, max;
/// - matmul: |Δ| ≤ k·ε·Σ|a||b| (k terms per output, ε = 2⁻⁵²);
/// - sum/mean over the whole matrix or along axis 1: |Δ| ≤ (n+1)·ε·Σ|x|; normalize l2: (n+1)·ε relative.
/// Large inputs (≥ `parallelThreshold` elements) are split across the worker pool; small ones stay on the
/// calling thread.
public struct SIMDKernels: Kernels {
    public let threads: Int
    public var kind: String { "simd" }
    /// The instruction set the matmul runs on (`engine.info` `isa`).
    public let instructionSet: SIMDISA
    public var isa: String { instructionSet.rawValue }
    /// Doubles per vector register of the matmul micro-kernel (`engine.info` `simd_width`).
    public var vectorWidth: Int { instructionSet.vectorWidth }
    let pool: ForkJoinPool

    /// Inputs with fewer elements than this run on the calling thread (a hand-off costs more than it saves).
    public static let parallelThreshold = 65_536

    /// 1 G multiply-adds (10–20 ms on two cores, so a cancel still takes effect quickly), and at least 288 rows (three
    /// of the gemm's row blocks): each block packs the whole right-hand matrix again and its rows are copied in and out,
    /// which that much work amortises. A 1024×1024 matmul runs in one call.
    public var rowBlocking: RowBlocking { RowBlocking(work: 1 << 30, minimumRows: 3 * gemmMC) }

    /// CPUs this process may run on.
    public static var availableCores: Int { max(1, Int(forzium_cpu_available())) }

    /// Whether this CPU has AVX2 and FMA, which every kernel here is compiled for.
    public static var cpuSupported: Bool { forzium_cpu_has_avx2_fma() != 0 }

    /// - Parameter isa: the instruction set for the matmul (default: the widest this machine supports). The caller
    ///   must have checked `isa.isSupported` (`SIMDISA.select` does).
    public init(threads: Int = SIMDKernels.availableCores, isa: SIMDISA = SIMDISA.best ?? .avx2) {
        self.threads = max(1, threads)
        self.instructionSet = isa
        self.pool = ForkJoinPool.shared(threads: self.threads)
    }

    // MARK: - Helpers

    /// Splits `0 ..< count` into contiguous ranges (multiples of 8 elements, `ForkJoinPool.range`) run on the pool when
    /// `work ≥ parallelThreshold`, else one range on this thread.
    @inline(__always)
    func forEachRange(_ count: Int, work: Int? = nil, _ body: (Range<Int>) -> Void) {
        let work = work ?? count
        if threads == 1 || work < Self.parallelThreshold || count < 16 {
            body(0 ..< count)
            return
        }
        pool.forEachRange(count, parts: min(threads * 2, count / 8), granule: 8) { _, range in body(range) }
    }

    /// A new matrix whose storage is filled by `fill(out)`.
    @inline(__always)
    func make(_ rows: Int, _ cols: Int, _ fill: (UnsafeMutablePointer<Double>) -> Void) -> Matrix {
        let count = rows * cols
        let storage = [Double](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { fill(buffer.baseAddress!) }
            initialized = count
        }
        return Matrix(rows: rows, cols: cols, storage: storage)
    }

    /// out[i] = f(a[i]) for all i, vectorised and split across threads for large inputs.
    @inline(__always)
    func map(
        _ a: Matrix,
        _ vector: (SIMD4<Double>) -> SIMD4<Double>,
        _ scalar: (Double) -> Double
    ) -> Matrix {
        a.storage.withUnsafeBufferPointer { src in
            make(a.rows, a.cols) { out in
                let s = src.baseAddress!
                forEachRange(a.count) { range in
                    var i = range.lowerBound
                    let end = range.upperBound
                    while i + 8 <= end {
                        let x0 = UnsafeRawPointer(s + i).loadUnaligned(as: SIMD4<Double>.self)
                        let x1 = UnsafeRawPointer(s + i + 4).loadUnaligned(as: SIMD4<Double>.self)
                        UnsafeMutableRawPointer(out + i).storeBytes(of: vector(x0), as: SIMD4<Double>.self)
                        UnsafeMutableRawPointer(out + i + 4).storeBytes(of: vector(x1), as: SIMD4<Double>.self)
                        i += 8
                    }
                    while i < end { out[i] = scalar(s[i]); i += 1 }
                }
            }
        }
    }

    /// out[i] = f(a[i], b[i]) for all i.
    @inline(__always)
    func zip(
        _ a: Matrix, _ b: Matrix,
        _ vector: (SIMD4<Double>, SIMD4<Double>) -> SIMD4<Double>,
        _ scalar: (Double, Double) -> Double
    ) -> Matrix {
        a.storage.withUnsafeBufferPointer { srcA in
            b.storage.withUnsafeBufferPointer { srcB in
                make(a.rows, a.cols) { out in
                    let x = srcA.baseAddress!, y = srcB.baseAddress!
                    forEachRange(a.count) { range in
                        var i = range.lowerBound
                        let end = range.upperBound
                        while i + 4 <= end {
                            let u = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD4<Double>.self)
                            let v = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD4<Double>.self)
                            UnsafeMutableRawPointer(out + i).storeBytes(of: vector(u, v), as: SIMD4<Double>.self)
                            i += 4
                        }
                        while i < end { out[i] = scalar(x[i], y[i]); i += 1 }
                    }
                }
            }
        }
    }

    // MARK: - Kernels

    public func scale(_ a: Matrix, by factor: Double) -> Matrix {
        let f = SIMD4<Double>(repeating: factor)
        return map(a, { $0 * f }, { $0 * factor })
    }

    public func offset(_ a: Matrix, by addend: Double) -> Matrix {
        let d = SIMD4<Double>(repeating: addend)
        return map(a, { $0 + d }, { $0 + addend })
    }

    public func elementwise(_ op: ElementwiseOp, _ a: Matrix, _ b: Matrix) -> Matrix {
        switch op {
        case .add: return zip(a, b, { $0 + $1 }, { $0 + $1 })
        case .sub: return zip(a, b, { $0 - $1 }, { $0 - $1 })
        case .mul: return zip(a, b, { $0 * $1 }, { $0 * $1 })
        case .div: return zip(a, b, { $0 / $1 }, { $0 / $1 })
        }
    }

    public func matmul(_ a: Matrix, _ b: Matrix) -> Matrix {
        precondition(a.cols == b.rows, "matmul: inner dimensions differ")
        let m = a.rows, k = a.cols, n = b.cols
        return a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                make(m, n) { c in
                    guard let a = pa.baseAddress, let b = pb.baseAddress else {
                        _ = gemm(m: m, n: n, k: k, a: UnsafePointer(c), b: UnsafePointer(c), c: c)
                        return
                    }
                    matmul(m: m, n: n, k: k, a: a, b: b, into: c)
                }
            }
        }
    }

    public func matmul(m: Int, n: Int, k: Int, a: UnsafePointer<Double>, b: UnsafePointer<Double>, into c: UnsafeMutablePointer<Double>) {
        if gemm(m: m, n: n, k: k, a: a, b: b, c: c) {
            NumericRules.rescueMatmul(m: m, n: n, k: k, a: a, b: b, c: c)
        }
    }

    public func transpose(_ a: Matrix) -> Matrix {
        let rows = a.rows, cols = a.cols
        return a.storage.withUnsafeBufferPointer { src in
            make(cols, rows) { out in
                let s = src.baseAddress!
                // Work in strips of 4 output rows (= 4 input columns); within a strip, 4×4 blocks are
                // transposed in registers. Only 4 input and 4 output cache lines are live at a time, which
                // keeps power-of-two row strides from thrashing one cache set.
                let strips = (cols + 3) / 4
                let body: (Range<Int>) -> Void = { range in
                    for strip in range {
                        let j0 = strip * 4
                        if j0 + 4 <= cols {
                            transposeStrip(s, rows: rows, cols: cols, j0: j0, out)
                        } else {
                            for j in j0 ..< cols {
                                let dst = out + j * rows
                                for i in 0 ..< rows { dst[i] = s[i * cols + j] }
                            }
                        }
                    }
                }
                if threads == 1 || a.count < Self.parallelThreshold || strips < 2 {
                    body(0 ..< strips)
                } else {
                    pool.forEachRange(strips, parts: min(threads * 4, strips)) { _, range in body(range) }
                }
            }
        }
    }

    public func conv2d(_ a: Matrix, kernel: Matrix) -> Matrix {
        let outRows = a.rows - kernel.rows + 1, outCols = a.cols - kernel.cols + 1
        precondition(outRows >= 1 && outCols >= 1, "conv2d: kernel larger than input")
        let kr = kernel.rows, kc = kernel.cols, cols = a.cols
        return a.storage.withUnsafeBufferPointer { src in
            kernel.storage.withUnsafeBufferPointer { kern in
                make(outRows, outCols) { out in
                    let s = src.baseAddress!, w = kern.baseAddress!
                    // Output row i: for each kernel tap (p, q) in order, out[i][·] += a[i+p][q + ·] · w[p][q].
                    // Each output therefore sums its products in the naive (p, q) order, starting from 0.
                    let rowsBody: (Range<Int>) -> Void = { range in
                        for i in range {
                            let o = out + i * outCols
                            o.initialize(repeating: 0, count: outCols)
                            for p in 0 ..< kr {
                                for q in 0 ..< kc {
                                    let weight = w[p * kc + q]
                                    let wv = SIMD4<Double>(repeating: weight)
                                    let x = s + (i + p) * cols + q
                                    var j = 0
                                    while j + 4 <= outCols {
                                        let acc = UnsafeRawPointer(o + j).loadUnaligned(as: SIMD4<Double>.self)
                                        let v = UnsafeRawPointer(x + j).loadUnaligned(as: SIMD4<Double>.self)
                                        UnsafeMutableRawPointer(o + j).storeBytes(of: acc + v * wv, as: SIMD4<Double>.self)
                                        j += 4
                                    }
                                    while j < outCols { o[j] = o[j] + x[j] * weight; j += 1 }
                                }
                            }
                        }
                    }
                    let work = outRows * outCols * kr * kc
                    if threads == 1 || work < Self.parallelThreshold * 4 || outRows < 2 {
                        rowsBody(0 ..< outRows)
                    } else {
                        pool.forEachRange(outRows, parts: min(threads * 2, outRows)) { _, range in rowsBody(range) }
                    }
                }
            }
        }
    }

    public func maxPool2d(_ a: Matrix, size: Int) -> Matrix {
        precondition(size >= 1 && a.rows % size == 0 && a.cols % size == 0, "max_pool2d: size must divide the shape")
        let outRows = a.rows / size, outCols = a.cols / size, cols = a.cols
        return a.storage.withUnsafeBufferPointer { src in
            make(outRows, outCols) { out in
                let s = src.baseAddress!
                let rowsBody: (Range<Int>) -> Void = { range in
                    // Max down the `size` input rows of a window row (vectorised), then across each window.
                    let column = UnsafeMutablePointer<Double>.allocate(capacity: cols)
                    defer { column.deallocate() }
                    for oi in range {
                        let first = s + oi * size * cols
                        column.update(from: first, count: cols)
                        for r in 1 ..< size {
                            let row = first + r * cols
                            var j = 0
                            while j + 4 <= cols {
                                let m = UnsafeRawPointer(column + j).loadUnaligned(as: SIMD4<Double>.self)
                                let v = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD4<Double>.self)
                                UnsafeMutableRawPointer(column + j).storeBytes(of: nanMax(m, v), as: SIMD4<Double>.self)
                                j += 4
                            }
                            while j < cols { column[j] = nanMax(column[j], row[j]); j += 1 }
                        }
                        let o = out + oi * outCols
                        var start = 0
                        if size == 2 {
                            // Pairs, 4 windows at a time: max of the even and odd columns.
                            while start + 4 <= outCols {
                                let p = UnsafeRawPointer(column + start * 2)
                                let pair = SIMD8(lowHalf: p.loadUnaligned(as: SIMD4<Double>.self),
                                                 highHalf: p.loadUnaligned(fromByteOffset: 32, as: SIMD4<Double>.self))
                                UnsafeMutableRawPointer(o + start).storeBytes(of: nanMax(pair.evenHalf, pair.oddHalf), as: SIMD4<Double>.self)
                                start += 4
                            }
                        }
                        for oj in start ..< outCols {
                            var m = column[oj * size]
                            for q in 1 ..< size { m = nanMax(m, column[oj * size + q]) }
                            o[oj] = m
                        }
                    }
                }
                if threads == 1 || a.count < Self.parallelThreshold || outRows < 2 {
                    rowsBody(0 ..< outRows)
                } else {
                    pool.forEachRange(outRows, parts: min(threads * 2, outRows)) { _, range in rowsBody(range) }
                }
            }
        }
    }

    public func reduce(_ op: ReductionOp, _ a: Matrix, axis: Axis?) -> Matrix {
        switch axis {
        case nil:
            let value: Double
            switch op {
            case .sum: value = a.storage.withUnsafeBufferPointer { NumericRules.sum(totalSum(a), $0.baseAddress!, count: a.count) }
            case .mean:
                let n = Double(a.count)
                value = a.storage.withUnsafeBufferPointer { NumericRules.sum(totalSum(a) / n, $0.baseAddress!, count: a.count, divisor: n) }
            case .min: value = extrema(a).min
            case .max: value = extrema(a).max
            }
            return Matrix(rows: 1, cols: 1, storage: [value])
        case .rows:
            return reduceDownColumns(op, a)
        case .cols:
            return reduceAlongRows(op, a)
        }
    }

    public func normalize(_ a: Matrix, mode: NormalizeMode) -> Matrix? {
        guard let stats = normalizationStats(a, mode: mode) else { return nil }
        return normalize(a, with: stats)
    }

    /// `minmax`: NaN-propagating min and max (vectorised; identical to the reference), `nil` when equal.
    /// `l2`: √Σx² with 8 lanes and FMA (within (n+1)·ε relative of the row-major reference), 1 when it is 0.
    public func normalizationStats(_ a: Matrix, mode: NormalizeMode) -> NormalizationStats? {
        switch mode {
        case .minmax:
            let (lo, hi) = extrema(a)
            if lo == hi { return nil }
            return NormalizationStats(shift: lo, divisor: hi - lo)
        case .l2:
            let norm = a.storage.withUnsafeBufferPointer {
                NumericRules.l2Norm(sumOfSquares: sumOfSquares(a), $0.baseAddress!, count: a.count)
            }
            return NormalizationStats(shift: 0, divisor: norm == 0 ? 1 : norm)
        }
    }

    /// `(x - shift) / divisor` for every element: bit-identical to the reference.
    public func normalize(_ a: Matrix, with stats: NormalizationStats) -> Matrix {
        let shift = stats.shift, divisor = stats.divisor
        let sv = SIMD4<Double>(repeating: shift), dv = SIMD4<Double>(repeating: divisor)
        return map(a, { ($0 - sv) / dv }, { ($0 - shift) / divisor })
    }
}

/// Output rows j0 ..< j0+4 of the transpose (input columns j0 ..< j0+4, all rows).
@inline(__always)
func transposeStrip(_ s: UnsafePointer<Double>, rows: Int, cols: Int, j0: Int, _ out: UnsafeMutablePointer<Double>) {
    let o0 = out + j0 * rows, o1 = o0 + rows, o2 = o1 + rows, o3 = o2 + rows
    var i = 0
    while i + 4 <= rows {
        let p = UnsafeRawPointer(s + i * cols + j0)
        let stride = cols * 8
        let r0 = p.loadUnaligned(as: SIMD4<Double>.self)
        let r1 = p.loadUnaligned(fromByteOffset: stride, as: SIMD4<Double>.self)
        let r2 = p.loadUnaligned(fromByteOffset: 2 * stride, as: SIMD4<Double>.self)
        let r3 = p.loadUnaligned(fromByteOffset: 3 * stride, as: SIMD4<Double>.self)
        let even01 = SIMD8(lowHalf: r0, highHalf: r1).evenHalf   // r00 r02 r10 r12
        let even23 = SIMD8(lowHalf: r2, highHalf: r3).evenHalf   // r20 r22 r30 r32
        let odd01 = SIMD8(lowHalf: r0, highHalf: r1).oddHalf     // r01 r03 r11 r13
        let odd23 = SIMD8(lowHalf: r2, highHalf: r3).oddHalf     // r21 r23 r31 r33
        let c0 = SIMD8(lowHalf: even01, highHalf: even23)
        let c1 = SIMD8(lowHalf: odd01, highHalf: odd23)
        UnsafeMutableRawPointer(o0 + i).storeBytes(of: c0.evenHalf, as: SIMD4<Double>.self)
        UnsafeMutableRawPointer(o2 + i).storeBytes(of: c0.oddHalf, as: SIMD4<Double>.self)
        UnsafeMutableRawPointer(o1 + i).storeBytes(of: c1.evenHalf, as: SIMD4<Double>.self)
        UnsafeMutableRawPointer(o3 + i).storeBytes(of: c1.oddHalf, as: SIMD4<Double>.self)
        i += 4
    }
    while i < rows {
        let row = s + i * cols + j0
        o0[i] = row[0]; o1[i] = row[1]; o2[i] = row[2]; o3[i] = row[3]
        i += 1
    }
}

// MARK: - NaN-propagating min / max

/// max(m, v) where a NaN in either operand gives NaN (once `m` is NaN it stays NaN).
@inline(__always)
func nanMax(_ m: Double, _ v: Double) -> Double { (v > m || v.isNaN) ? v : m }

@inline(__always)
func nanMin(_ m: Double, _ v: Double) -> Double { (v < m || v.isNaN) ? v : m }

@inline(__always)
func nanMax(_ m: SIMD4<Double>, _ v: SIMD4<Double>) -> SIMD4<Double> {
    m.replacing(with: v, where: (v .> m) .| (v .!= v))
}

@inline(__always)
func nanMin(_ m: SIMD4<Double>, _ v: SIMD4<Double>) -> SIMD4<Double> {
    m.replacing(with: v, where: (v .< m) .| (v .!= v))
}
