import ForziumJSON
import ForziumKernels

/// Sum of `n` doubles with 16 independent lanes (4 × SIMD4), combined pairwise at the end.
@inline(__always)
func lanesSum(_ p: UnsafePointer<Double>, _ n: Int) -> Double {
    var s0 = SIMD4<Double>(), s1 = SIMD4<Double>(), s2 = SIMD4<Double>(), s3 = SIMD4<Double>()
    var i = 0
    let raw = UnsafeRawPointer(p)
    while i + 16 <= n {
        s0 += raw.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self)
        s1 += raw.loadUnaligned(fromByteOffset: i * 8 + 32, as: SIMD4<Double>.self)
        s2 += raw.loadUnaligned(fromByteOffset: i * 8 + 64, as: SIMD4<Double>.self)
        s3 += raw.loadUnaligned(fromByteOffset: i * 8 + 96, as: SIMD4<Double>.self)
        i += 16
    }
    while i + 4 <= n {
        s0 += raw.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self)
        i += 4
    }
    let v = (s0 + s1) + (s2 + s3)
    var total = (v[0] + v[1]) + (v[2] + v[3])
    while i < n { total += p[i]; i += 1 }
    return total
}

/// Σ x² of `n` doubles, 8 lanes with FMA.
@inline(__always)
func lanesSumOfSquares(_ p: UnsafePointer<Double>, _ n: Int) -> Double {
    var s0 = SIMD4<Double>(), s1 = SIMD4<Double>()
    var i = 0
    let raw = UnsafeRawPointer(p)
    while i + 8 <= n {
        let x0 = raw.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self)
        let x1 = raw.loadUnaligned(fromByteOffset: i * 8 + 32, as: SIMD4<Double>.self)
        s0 = s0.addingProduct(x0, x0)
        s1 = s1.addingProduct(x1, x1)
        i += 8
    }
    let v = s0 + s1
    var total = (v[0] + v[1]) + (v[2] + v[3])
    while i < n { total = total.addingProduct(p[i], p[i]); i += 1 }
    return total
}

/// (min, max) of `n ≥ 1` doubles; a NaN anywhere makes both NaN.
@inline(__always)
func lanesExtrema(_ p: UnsafePointer<Double>, _ n: Int) -> (min: Double, max: Double) {
    var lo = p[0], hi = p[0]
    var i = 0
    if n >= 8 {
        let raw = UnsafeRawPointer(p)
        var l0 = SIMD4<Double>(repeating: p[0]), l1 = l0, h0 = l0, h1 = l0
        while i + 8 <= n {
            let x0 = raw.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self)
            let x1 = raw.loadUnaligned(fromByteOffset: i * 8 + 32, as: SIMD4<Double>.self)
            l0 = nanMin(l0, x0); l1 = nanMin(l1, x1)
            h0 = nanMax(h0, x0); h1 = nanMax(h1, x1)
            i += 8
        }
        let l = nanMin(l0, l1), h = nanMax(h0, h1)
        for q in 0 ..< 4 { lo = nanMin(lo, l[q]); hi = nanMax(hi, h[q]) }
    }
    while i < n { lo = nanMin(lo, p[i]); hi = nanMax(hi, p[i]); i += 1 }
    return (lo, hi)
}

extension SIMDKernels {
    /// Partial results of `part(range)` over the pool, in range order.
    @inline(__always)
    func partials<T>(_ count: Int, initial: T, _ part: (Range<Int>) -> T) -> [T] {
        if threads == 1 || count < Self.parallelThreshold {
            return [part(0 ..< count)]
        }
        let parts = threads * 2
        var results = [T](repeating: initial, count: parts)
        results.withUnsafeMutableBufferPointer { out in
            let o = out.baseAddress!
            pool.run(parts: parts) { index in
                o[index] = part(ForkJoinPool.range(part: index, of: parts, count: count))
            }
        }
        return results
    }

    func totalSum(_ a: Matrix) -> Double {
        a.storage.withUnsafeBufferPointer { buffer in
            let p = buffer.baseAddress!
            let sums = partials(a.count, initial: 0.0) { range in lanesSum(p + range.lowerBound, range.count) }
            var total = 0.0
            for s in sums { total += s }
            return total
        }
    }

