import ForziumJSON
import ForziumKernels
import ForziumKernelsSIMD
import ForziumTesting
import Testing

/// Other kernels with a chosen row blocking, so that small inputs are cut into many blocks.
struct FineBlocks: Kernels {
    let base: any Kernels
    let rowBlocking: RowBlocking

    var kind: String { base.kind }
    var threads: Int { base.threads }
    var vectorWidth: Int { base.vectorWidth }
    func scale(_ a: Matrix, by factor: Double) -> Matrix { base.scale(a, by: factor) }
    func offset(_ a: Matrix, by addend: Double) -> Matrix { base.offset(a, by: addend) }
    func matmul(_ a: Matrix, _ b: Matrix) -> Matrix { base.matmul(a, b) }
    func matmul(m: Int, n: Int, k: Int, a: UnsafePointer<Double>, b: UnsafePointer<Double>, into c: UnsafeMutablePointer<Double>) {
        base.matmul(m: m, n: n, k: k, a: a, b: b, into: c)
    }
    func transpose(_ a: Matrix) -> Matrix { base.transpose(a) }
    func elementwise(_ op: ElementwiseOp, _ a: Matrix, _ b: Matrix) -> Matrix { base.elementwise(op, a, b) }
    func conv2d(_ a: Matrix, kernel: Matrix) -> Matrix { base.conv2d(a, kernel: kernel) }
    func maxPool2d(_ a: Matrix, size: Int) -> Matrix { base.maxPool2d(a, size: size) }
    func reduce(_ op: ReductionOp, _ a: Matrix, axis: Axis?) -> Matrix { base.reduce(op, a, axis: axis) }
    func normalize(_ a: Matrix, mode: NormalizeMode) -> Matrix? { base.normalize(a, mode: mode) }
    func normalizationStats(_ a: Matrix, mode: NormalizeMode) -> NormalizationStats? { base.normalizationStats(a, mode: mode) }
    func normalize(_ a: Matrix, with stats: NormalizationStats) -> Matrix { base.normalize(a, with: stats) }
}

/// Counts the questions and answers "cancelled" from the `after`-th one on.
final class CancelAfter: @unchecked Sendable {
    private(set) var asked = 0
    let after: Int
    init(_ after: Int = .max) { self.after = after }
    func callAsFunction() -> Bool {
        asked += 1
        return asked > after
    }
}

/// A matrix as the binary form in params (so inputs keep every bit).
func binaryParam(_ m: Matrix) -> JSONValue {
    var bytes: [UInt8] = []
    m.storage.withUnsafeBufferPointer { BinaryMatrix.write(rows: m.rows, cols: m.cols, $0, into: &bytes) }
    return try! JSONParser().parse(bytes)
}

/// Kernels whose cancellable runs cut a 37-row matmul or conv2d into many blocks: every engine's kernels, finely
/// blocked (the SIMD ones only where the CPU has AVX2 + FMA).
let fineKernels: [any Kernels] = {
    var kernels: [any Kernels] = [FineBlocks(base: FallbackKernels(), rowBlocking: RowBlocking(work: 3000, minimumRows: 1))]
    if SIMDKernels.cpuSupported {
        kernels.append(FineBlocks(base: SIMDKernels(threads: 2), rowBlocking: RowBlocking(work: 3000, minimumRows: 5)))
    }
    return kernels
}()

@Suite("OperationCatalogue: cancellable row blocks")
struct CancellationTests {
    var rng = SIMDTestRNG(seed: 2024)

    @Test("Row blocks give exactly the whole-matrix kernel's result", arguments: fineKernels.indices)
    mutating func blocksMatchWholeCall(kernelIndex: Int) throws {
        let kernels = fineKernels[kernelIndex]
        let catalogue = OperationCatalogue(kernels: kernels)
        let a = randomMatrix(37, 29, &rng, special: 0.05)
        let b = randomMatrix(29, 41, &rng, special: 0.05)
        let k = randomMatrix(4, 3, &rng)
        let cases: [(String, JSONValue)] = [
            ("matmul", jo(["data": binaryParam(a), "matrix_b": binaryParam(b)])),
            ("conv2d", jo(["data": binaryParam(a), "kernel": binaryParam(k)])),
            ("compute", jo(["data": binaryParam(a), "operation": .string("matmul"), "parameters": jo(["matrix_b": binaryParam(b)])])),
            ("transpose", jo(["data": binaryParam(a)])),
            ("sum", jo(["data": binaryParam(a), "axis": jn(1)])),
        ]
        for (method, params) in cases {
            let whole = try catalogue.evaluate(method: method, params: params)
            let check = CancelAfter()
            let blocked = try catalogue.evaluate(method: method, params: params, isCancelled: check.callAsFunction)
            guard case .matrix(let w) = whole, case .matrix(let m) = blocked else {
                Issue.record("\(method): not a matrix")
                continue
            }
            #expect(w.rows == m.rows && w.cols == m.cols)
            let same = zip(w.storage, m.storage).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
            #expect(same, "\(kernels.kind) \(method): blocked result differs")
            if method == "matmul" || method == "conv2d" || method == "compute" {
                #expect(check.asked > 3, "\(kernels.kind) \(method): only \(check.asked) checks")
            } else {
                #expect(check.asked == 2, "\(method): linear operations run whole, checked before and after")
            }
        }
    }

