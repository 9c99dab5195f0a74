import ForziumJSON

/// An operation that could not run. The operations layer says what kind of failure it was; the protocol layer
/// (`ForziumRPC.RPCErrorCode`) decides how that is spelled on the wire.
public struct OperationError: Error, Sendable, Equatable {
    /// The kinds of failure an operation has.
    public enum Kind: Sendable, Equatable {
        /// No such method or operation.
        case methodNotFound
        /// The params are wrong; `issues` says where.
        case invalidParams
        /// A request or its result has more elements than `OperationLimits.maxElements`.
        case tooLarge
        /// The caller cancelled the request before it finished (checked between row blocks).
        case cancelled
    }

    public var kind: Kind
    public var message: String
    /// For invalid params: where and why.
    public var issues: [PointerIssue]

    public init(_ kind: Kind, message: String, issues: [PointerIssue] = []) {
        self.kind = kind
        self.message = message
        self.issues = issues
    }

    package static func invalidParams(_ issues: [PointerIssue]) -> OperationError {
        let first = issues[0]
        let location = first.pointer.isEmpty ? "params" : first.pointer
        var message = "Invalid params: \(first.message) (at \(location))"
        if issues.count > 1 { message += " and \(issues.count - 1) more problem\(issues.count == 2 ? "" : "s")" }
        return OperationError(.invalidParams, message: message, issues: issues)
    }

    static func invalidParams(at pointer: String, _ message: String) -> OperationError {
        invalidParams([PointerIssue(pointer: pointer, message: message)])
    }
}

/// Limits applied before any kernel runs.
public struct OperationLimits: Sendable {
    /// Most elements accepted across all matrices of one request (and in its result).
    public var maxElements: Int = 50_000_000
    public init(maxElements: Int = 50_000_000) { self.maxElements = maxElements }
}

/// The operation catalogue: maps a method name and its params onto a kernel call and its JSON result.
///
/// Params are checked in this order, and the first failing step decides the error:
/// 1. shape of the params (an object, no unknown members, required members present, every value of the right
///    JSON type, matrices rectangular) → -32602 with every problem found, each at its JSON Pointer;
/// 2. the element count of all input matrices together against `limits.maxElements` → -32000;
/// 3. agreement between the inputs (matmul inner dimensions, equal shapes, kernel fits, pool size divides,
///    reshape count) → -32602;
/// 4. the element count of the result against `limits.maxElements` → -32000 (before the result is allocated);
/// 5. `normalize` with `minmax` of a constant matrix → -32602 at `/data`.
public struct OperationCatalogue: Sendable {
    public let kernels: any Kernels
    public let limits: OperationLimits

    public init(kernels: any Kernels, limits: OperationLimits = OperationLimits()) {
        self.kernels = kernels
        self.limits = limits
    }

    /// The operation methods, in documentation order (each also an `operation` of `compute`).
    public static var operationNames: [String] { MatrixOperation.allCases.map(\.rawValue) }

    /// Every method this catalogue answers (the operations and `compute`).
    public static var methodNames: [String] { operationNames + ["compute"] }

    /// Runs `method` with `params`; throws an `OperationError` for unknown methods, bad params, or limits.
    ///
    /// Results: a matrix is an array of `.numbers` rows; `sum`/`mean`/`min`/`max` without an axis give a `.number`.
    public func call(method: String, params: JSONValue?) throws(OperationError) -> JSONValue {
        try evaluate(method: method, params: params).jsonValue
    }