    func sumOfSquares(_ a: Matrix) -> Double {
        a.storage.withUnsafeBufferPointer { buffer in
            let p = buffer.baseAddress!
            let sums = partials(a.count, initial: 0.0) { range in lanesSumOfSquares(p + range.lowerBound, range.count) }
            var total = 0.0
            for s in sums { total += s }
            return total
        }
    }

    func extrema(_ a: Matrix) -> (min: Double, max: Double) {
        a.storage.withUnsafeBufferPointer { buffer in
            let p = buffer.baseAddress!
            let parts = partials(a.count, initial: (min: 0.0, max: 0.0)) { range in
                lanesExtrema(p + range.lowerBound, range.count)
            }
            var lo = parts[0].min, hi = parts[0].max
            for e in parts.dropFirst() { lo = nanMin(lo, e.min); hi = nanMax(hi, e.max) }
            return (lo, hi)
        }
    }

    /// axis 0: one value per column (1 × cols). Rows are folded in ascending order, so sums are exactly
    /// the sequential sums.
    func reduceDownColumns(_ op: ReductionOp, _ a: Matrix) -> Matrix {
        let rows = a.rows, cols = a.cols
        return a.storage.withUnsafeBufferPointer { buffer in
            let s = buffer.baseAddress!
            return make(1, cols) { out in
                forEachRange(cols, work: a.count) { range in
                    let j0 = range.lowerBound, width = range.count
                    let o = out + j0
                    // Sums start from +0.0 like the reference (so a column of -0.0 sums to +0.0); min/max from row 0.
                    if op == .sum || op == .mean {
                        o.initialize(repeating: 0, count: width)
                    } else {
                        o.initialize(from: s + j0, count: width)
                    }
                    for i in (op == .sum || op == .mean ? 0 : 1) ..< rows {
                        let row = s + i * cols + j0
                        var j = 0
                        while j + 4 <= width {
                            let acc = UnsafeRawPointer(o + j).loadUnaligned(as: SIMD4<Double>.self)
                            let v = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD4<Double>.self)
                            let r: SIMD4<Double>
                            switch op {
                            case .sum, .mean: r = acc + v
                            case .min: r = nanMin(acc, v)
                            case .max: r = nanMax(acc, v)
                            }
                            UnsafeMutableRawPointer(o + j).storeBytes(of: r, as: SIMD4<Double>.self)
                            j += 4
                        }
                        while j < width {
                            switch op {
                            case .sum, .mean: o[j] = o[j] + row[j]
                            case .min: o[j] = nanMin(o[j], row[j])
                            case .max: o[j] = nanMax(o[j], row[j])
                            }
                            j += 1
                        }
                    }
                    if op == .mean {
                        let d = Double(rows)
                        for j in 0 ..< width { o[j] = o[j] / d }
                    }
                    if op == .sum || op == .mean {
                        for j in 0 ..< width where !o[j].isFinite {
                            o[j] = NumericRules.sum(o[j], s + j0 + j, count: rows, stride: cols, divisor: op == .mean ? Double(rows) : 1)
                        }
                    }
                }
            }
        }
    }

    /// axis 1: one value per row (rows × 1).
    func reduceAlongRows(_ op: ReductionOp, _ a: Matrix) -> Matrix {
        let rows = a.rows, cols = a.cols
        return a.storage.withUnsafeBufferPointer { buffer in
            let s = buffer.baseAddress!
            return make(rows, 1) { out in
                forEachRange(rows, work: a.count) { range in
                    for i in range {
                        let row = s + i * cols
                        switch op {
                        case .sum: out[i] = NumericRules.sum(lanesSum(row, cols), row, count: cols)
                        case .mean:
                            let n = Double(cols)
                            out[i] = NumericRules.sum(lanesSum(row, cols) / n, row, count: cols, divisor: n)
                        case .min: out[i] = lanesExtrema(row, cols).min
                        case .max: out[i] = lanesExtrema(row, cols).max
                        }
                    }
                }
            }
        }
    }
}