    @Test("Block counts: one check per block, and one at the end")
    func checkCounts() throws {
        let catalogue = OperationCatalogue(kernels: FineBlocks(base: FallbackKernels(), rowBlocking: RowBlocking(work: 100, minimumRows: 1)))
        // 10 rows, 10 × 10 multiply-adds per row: one row per block.
        let params = jo(["data": jm(Array(repeating: Array(repeating: 1, count: 10), count: 10)),
                         "matrix_b": jm(Array(repeating: Array(repeating: 2, count: 10), count: 10))])
        let check = CancelAfter()
        let result = try catalogue.evaluate(method: "matmul", params: params, isCancelled: check.callAsFunction)
        #expect(check.asked == 11)
        #expect(result == .matrix(Matrix(rows: 10, cols: 10, storage: Array(repeating: 20, count: 100))))
        // minimumRows wins over the work target.
        let coarse = OperationCatalogue(kernels: FineBlocks(base: FallbackKernels(), rowBlocking: RowBlocking(work: 100, minimumRows: 4)))
        let counted = CancelAfter()
        _ = try coarse.evaluate(method: "matmul", params: params, isCancelled: counted.callAsFunction)
        #expect(counted.asked == 4)  // blocks of 4, 4 and 2 rows, then the final check
    }

    @Test("A cancel seen between blocks stops the work with .cancelled", arguments: [0, 1, 5, 10])
    func cancelBetweenBlocks(after: Int) {
        let catalogue = OperationCatalogue(kernels: FineBlocks(base: FallbackKernels(), rowBlocking: RowBlocking(work: 100, minimumRows: 1)))
        let params = jo(["data": jm(Array(repeating: Array(repeating: 1, count: 10), count: 10)),
                         "matrix_b": jm(Array(repeating: Array(repeating: 2, count: 10), count: 10))])
        let check = CancelAfter(after)
        #expect(throws: OperationError(.cancelled, message: "Request cancelled")) {
            try catalogue.evaluate(method: "matmul", params: params, isCancelled: check.callAsFunction)
        }
        #expect(check.asked == after + 1)
    }

    @Test("Operations that are not cut are still checked before and after")
    func linearOperations() {
        let params = jo(["data": jm([[1, 2], [3, 4]])])
        let before = CancelAfter(0)
        #expect(throws: OperationError(.cancelled, message: "Request cancelled")) {
            try catalogue.evaluate(method: "transpose", params: params, isCancelled: before.callAsFunction)
        }
        #expect(before.asked == 1)
        let after = CancelAfter(1)
        #expect(throws: OperationError(.cancelled, message: "Request cancelled")) {
            try catalogue.evaluate(method: "transpose", params: params, isCancelled: after.callAsFunction)
        }
        #expect(after.asked == 2)
        // Params errors come first: a bad request is answered as such even if cancelled.
        #expect(throws: OperationError.self) {
            try catalogue.evaluate(method: "transpose", params: jo([:]), isCancelled: { true })
        }
        do {
            _ = try catalogue.evaluate(method: "transpose", params: jo([:]), isCancelled: { true })
        } catch {
            #expect(error.kind == .invalidParams)
        }
    }

    @Test("A stream stops between blocks once cancelled; its blocks match the whole result")
    func streamCancellation() throws {
        let fine = OperationCatalogue(kernels: FineBlocks(base: FallbackKernels(), rowBlocking: RowBlocking(work: 100, minimumRows: 1)))
        let data = (0..<12).map { i in (0..<10).map { Double(i * 10 + $0) } }
        let params = jo(["data": jm(data), "operation": .string("matmul"), "parameters": jo(["matrix_b": jm(data.prefix(10).map { $0 })])])
        var streamed: [Double] = []
        let shape = try fine.stream(method: "stream", params: params, rowBlock: 5, isCancelled: { false }) { _, block in
            streamed += block.storage
        }
        #expect(shape.rows == 12 && shape.cols == 10)
        guard case .matrix(let whole) = try catalogue.evaluate(method: "compute", params: params) else {
            Issue.record("not a matrix")
            return
        }
        #expect(streamed == whole.storage)

        // Each 5-row stream block is computed one row at a time here (100 multiply-adds per row): 5 checks per block.
        let check = CancelAfter(7)
        var starts: [Int] = []
        #expect(throws: OperationError(.cancelled, message: "Request cancelled")) {
            _ = try fine.stream(method: "stream", params: params, rowBlock: 5, isCancelled: check.callAsFunction) { start, _ in
                starts.append(start)
            }
        }
        #expect(starts == [0])
    }
}