    /// `call` without the conversion to `JSONValue`: the result as a `Matrix` (e.g. for
    /// `JSONWriter.writeMatrix`, which writes straight from the storage) or a scalar.
    ///
    /// Given `isCancelled`, the work is cut into row blocks (see `blockRows` and `Kernels.rowBlocking`: matmul and
    /// conv2d, whose cost grows faster than their inputs, into blocks of a few milliseconds to a few tens; the
    /// linear-time operations, bounded by `limits.maxElements`, run whole) and `isCancelled` is asked before each block and once more at the end;
    /// when it answers true the call throws an `OperationError` of kind `.cancelled`. The blocks give exactly the
    /// result of the whole-matrix kernel call (each result row depends only on its own rows of input).
    public func evaluate(
        method: String, params: JSONValue?, isCancelled: (() -> Bool)? = nil
    ) throws(OperationError) -> OperationResult {
        let plan = try makePlan(method: method, params: params, streaming: false)
        let result: Matrix
        if let isCancelled {
            let shape = plan.resultShape
            let step = blockRows(plan)
            if step >= shape.rows {
                try Self.check(isCancelled)
                result = try run(plan)
            } else {
                result = try Self.assemble(0..<shape.rows, cols: shape.cols, step: step, isCancelled, try rowSource(plan))
            }
            try Self.check(isCancelled)
        } else {
            result = try run(plan)
        }
        if case .reduce(_, _, nil) = plan {
            return .scalar(result.storage[0])
        }
        return .matrix(result)
    }

    /// Computes an operation in row blocks for streaming and hands each block to `emit` as soon as it is ready.
    ///
    /// `method` is `"stream"` or `"compute"` (params `{data, operation, parameters?}`, as `compute`), or an
    /// operation name (params as that method's). Blocks arrive in order, cover the result exactly once, and have
    /// `rowBlock` rows (the last may have fewer). `emit(start, block)`: `start` is the result row index of the
    /// block's first row. Row-separable operations (multiply, add, matmul, elementwise_*, conv2d, max_pool2d,
    /// normalize once its whole-matrix statistics are known, reshape) compute block by block; transpose and the
    /// reductions compute the whole result, then emit it in blocks. A reduction without an axis emits one 1×1 block.
    /// Errors are thrown before the first block is emitted, except cancellation: `isCancelled` is asked before
    /// every block (and, for matmul and conv2d, between the smaller blocks `evaluate` would use), and when it
    /// answers true the stream stops with an `OperationError` of kind `.cancelled`.
    /// - Returns: the result's shape.
    public func stream(
        method: String,
        params: JSONValue?,
        rowBlock: Int,
        isCancelled: () -> Bool = { false },
        emit: (_ start: Int, _ rows: Matrix) -> Void
    ) throws(OperationError) -> (rows: Int, cols: Int) {
        let plan = try makePlan(method: method, params: params, streaming: true)
        let shape = plan.resultShape
        let rowsOf = try rowSource(plan)
        let block = Swift.max(1, rowBlock)
        let step = blockRows(plan)
        var start = 0
        while start < shape.rows {
            let end = Swift.min(start + block, shape.rows)
            emit(start, try Self.assemble(start..<end, cols: shape.cols, step: step, isCancelled, rowsOf))
            start = end
        }
        return shape
    }

    // MARK: - Running a plan

    func run(_ plan: Plan) throws(OperationError) -> Matrix {
        switch plan {
        case .scale(let a, let factor): return kernels.scale(a, by: factor)
        case .offset(let a, let addend): return kernels.offset(a, by: addend)
        case .matmul(let a, let b): return kernels.matmul(a, b)
        case .transpose(let a): return kernels.transpose(a)
        case .elementwise(let op, let a, let b): return kernels.elementwise(op, a, b)
        case .conv2d(let a, let k): return kernels.conv2d(a, kernel: k)
        case .maxPool(let a, let size): return kernels.maxPool2d(a, size: size)
        case .normalize(let a, let mode, let dataPointer):
            guard let result = kernels.normalize(a, mode: mode) else { throw Self.constantMinmax(at: dataPointer) }
            return result
        case .reshape(let a, let rows, let cols): return Matrix(rows: rows, cols: cols, storage: a.storage)
        case .reduce(let op, let a, let axis): return kernels.reduce(op, a, axis: axis)
        }
    }

