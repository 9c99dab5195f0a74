import Testing
import ForziumKernels

/// Bitwise equality that also treats NaN as equal to NaN (`==` on Double would not).
func sameBits(_ a: [Double], _ b: [Double]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
}

func mat(_ rows: [[Double]]) -> Matrix {
    Matrix(rows: rows.count, cols: rows[0].count, storage: rows.flatMap { $0 })
}

@Suite("FallbackKernels")
struct FallbackKernelsTests {
    let k = FallbackKernels()

    @Test func identity() {
        #expect(k.kind == "fallback")
        #expect(k.threads == 1)
        #expect(k.vectorWidth == 1)
    }

    @Test func scaleAndOffset() {
        #expect(k.scale(mat([[1, -2], [0.5, 3]]), by: 2) == mat([[2, -4], [1, 6]]))
        #expect(k.offset(mat([[1, -2], [0.5, 3]]), by: -1) == mat([[0, -3], [-0.5, 2]]))
    }

    @Test func matmulSmall() {
        #expect(k.matmul(mat([[1, 2], [3, 4]]), mat([[5, 6], [7, 8]])) == mat([[19, 22], [43, 50]]))
        // 2×3 × 3×1
        #expect(k.matmul(mat([[1, 2, 3], [4, 5, 6]]), mat([[1], [0], [-1]])) == mat([[-2], [-2]]))
        // 1×2 × 2×3
        #expect(k.matmul(mat([[2, 3]]), mat([[1, 0, 2], [0, 1, 3]])) == mat([[2, 3, 13]]))
    }

    @Test func matmulSumsInAscendingKOrder() {
        // ((0 + 1e16·1) + 1·1) + (-1e16)·1 = 0 when summed k = 0, 1, 2; summing 1e16 and -1e16 first gives 1.
        #expect(k.matmul(mat([[1e16, 1, -1e16]]), mat([[1], [1], [1]])) == mat([[0]]))
    }