@Suite("OperationCatalogue: matmul from and into borrowed storage")
struct BorrowedMatmulTests {
    @Test("Same bits as evaluate, in the same row blocks, non-finite values included; a cancel stops it", arguments: fineKernels.indices)
    func sameAsEvaluate(kernelIndex: Int) throws {
        let catalogue = OperationCatalogue(kernels: fineKernels[kernelIndex])
        var generator = SplitMix64(seed: UInt64(77 + kernelIndex))
        let (m, k, n) = (37, 23, 29)
        var a = Matrix(rows: m, cols: k, storage: (0..<(m * k)).map { _ in Double.random(in: -1..<1, using: &generator) })
        let b = Matrix(rows: k, cols: n, storage: (0..<(k * n)).map { _ in Double.random(in: -1..<1, using: &generator) })
        a.storage[5] = .nan
        a.storage[k * 20] = 1e308 // an overflow in row 20, rescued per the numeric rules
        a.storage[k * 20 + 1] = 1e308
        let params = JSONValue.object(JSONObject([("data", binaryParam(a)), ("matrix_b", binaryParam(b))]))
        guard case .matrix(let expected) = try catalogue.evaluate(method: "matmul", params: params, isCancelled: { false }) else {
            Issue.record("no matrix"); return
        }
        var c = [Double](repeating: -1, count: m * n)
        let asked = CancelAfter()
        try a.storage.withUnsafeBufferPointer { pa in
            try b.storage.withUnsafeBufferPointer { pb in
                try c.withUnsafeMutableBufferPointer { pc in
                    try catalogue.matmul(m: m, n: n, k: k, a: pa.baseAddress!, b: pb.baseAddress!, into: pc.baseAddress!,
                                         isCancelled: { asked() })
                }
            }
        }
        #expect(c.map(\.bitPattern) == expected.storage.map(\.bitPattern))
        #expect(asked.asked > 2, "asked \(asked.asked) times: the product was not cut into blocks")

        let stop = CancelAfter(1)
        #expect(throws: OperationError.self) {
            try a.storage.withUnsafeBufferPointer { pa in
                try b.storage.withUnsafeBufferPointer { pb in
                    try c.withUnsafeMutableBufferPointer { pc in
                        try catalogue.matmul(m: m, n: n, k: k, a: pa.baseAddress!, b: pb.baseAddress!, into: pc.baseAddress!,
                                             isCancelled: { stop() })
                    }
                }
            }
        }
    }

    @Test("acceptsMatmul says yes exactly where evaluate accepts the shapes")
    func acceptsLikeEvaluate() {
        let catalogue = OperationCatalogue(kernels: FallbackKernels(), limits: OperationLimits(maxElements: 100))
        #expect(catalogue.acceptsMatmul(m: 5, k: 5, n: 10))       // inputs 75, result 50
        #expect(!catalogue.acceptsMatmul(m: 10, k: 6, n: 10))     // inputs 120 > 100
        #expect(!catalogue.acceptsMatmul(m: 20, k: 1, n: 6))      // result 120 > 100
        #expect(!catalogue.acceptsMatmul(m: 0, k: 1, n: 1))
        #expect(!catalogue.acceptsMatmul(m: Int.max, k: 2, n: 2))
        for (m, k, n) in [(5, 5, 10), (10, 6, 10), (20, 1, 6)] {
            let a = Matrix(rows: m, cols: k, storage: Array(repeating: 1, count: m * k))
            let b = Matrix(rows: k, cols: n, storage: Array(repeating: 1, count: k * n))
            let params = JSONValue.object(JSONObject([("data", binaryParam(a)), ("matrix_b", binaryParam(b))]))
            let accepted = (try? catalogue.evaluate(method: "matmul", params: params)) != nil
            #expect(accepted == catalogue.acceptsMatmul(m: m, k: k, n: n), "\(m)×\(k) · \(k)×\(n)")
        }
    }
}