    /// A function giving any range of rows of the plan's result. Row-separable operations compute just those rows
    /// (normalize after its whole-matrix statistics, which are computed here); transpose and the reductions compute
    /// the whole result here and hand out slices of it.
    func rowSource(_ plan: Plan) throws(OperationError) -> (Range<Int>) -> Matrix {
        switch plan {
        case .scale(let a, let factor):
            return { kernels.scale(a.rowSlice($0), by: factor) }
        case .offset(let a, let addend):
            return { kernels.offset(a.rowSlice($0), by: addend) }
        case .matmul(let a, let b):
            return { kernels.matmul(a.rowSlice($0), b) }
        case .elementwise(let op, let a, let b):
            return { kernels.elementwise(op, a.rowSlice($0), b.rowSlice($0)) }
        case .conv2d(let a, let k):
            return { kernels.conv2d(a.rowSlice($0.lowerBound..<($0.upperBound + k.rows - 1)), kernel: k) }
        case .maxPool(let a, let size):
            return { kernels.maxPool2d(a.rowSlice(($0.lowerBound * size)..<($0.upperBound * size)), size: size) }
        case .normalize(let a, let mode, let dataPointer):
            guard let stats = kernels.normalizationStats(a, mode: mode) else {
                throw Self.constantMinmax(at: dataPointer)
            }
            return { kernels.normalize(a.rowSlice($0), with: stats) }
        case .reshape(let a, _, let cols):
            return { range in
                Matrix(rows: range.count, cols: cols,
                       storage: Array(a.storage[(range.lowerBound * cols)..<(range.upperBound * cols)]))
            }
        case .transpose, .reduce:
            let whole = try run(plan)
            return { whole.rowSlice($0) }
        }
    }

    /// Rows per cancellable block: for matmul and conv2d, rows enough for about `kernels.rowBlocking.work`
    /// multiply-adds — for matmul at least `rowBlocking.minimumRows` (each block goes through the whole right-hand
    /// matrix again), for conv2d at least one row per kernel thread (its kernel is small and stays in cache). The other
    /// operations are linear in their input and are not cut (`Int.max`).
    func blockRows(_ plan: Plan) -> Int {
        let sizing = kernels.rowBlocking
        switch plan {
        case .matmul(let a, let b):
            return matmulBlockRows(k: a.cols, n: b.cols)
        case .conv2d(let a, let k):
            let workPerRow = (a.cols - k.cols + 1) * k.rows * k.cols
            return Swift.max(1, kernels.threads, sizing.work / Swift.max(1, workPerRow))
        default:
            return Int.max
        }
    }

    /// Rows per cancellable block of a matmul with inner dimension `k` and `n` result columns.
    func matmulBlockRows(k: Int, n: Int) -> Int {
        let sizing = kernels.rowBlocking
        return Swift.max(1, sizing.minimumRows, sizing.work / Swift.max(1, k * n))
    }

    /// Whether `matmul` of an m×k by a k×n matrix passes every check `evaluate` makes (no empty dimension, the inputs'
    /// elements together and the result's within `limits.maxElements`), so that `matmul(m:n:k:a:b:into:isCancelled:)`
    /// may run it; false sends the caller down the ordinary path, which reports the problem.
    public func acceptsMatmul(m: Int, k: Int, n: Int) -> Bool {
        guard m > 0, k > 0, n > 0 else { return false }
        let (ak, o1) = m.multipliedReportingOverflow(by: k)
        let (bk, o2) = k.multipliedReportingOverflow(by: n)
        let (mn, o3) = m.multipliedReportingOverflow(by: n)
        let (inputs, o4) = ak.addingReportingOverflow(bk)
        return !(o1 || o2 || o3 || o4) && inputs <= limits.maxElements && mn <= limits.maxElements
    }