    @Test func matmulTilesKeepTheReferenceOrderBitForBit() {
        // Shapes crossing the 256-column and 128-deep tiles; values with wide exponent spread so order matters.
        let n = 3, inner = 300, m = 530
        var state: UInt64 = 0x9E3779B97F4A7C15
        func next() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let mantissa = Double(state >> 11) / Double(1 << 53) - 0.5
            return mantissa * Double(sign: .plus, exponent: Int((state >> 3) % 40) - 20, significand: 1)
        }
        let a = Matrix(rows: n, cols: inner, storage: (0..<(n * inner)).map { _ in next() })
        let b = Matrix(rows: inner, cols: m, storage: (0..<(inner * m)).map { _ in next() })
        var expected = [Double](repeating: 0, count: n * m)
        for i in 0..<n {
            for j in 0..<m {
                var acc = 0.0
                for k in 0..<inner {
                    let product = a[i, k] * b[k, j]
                    acc = acc + product
                }
                expected[i * m + j] = acc
            }
        }
        #expect(sameBits(k.matmul(a, b).storage, expected))
    }

    @Test func matmulDoesNotFuseMultiplyAdd() {
        // x² is not exact in binary64; with separate rounding -fl(x²) + fl(x²) = 0, a fused step would leave 2^-60.
        let x = 1 + 0x1p-30
        let p = x * x
        let c = k.matmul(mat([[1, x]]), mat([[-p], [x]]))
        #expect(c.storage == [0])
        #expect((-p).addingProduct(x, x) != 0) // the fused result really differs
    }

    @Test func transposeShapes() {
        #expect(k.transpose(mat([[1, 2, 3], [4, 5, 6]])) == mat([[1, 4], [2, 5], [3, 6]]))
        #expect(k.transpose(mat([[7]])) == mat([[7]]))
        // Larger than one 32×32 tile, not a multiple of it.
        let rows = 45, cols = 70
        let a = Matrix(rows: rows, cols: cols, storage: (0..<(rows * cols)).map(Double.init))
        let t = k.transpose(a)
        #expect(t.rows == cols && t.cols == rows)
        var mismatches = 0
        for i in 0..<rows { for j in 0..<cols where t[j, i] != a[i, j] { mismatches += 1 } }
        #expect(mismatches == 0)
    }

    @Test func elementwiseOps() {
        let a = mat([[1, 2], [3, 4]]), b = mat([[4, 3], [2, 0]])
        #expect(k.elementwise(.add, a, b) == mat([[5, 5], [5, 4]]))
        #expect(k.elementwise(.sub, a, b) == mat([[-3, -1], [1, 4]]))
        #expect(k.elementwise(.mul, a, b) == mat([[4, 6], [6, 0]]))
        let d = k.elementwise(.div, mat([[1, -1, 0, 3]]), mat([[0, 0, 0, 4]]))
        #expect(sameBits(d.storage, [.infinity, -.infinity, .nan, 0.75]))
    }

    @Test func conv2dValidCrossCorrelation() {
        let a = mat([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
        // out[i,j] = a[i,j] - a[i+1,j+1] = -4; cross-correlation (kernel not flipped): a flipped kernel gives +4.
        #expect(k.conv2d(a, kernel: mat([[1, 0], [0, -1]])) == mat([[-4, -4], [-4, -4]]))
        #expect(k.conv2d(mat([[1, 2, 3]]), kernel: mat([[1, 2]])) == mat([[5, 8]]))
        // Kernel as large as the input: one output element, 1² + 2² + … + 9² = 285.
        #expect(k.conv2d(a, kernel: a) == mat([[285]]))
        // A 1×1 kernel scales.
        #expect(k.conv2d(a, kernel: mat([[2]])) == k.scale(a, by: 2))
        // 3×4 input, 2×3 kernel → 2×2.
        let b = mat([[1, 0, 2, 1], [0, 1, 0, 3], [2, 2, 1, 0]])
        let kern = mat([[1, 1, 1], [0, 0, -1]])
        // (0,0): 1+0+2 - 0 = 3; (0,1): 0+2+1 - 3 = 0; (1,0): 0+1+0 - 1 = 0; (1,1): 1+0+3 - 0 = 4
        #expect(k.conv2d(b, kernel: kern) == mat([[3, 0], [0, 4]]))
    }

    @Test func maxPool() {
        let a = mat([[1, 2, 5, 0], [3, 4, -1, -2], [0, 0, 9, 8], [-5, 1, 7, 6]])
        #expect(k.maxPool2d(a, size: 2) == mat([[4, 5], [1, 9]]))
        #expect(k.maxPool2d(a, size: 1) == a)
        #expect(k.maxPool2d(a, size: 4) == mat([[9]]))
        #expect(k.maxPool2d(mat([[1, 2, 3], [4, 5, 6], [7, 8, 9]]), size: 3) == mat([[9]]))
    }

    @Test func maxPoolPropagatesNaN() {
        // NaN first in its window, NaN later in the window; the NaN-free window is unaffected.
        let a = mat([[.nan, 1, 2, 3], [4, 5, 6, 7]])
        #expect(sameBits(k.maxPool2d(a, size: 2).storage, [.nan, 7]))
        let b = mat([[1, 2, 2, 3], [4, .nan, 6, .nan]])
        #expect(sameBits(k.maxPool2d(b, size: 2).storage, [.nan, .nan]))
        #expect(sameBits(k.maxPool2d(mat([[1, 9], [3, .nan]]), size: 2).storage, [.nan]))
    }

    @Test func reductions() {
        let a = mat([[1, 2, 3], [4, 5, 6]])
        #expect(k.reduce(.sum, a, axis: nil) == mat([[21]]))
        #expect(k.reduce(.sum, a, axis: .rows) == mat([[5, 7, 9]]))
        #expect(k.reduce(.sum, a, axis: .cols) == mat([[6], [15]]))
        #expect(k.reduce(.mean, a, axis: nil) == mat([[3.5]]))
        #expect(k.reduce(.mean, a, axis: .rows) == mat([[2.5, 3.5, 4.5]]))
        #expect(k.reduce(.mean, a, axis: .cols) == mat([[2], [5]]))
        let b = mat([[3, -1, 2], [0, 7, -4]])
        #expect(k.reduce(.min, b, axis: nil) == mat([[-4]]))
        #expect(k.reduce(.max, b, axis: nil) == mat([[7]]))
        #expect(k.reduce(.min, b, axis: .rows) == mat([[0, -1, -4]]))
        #expect(k.reduce(.max, b, axis: .rows) == mat([[3, 7, 2]]))
        #expect(k.reduce(.min, b, axis: .cols) == mat([[-1], [-4]]))
        #expect(k.reduce(.max, b, axis: .cols) == mat([[3], [7]]))
    }

    @Test func sumIsInAscendingIndexOrder() {
        // ((0 + 1e16) + 1) + -1e16 = 0 in ascending order; another order would keep the 1.
        #expect(k.reduce(.sum, mat([[1e16, 1, -1e16]]), axis: nil) == mat([[0]]))
        #expect(k.reduce(.sum, mat([[1e16], [1], [-1e16]]), axis: .rows) == mat([[0]]))
        #expect(k.reduce(.sum, mat([[1e16, 1, -1e16]]), axis: .cols) == mat([[0]]))
        #expect(k.reduce(.mean, mat([[1e16, 1, -1e16, 2]]), axis: nil) == mat([[0.5]]))
    }

    @Test func minMaxPropagateNaN() {
        let a = mat([[1, .nan, 3], [4, 5, 6]])
        #expect(sameBits(k.reduce(.min, a, axis: nil).storage, [.nan]))
        #expect(sameBits(k.reduce(.max, a, axis: nil).storage, [.nan]))
        #expect(sameBits(k.reduce(.max, a, axis: .rows).storage, [4, .nan, 6]))
        #expect(sameBits(k.reduce(.min, a, axis: .cols).storage, [.nan, 4]))
        #expect(sameBits(k.reduce(.max, mat([[.nan, 1]]), axis: nil).storage, [.nan]))
        #expect(sameBits(k.reduce(.sum, a, axis: .cols).storage, [.nan, 15]))
    }

    @Test func normalizeModes() {
        #expect(k.normalize(mat([[1, 3], [5, 9]]), mode: .minmax) == mat([[0, 0.25], [0.5, 1]]))
        #expect(k.normalize(mat([[3, 4]]), mode: .l2) == mat([[0.6, 0.8]]))
        #expect(k.normalize(mat([[0, 0], [0, 0]]), mode: .l2) == mat([[0, 0], [0, 0]]))
        #expect(k.normalize(mat([[2, 2], [2, 2]]), mode: .minmax) == nil)
        #expect(k.normalize(mat([[5]]), mode: .minmax) == nil)
        #expect(k.normalizationStats(mat([[1, 3], [5, 9]]), mode: .minmax) == NormalizationStats(shift: 1, divisor: 8))
        #expect(k.normalizationStats(mat([[3, 4]]), mode: .l2) == NormalizationStats(shift: 0, divisor: 5))
        #expect(k.normalizationStats(mat([[0]]), mode: .l2) == NormalizationStats(shift: 0, divisor: 1))
    }

    @Test func normalizeWithStatsMatchesWholeOnRowBlocks() {
        let a = Matrix(rows: 7, cols: 5, storage: (0..<35).map { Double(($0 * 37) % 11) - 3.25 })
        for mode in NormalizeMode.allCases {
            let whole = k.normalize(a, mode: mode)!
            let stats = k.normalizationStats(a, mode: mode)!
            var pieces: [Double] = []
            for start in stride(from: 0, to: 7, by: 3) {
                let end = min(start + 3, 7)
                let block = Matrix(rows: end - start, cols: 5, storage: Array(a.storage[(start * 5)..<(end * 5)]))
                pieces += k.normalize(block, with: stats).storage
            }
            #expect(sameBits(pieces, whole.storage))
        }
    }
}
