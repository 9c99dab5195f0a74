import ForziumKernels
import ForziumKernelsSIMD
import Testing

/// The overflow, underflow and signed-zero rules of docs/simd-tolerance.md, on both kernel sets (and every ISA the
/// SIMD kernels can run here): the cases where the engines used to disagree now give the same answer.
struct NumericRulesTests {
    /// The fallback and, where the CPU allows, SIMD kernels on every supported ISA, with 1 and 2 threads.
    static var kernelSets: [any Kernels] {
        var sets: [any Kernels] = [FallbackKernels()]
        if SIMDKernels.cpuSupported {
            for isa in SIMDISA.supported { sets += [SIMDKernels(threads: 1, isa: isa), SIMDKernels(threads: 2, isa: isa)] }
        }
        return sets
    }

    static func label(_ k: any Kernels) -> String { "\(k.kind)/\(k.isa)/\(k.threads)t" }

    @Test("a sum of finite values whose evaluation overflows is redone scaled: [1e308,-1e308,0,0,…] sums to 0.0")
    func overflowingSum() {
        let row: [Double] = [1e308, -1e308, 0, 0, 1e308, -1e308, 0, 0]
        let a = Matrix(rows: 1, cols: 8, storage: row)
        let column = Matrix(rows: 8, cols: 1, storage: row)
        for k in Self.kernelSets {
            #expect(k.reduce(.sum, a, axis: nil).storage == [0], "\(Self.label(k))")
            #expect(k.reduce(.mean, a, axis: nil).storage == [0], "\(Self.label(k))")
            #expect(k.reduce(.sum, a, axis: .cols).storage == [0], "\(Self.label(k))")
            #expect(k.reduce(.sum, column, axis: .rows).storage == [0], "\(Self.label(k))")
            // A true overflow stays +inf; the mean of two 1e308 is 1e308 (scaled back after dividing).
            let big = Matrix(rows: 1, cols: 2, storage: [1e308, 1e308])
            #expect(k.reduce(.sum, big, axis: nil).storage == [.infinity], "\(Self.label(k))")
            #expect(k.reduce(.mean, big, axis: nil).storage == [1e308], "\(Self.label(k))")
            #expect(k.reduce(.mean, Matrix(rows: 2, cols: 1, storage: [1e308, 1e308]), axis: .rows).storage == [1e308])
            // Non-finite inputs keep IEEE rules.
            #expect(k.reduce(.sum, Matrix(rows: 1, cols: 2, storage: [.infinity, -.infinity]), axis: nil).storage[0].isNaN)
        }
    }

    @Test("matmul: an output that overflowed in one evaluation order is redone scaled — [[-1e308,-1e308]]·[[1],[-2]] = 1e308")
    func overflowingMatmul() {
        let a = Matrix(rows: 1, cols: 2, storage: [-1e308, -1e308])
        let b = Matrix(rows: 2, cols: 1, storage: [1, -2])
        for k in Self.kernelSets {
            #expect(k.matmul(a, b).storage == [1e308], "\(Self.label(k))")
            // Genuine overflow: every engine says +inf.
            let huge = k.matmul(Matrix(rows: 1, cols: 2, storage: [1e308, 1e308]), Matrix(rows: 2, cols: 1, storage: [2, 2]))
            #expect(huge.storage == [.infinity], "\(Self.label(k))")
            // NaN inputs still give NaN.
            #expect(k.matmul(Matrix(rows: 1, cols: 1, storage: [.nan]), Matrix(rows: 1, cols: 1, storage: [1])).storage[0].isNaN)
        }
    }

    @Test("matmul: a zero output is +0.0, also when an FMA's exact product underflows (-1e-320 · 1e-10)")
    func signedZero() {
        let a = Matrix(rows: 1, cols: 1, storage: [-1e-320])
        let b = Matrix(rows: 1, cols: 1, storage: [1e-10])
        let wide = Matrix(rows: 20, cols: 300, storage: Array(repeating: -1e-320, count: 6000))
        let tall = Matrix(rows: 300, cols: 20, storage: Array(repeating: 1e-10, count: 6000))
        for k in Self.kernelSets {
            #expect(k.matmul(a, b).storage[0].bitPattern == 0, "\(Self.label(k))")
            #expect(k.matmul(wide, tall).storage.allSatisfy { $0.bitPattern == 0 }, "\(Self.label(k))")
        }
    }

    @Test("l2: squares that underflow or overflow are rescaled, so [[1e-170]] normalises to [[1.0]]")
    func scaledL2() throws {
        let cases: [([Double], [Double])] = [
            ([1e-170], [1]), ([-3 * 0x1p-1070, 4 * 0x1p-1070], [-0.6, 0.8]), ([1e200, 1e200], [(0.5).squareRoot(), (0.5).squareRoot()]),
            ([1e-300, 0, 0, 0], [1, 0, 0, 0]), ([0, 0], [0, 0]),
        ]
        for k in Self.kernelSets {
            var previous: [Double]? = nil
            for (input, want) in cases {
                let out = try #require(k.normalize(Matrix(rows: 1, cols: input.count, storage: input), mode: .l2))
                for (x, y) in zip(out.storage, want) {
                    #expect(abs(x - y) <= 4e-16, "\(Self.label(k)) \(input): \(out.storage)")
                }
                previous = out.storage
            }
            _ = previous
        }
        // Both kernel sets give the same bits on the rescued cases.
        if SIMDKernels.cpuSupported {
            for (input, _) in cases {
                let m = Matrix(rows: 1, cols: input.count, storage: input)
                #expect(FallbackKernels().normalize(m, mode: .l2)!.storage.map(\.bitPattern)
                    == SIMDKernels(threads: 2).normalize(m, mode: .l2)!.storage.map(\.bitPattern))
            }
        }
    }
}