    /// `matmul` from and into storage the caller owns (mapped shared-memory segments: no copy of the inputs in, none
    /// of the result out), in the same cancellable row blocks as `evaluate` — each block is A's and C's rows at an
    /// offset, so nothing is sliced or assembled. The shapes must pass `acceptsMatmul`. Same result, bit for bit.
    public func matmul(
        m: Int, n: Int, k: Int, a: UnsafePointer<Double>, b: UnsafePointer<Double>, into c: UnsafeMutablePointer<Double>,
        isCancelled: () -> Bool
    ) throws(OperationError) {
        let step = matmulBlockRows(k: k, n: n)
        var lower = 0
        while lower < m {
            try Self.check(isCancelled)
            let rows = Swift.min(step, m - lower)
            kernels.matmul(m: rows, n: n, k: k, a: a + lower * k, b: b, into: c + lower * n)
            lower += rows
        }
        try Self.check(isCancelled)
    }

    /// Rows `range` of a result, computed `step` rows at a time with `isCancelled` asked before each step, and put
    /// together in order.
    static func assemble(
        _ range: Range<Int>, cols: Int, step: Int, _ isCancelled: () -> Bool, _ rowsOf: (Range<Int>) -> Matrix
    ) throws(OperationError) -> Matrix {
        if range.count <= step {
            try check(isCancelled)
            return rowsOf(range)
        }
        var storage: [Double] = []
        storage.reserveCapacity(range.count * cols)
        var lower = range.lowerBound
        while lower < range.upperBound {
            try check(isCancelled)
            let upper = Swift.min(lower + step, range.upperBound)
            storage.append(contentsOf: rowsOf(lower..<upper).storage)
            lower = upper
        }
        return Matrix(rows: range.count, cols: cols, storage: storage)
    }

    /// Throws `.cancelled` when `isCancelled` says so.
    static func check(_ isCancelled: () -> Bool) throws(OperationError) {
        if isCancelled() { throw OperationError(.cancelled, message: "Request cancelled") }
    }

    static func constantMinmax(at pointer: String) -> OperationError {
        .invalidParams(at: pointer, "minmax normalization of a constant matrix is undefined (its maximum equals its minimum)")
    }
}

/// The result of an operation before it becomes JSON.
public enum OperationResult: Sendable, Equatable {
    /// A matrix (every operation except reductions without an axis).
    case matrix(Matrix)
    /// `sum`, `mean`, `min`, `max` with `axis` null.
    case scalar(Double)

    /// A matrix as an array of `.numbers` rows; a scalar as a `.number`.
    public var jsonValue: JSONValue {
        switch self {
        case .matrix(let matrix): matrix.jsonValue
        case .scalar(let value): .number(JSONNumber(value))
        }
    }
}

/// A validated operation with its inputs, ready for the kernels.
enum Plan {
    case scale(Matrix, Double)
    case offset(Matrix, Double)
    case matmul(Matrix, Matrix)
    case transpose(Matrix)
    case elementwise(ElementwiseOp, Matrix, Matrix)
    case conv2d(Matrix, Matrix)
    case maxPool(Matrix, Int)
    /// The pointer is where a "constant matrix" error points (`/data`).
    case normalize(Matrix, NormalizeMode, String)
    case reshape(Matrix, Int, Int)
    case reduce(ReductionOp, Matrix, Axis?)

    var resultShape: (rows: Int, cols: Int) {
        switch self {
        case .scale(let a, _), .offset(let a, _), .elementwise(_, let a, _), .normalize(let a, _, _):
            (a.rows, a.cols)
        case .matmul(let a, let b): (a.rows, b.cols)
        case .transpose(let a): (a.cols, a.rows)
        case .conv2d(let a, let k): (a.rows - k.rows + 1, a.cols - k.cols + 1)
        case .maxPool(let a, let size): (a.rows / size, a.cols / size)
        case .reshape(_, let rows, let cols): (rows, cols)
        case .reduce(_, let a, let axis):
            switch axis {
            case nil: (1, 1)
            case .rows: (1, a.cols)
            case .cols: (a.rows, 1)
            }
        }
    }
}
