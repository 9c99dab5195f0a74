import Testing
import ForziumJSON
import ForziumKernels
import ForziumKernelsSIMD

// MARK: - JSON helpers (values built directly, as the parser would produce them)

func jm(_ rows: [[Double]]) -> JSONValue { .array(rows.map { .numbers($0) }) }
func jn(_ value: Double) -> JSONValue { .number(JSONNumber(value)) }
func jo(_ members: KeyValuePairs<String, JSONValue>) -> JSONValue {
    .object(JSONObject(members.map { (key: $0.key, value: $0.value) }))
}

/// The rows of a matrix result, or nil when `value` is not an array of number arrays.
func rowsOf(_ value: JSONValue) -> [[Double]]? {
    guard case .array(let rows) = value else { return nil }
    var out: [[Double]] = []
    for row in rows {
        switch row {
        case .numbers(let numbers): out.append(numbers)
        case .array(let items):
            var numbers: [Double] = []
            for item in items {
                guard case .number(let n) = item else { return nil }
                numbers.append(n.value)
            }
            out.append(numbers)
        default: return nil
        }
    }
    return out
}

func scalarOf(_ value: JSONValue) -> Double? {
    if case .number(let n) = value { return n.value }
    return nil
}

let catalogue = OperationCatalogue(kernels: FallbackKernels())

/// Calls and returns the error, or nil when the call succeeded.
func failure(_ method: String, _ params: JSONValue?, _ cat: OperationCatalogue = catalogue) -> OperationError? {
    do {
        _ = try cat.call(method: method, params: params)
        return nil
    } catch {
        return error
    }
}

@Suite("OperationCatalogue: results")
struct CatalogueResultTests {
    let a: JSONValue = jm([[1, 2], [3, 4]])

    @Test func methodNames() {
        #expect(OperationCatalogue.operationNames == [
            "multiply", "add", "matmul", "transpose", "elementwise_add", "elementwise_sub", "elementwise_mul",
            "elementwise_div", "conv2d", "max_pool2d", "normalize", "reshape", "sum", "mean", "min", "max",
        ])
        #expect(OperationCatalogue.methodNames == OperationCatalogue.operationNames + ["compute"])
    }

    @Test func multiplyAndAdd() throws {
        #expect(rowsOf(try catalogue.call(method: "multiply", params: jo(["data": a, "factor": jn(3)]))) == [[3, 6], [9, 12]])
        #expect(rowsOf(try catalogue.call(method: "multiply", params: jo(["data": a]))) == [[1, 2], [3, 4]])
        #expect(rowsOf(try catalogue.call(method: "add", params: jo(["data": a, "addend": jn(-1.5)]))) == [[-0.5, 0.5], [1.5, 2.5]])
        #expect(rowsOf(try catalogue.call(method: "add", params: jo(["data": a]))) == [[1, 2], [3, 4]])
        // NaN and infinite factors are numbers too (IEEE results; output writes non-finite values as null).
        let r = rowsOf(try catalogue.call(method: "multiply", params: jo(["data": jm([[0, 2]]), "factor": jn(.infinity)])))!
        #expect(r[0][0].isNaN && r[0][1] == .infinity)
    }

    @Test func matmulTransposeElementwise() throws {
        #expect(rowsOf(try catalogue.call(method: "matmul", params: jo(["data": a, "matrix_b": jm([[5, 6], [7, 8]])]))) == [[19, 22], [43, 50]])
        #expect(rowsOf(try catalogue.call(method: "matmul", params: jo(["data": jm([[1, 2, 3]]), "matrix_b": jm([[1], [1], [1]])]))) == [[6]])
        #expect(rowsOf(try catalogue.call(method: "transpose", params: jo(["data": jm([[1, 2, 3]])]))) == [[1], [2], [3]])
        let b = jm([[2, 4], [-3, 0]])
        #expect(rowsOf(try catalogue.call(method: "elementwise_add", params: jo(["data": a, "other": b]))) == [[3, 6], [0, 4]])
        #expect(rowsOf(try catalogue.call(method: "elementwise_sub", params: jo(["data": a, "other": b]))) == [[-1, -2], [6, 4]])
        #expect(rowsOf(try catalogue.call(method: "elementwise_mul", params: jo(["data": a, "other": b]))) == [[2, 8], [-9, 0]])
        let d = rowsOf(try catalogue.call(method: "elementwise_div", params: jo(["data": a, "other": b])))!
        #expect(d[0] == [0.5, 0.5] && d[1][0] == -1 && d[1][1] == .infinity)
    }

    @Test func conv2dPoolNormalizeReshape() throws {
        let m = jm([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
        #expect(rowsOf(try catalogue.call(method: "conv2d", params: jo(["data": m, "kernel": jm([[1, 0], [0, -1]])]))) == [[-4, -4], [-4, -4]])
        let p = jm([[1, 2, 5, 0], [3, 4, -1, -2], [0, 0, 9, 8], [-5, 1, 7, 6]])
        #expect(rowsOf(try catalogue.call(method: "max_pool2d", params: jo(["data": p, "size": jn(2)]))) == [[4, 5], [1, 9]])
        // 2.0 is an integer.
        #expect(rowsOf(try catalogue.call(method: "max_pool2d", params: jo(["data": p, "size": .number(JSONNumber(2, literal: "2.0"))]))) == [[4, 5], [1, 9]])
        #expect(rowsOf(try catalogue.call(method: "normalize", params: jo(["data": jm([[1, 3], [5, 9]]), "mode": .string("minmax")]))) == [[0, 0.25], [0.5, 1]])
        #expect(rowsOf(try catalogue.call(method: "normalize", params: jo(["data": jm([[1, 3], [5, 9]])]))) == [[0, 0.25], [0.5, 1]])
        #expect(rowsOf(try catalogue.call(method: "normalize", params: jo(["data": jm([[3], [4]]), "mode": .string("l2")]))) == [[0.6], [0.8]])
        #expect(rowsOf(try catalogue.call(method: "normalize", params: jo(["data": jm([[0, 0]]), "mode": .string("l2")]))) == [[0, 0]])
        #expect(rowsOf(try catalogue.call(method: "reshape", params: jo(["data": jm([[1, 2, 3], [4, 5, 6]]), "rows": jn(3), "cols": jn(2)]))) == [[1, 2], [3, 4], [5, 6]])
        #expect(rowsOf(try catalogue.call(method: "reshape", params: jo(["data": jm([[1, 2, 3], [4, 5, 6]]), "rows": jn(6), "cols": jn(1)]))) == [[1], [2], [3], [4], [5], [6]])
    }

    @Test func reductionsAndAxes() throws {
        let m = jm([[1, 2, 3], [4, 5, 6]])
        #expect(scalarOf(try catalogue.call(method: "sum", params: jo(["data": m]))) == 21)
        #expect(scalarOf(try catalogue.call(method: "sum", params: jo(["data": m, "axis": .null]))) == 21)
        #expect(rowsOf(try catalogue.call(method: "sum", params: jo(["data": m, "axis": jn(0)]))) == [[5, 7, 9]])
        #expect(rowsOf(try catalogue.call(method: "sum", params: jo(["data": m, "axis": jn(1)]))) == [[6], [15]])
        #expect(scalarOf(try catalogue.call(method: "mean", params: jo(["data": m]))) == 3.5)
        #expect(rowsOf(try catalogue.call(method: "mean", params: jo(["data": m, "axis": jn(1)]))) == [[2], [5]])
        #expect(scalarOf(try catalogue.call(method: "min", params: jo(["data": m]))) == 1)
        #expect(rowsOf(try catalogue.call(method: "min", params: jo(["data": m, "axis": jn(0)]))) == [[1, 2, 3]])
        #expect(scalarOf(try catalogue.call(method: "max", params: jo(["data": m]))) == 6)
        #expect(rowsOf(try catalogue.call(method: "max", params: jo(["data": m, "axis": .number(JSONNumber(1, literal: "1.0"))]))) == [[3], [6]])
        let nanMax = scalarOf(try catalogue.call(method: "max", params: jo(["data": jm([[1, .nan]])])))
        #expect(nanMax?.isNaN == true)
    }

    @Test func evaluateGivesTypedResults() throws {
        #expect(try catalogue.evaluate(method: "transpose", params: jo(["data": jm([[1, 2]])])) == .matrix(Matrix(rows: 2, cols: 1, storage: [1, 2])))
        #expect(try catalogue.evaluate(method: "mean", params: jo(["data": jm([[1, 2]])])) == .scalar(1.5))
        #expect(try catalogue.evaluate(method: "mean", params: jo(["data": jm([[1, 2]]), "axis": jn(1)])) == .matrix(Matrix(rows: 1, cols: 1, storage: [1.5])))
    }

    @Test func rowsGivenAsGeneralArraysAreAccepted() throws {
        // `.array` of `.number` is the same JSON as `.numbers`.
        let data: JSONValue = .array([.array([jn(1), jn(2)]), .numbers([3, 4])])
        #expect(rowsOf(try catalogue.call(method: "transpose", params: jo(["data": data]))) == [[1, 3], [2, 4]])
    }

    @Test func computeDispatchesToTheSameCode() throws {
        let viaCompute = try catalogue.call(method: "compute", params: jo([
            "data": a, "operation": .string("matmul"), "parameters": jo(["matrix_b": jm([[5, 6], [7, 8]])]),
        ]))
        #expect(rowsOf(viaCompute) == [[19, 22], [43, 50]])
        // parameters is optional.
        #expect(rowsOf(try catalogue.call(method: "compute", params: jo(["data": a, "operation": .string("transpose")]))) == [[1, 3], [2, 4]])
        #expect(scalarOf(try catalogue.call(method: "compute", params: jo(["data": a, "operation": .string("sum")]))) == 10)
        #expect(rowsOf(try catalogue.call(method: "compute", params: jo(["data": a, "operation": .string("multiply"), "parameters": jo([:])]))) == [[1, 2], [3, 4]])
        for operation in OperationCatalogue.operationNames {
            let parameters: JSONValue = switch operation {
            case "matmul": jo(["matrix_b": a])
            case "elementwise_add", "elementwise_sub", "elementwise_mul", "elementwise_div": jo(["other": a])
            case "conv2d": jo(["kernel": jm([[1]])])
            case "max_pool2d": jo(["size": jn(1)])
            case "reshape": jo(["rows": jn(1), "cols": jn(4)])
            default: jo([:])
            }
            var direct: [(key: String, value: JSONValue)] = [("data", a)]
            if case .object(let p) = parameters { direct += p.members }
            let one = JSONWriterless.describe(try catalogue.call(method: operation, params: .object(JSONObject(direct))))
            let two = JSONWriterless.describe(try catalogue.call(method: "compute", params: jo(["data": a, "operation": .string(operation), "parameters": parameters])))
            #expect(one == two, "\(operation)")
        }
    }
}

/// A structural description of a result, so results compare without depending on the JSON writer.
enum JSONWriterless {
    static func describe(_ value: JSONValue) -> String {
        if let rows = rowsOf(value) { return "matrix \(rows)" }
        if let s = scalarOf(value) { return "number \(s)" }
        return "other"
    }
}

@Suite("OperationCatalogue: errors")
struct CatalogueErrorTests {
    let a: JSONValue = jm([[1, 2], [3, 4]])

    func expectInvalid(_ method: String, _ params: JSONValue?, _ pointer: String, _ message: String,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        let error = failure(method, params)
        #expect(error?.kind == .invalidParams, sourceLocation: sourceLocation)
        #expect(error?.issues.first == PointerIssue(pointer: pointer, message: message), sourceLocation: sourceLocation)
    }

    func expectInvalidPrefix(_ method: String, _ params: JSONValue?, _ pointer: String, _ prefix: String,
                             sourceLocation: SourceLocation = #_sourceLocation) {
        let error = failure(method, params)
        #expect(error?.kind == .invalidParams, sourceLocation: sourceLocation)
        #expect(error?.issues.first?.pointer == pointer, sourceLocation: sourceLocation)
        #expect(error?.issues.first?.message.hasPrefix(prefix) == true, "\(String(describing: error))", sourceLocation: sourceLocation)
    }

    @Test func unknownMethod() {
        let error = failure("frobnicate", jo(["data": a]))
        #expect(error?.kind == .methodNotFound)
        #expect(error?.message.contains("frobnicate") == true)
        #expect(failure("stream", jo(["data": a, "operation": .string("sum")]))?.kind == .methodNotFound)
        #expect(failure("engine.info", nil)?.kind == .methodNotFound)
    }

    @Test func paramsMustBeAnObject() {
        expectInvalid("sum", nil, "", "params must be an object; none were given")
        expectInvalid("sum", .array([a]), "", "params must be an object (parameters by name), got array")
        expectInvalid("compute", .string("x"), "", "params must be an object (parameters by name), got string")
    }

    @Test func badMatrices() {
        expectInvalid("sum", jo(["data": jm([[1, 2], [3, 4, 5]])]), "/data/1", "row 1 has 3 elements, expected 2")
        expectInvalid("sum", jo(["data": .array([.array([jn(1), .string("x")])])]), "/data/0/1", "expected a number, got string")
        expectInvalid("sum", jo(["data": .array([.array([jn(1), .bool(true)])])]), "/data/0/1", "expected a number, got boolean")
        expectInvalid("sum", jo(["data": .array([.array([.null, jn(1)])])]), "/data/0/0", "expected a number, got null")
        expectInvalid("sum", jo(["data": .array([])]), "/data", "matrix must have at least one row")
        expectInvalid("sum", jo(["data": .array([.numbers([1]), .array([])])]), "/data/1", "row 1 is empty; a matrix row needs at least one number")
        expectInvalid("sum", jo(["data": .array([.array([])])]), "/data/0", "row 0 is empty; a matrix row needs at least one number")
        expectInvalid("sum", jo(["data": .numbers([1, 2])]), "/data/0", "expected an array (a matrix row), got number")
        expectInvalid("sum", jo(["data": .array([.numbers([1]), .string("row")])]), "/data/1", "expected an array (a matrix row), got string")
        expectInvalid("sum", jo(["data": .string("[[1]]")]), "/data", "expected a matrix (an array of rows of numbers), got string")
        expectInvalid("sum", jo(["data": .array([.array([.numbers([1])])])]), "/data/0/0", "expected a number, got array")
        expectInvalid("matmul", jo(["data": a, "matrix_b": jm([[1], [2, 3]])]), "/matrix_b/1", "row 1 has 2 elements, expected 1")
        expectInvalid("compute", jo(["data": a, "operation": .string("matmul"), "parameters": jo(["matrix_b": .null])]),
                      "/parameters/matrix_b", "expected a matrix (an array of rows of numbers), got null")
    }

    @Test func missingAndUnknownParameters() {
        expectInvalid("sum", jo([:]), "/data", "missing required parameter")
        expectInvalid("matmul", jo(["data": a]), "/matrix_b", "missing required parameter")
        expectInvalid("max_pool2d", jo(["data": a]), "/size", "missing required parameter")
        expectInvalid("conv2d", jo(["data": a]), "/kernel", "missing required parameter")
        expectInvalid("elementwise_div", jo(["data": a]), "/other", "missing required parameter")
        let reshape = failure("reshape", jo(["data": a]))
        #expect(reshape?.issues == [PointerIssue(pointer: "/rows", message: "missing required parameter"),
                                    PointerIssue(pointer: "/cols", message: "missing required parameter")])
        expectInvalidPrefix("multiply", jo(["data": a, "scale": jn(2)]), "/scale", "unknown parameter")
        expectInvalidPrefix("transpose", jo(["data": a, "a/b~c": jn(2)]), "/a~1b~0c", "unknown parameter")
        expectInvalidPrefix("compute", jo(["data": a, "operation": .string("multiply"), "extra": .null]), "/extra", "unknown parameter")
        expectInvalidPrefix("compute", jo(["data": a, "operation": .string("multiply"), "parameters": jo(["data": a])]), "/parameters/data", "unknown parameter")
        expectInvalidPrefix("compute", jo(["data": a, "operation": .string("transpose"), "parameters": jo(["x": jn(1)])]), "/parameters/x", "unknown parameter")
        expectInvalid("compute", jo(["data": a, "operation": .string("matmul")]), "/parameters/matrix_b", "missing required parameter")
        expectInvalid("compute", jo(["operation": .string("sum")]), "/data", "missing required parameter")
        expectInvalid("compute", jo(["data": a]), "/operation", "missing required parameter")
    }

    @Test func everyProblemIsReported() {
        let error = failure("matmul", jo(["data": jm([[1], [1, 2]]), "bogus": jn(1)]))
        #expect(error?.issues == [
            PointerIssue(pointer: "/bogus", message: "unknown parameter (matmul takes: data, matrix_b)"),
            PointerIssue(pointer: "/data/1", message: "row 1 has 2 elements, expected 1"),
            PointerIssue(pointer: "/matrix_b", message: "missing required parameter"),
        ])
        #expect(error?.message == "Invalid params: unknown parameter (matmul takes: data, matrix_b) (at /bogus) and 2 more problems")
    }

    @Test func wrongScalarTypes() {
        expectInvalid("multiply", jo(["data": a, "factor": .string("2")]), "/factor", "expected a number, got string")
        expectInvalid("multiply", jo(["data": a, "factor": .null]), "/factor", "expected a number, got null")
        expectInvalid("add", jo(["data": a, "addend": .numbers([1])]), "/addend", "expected a number, got array")
        expectInvalid("max_pool2d", jo(["data": a, "size": jn(1.5)]), "/size", "expected an integer ≥ 1, got 1.5")
        expectInvalid("max_pool2d", jo(["data": a, "size": jn(0)]), "/size", "expected an integer ≥ 1, got 0")
        expectInvalid("max_pool2d", jo(["data": a, "size": jn(-2)]), "/size", "expected an integer ≥ 1, got -2")
        expectInvalid("max_pool2d", jo(["data": a, "size": jn(.nan)]), "/size", "expected an integer ≥ 1, got NaN")
        expectInvalid("max_pool2d", jo(["data": a, "size": jn(.infinity)]), "/size", "expected an integer ≥ 1, got Infinity")
        expectInvalid("max_pool2d", jo(["data": a, "size": .string("2")]), "/size", "expected an integer ≥ 1, got string")
        expectInvalid("reshape", jo(["data": a, "rows": jn(4), "cols": .bool(true)]), "/cols", "expected an integer ≥ 1, got boolean")
        expectInvalid("sum", jo(["data": a, "axis": jn(2)]), "/axis", "expected null, 0 or 1, got 2")
        expectInvalid("sum", jo(["data": a, "axis": jn(0.5)]), "/axis", "expected null, 0 or 1, got 0.5")
        expectInvalid("mean", jo(["data": a, "axis": .string("rows")]), "/axis", "expected null, 0 or 1, got string")
        expectInvalid("normalize", jo(["data": a, "mode": .string("zscore")]), "/mode", "expected \"minmax\" or \"l2\", got \"zscore\"")
        expectInvalid("normalize", jo(["data": a, "mode": .null]), "/mode", "expected \"minmax\" or \"l2\", got null")
        expectInvalid("compute", jo(["data": a, "operation": .string("sum"), "parameters": jo(["axis": jn(3)])]), "/parameters/axis", "expected null, 0 or 1, got 3")
        expectInvalid("compute", jo(["data": a, "operation": .string("sum"), "parameters": .array([])]), "/parameters", "expected an object, got array")
        expectInvalid("compute", jo(["data": a, "operation": jn(1)]), "/operation", "expected a string (an operation name), got number")
    }

    @Test func unknownOperationInComputeIsInvalidParams() {
        let error = failure("compute", jo(["data": a, "operation": .string("fft")]))
        #expect(error?.kind == .invalidParams)
        #expect(error?.issues.first?.pointer == "/operation")
        #expect(error?.issues.first?.message.hasPrefix("unknown operation \"fft\"") == true)
        #expect(failure("compute", jo(["data": a, "operation": .string("compute")]))?.issues.first?.pointer == "/operation")
    }

    @Test func semanticChecks() {
        expectInvalidPrefix("matmul", jo(["data": a, "matrix_b": jm([[1, 2, 3]])]), "/matrix_b", "matrix_b has 1 rows but data has 2 columns")
        expectInvalidPrefix("compute", jo(["data": a, "operation": .string("matmul"), "parameters": jo(["matrix_b": jm([[1]])])]),
                            "/parameters/matrix_b", "matrix_b has 1 rows but data has 2 columns")
        expectInvalidPrefix("elementwise_add", jo(["data": a, "other": jm([[1, 2]])]), "/other", "other is 1×2 but data is 2×2")
        expectInvalidPrefix("elementwise_mul", jo(["data": a, "other": jm([[1, 2, 3], [4, 5, 6]])]), "/other", "other is 2×3 but data is 2×2")
        expectInvalidPrefix("conv2d", jo(["data": a, "kernel": jm([[1, 2, 3]])]), "/kernel", "kernel is 1×3, larger than data (2×2)")
        expectInvalidPrefix("conv2d", jo(["data": a, "kernel": jm([[1], [2], [3]])]), "/kernel", "kernel is 3×1, larger than data (2×2)")
        expectInvalidPrefix("max_pool2d", jo(["data": jm([[1, 2, 3, 4]]), "size": jn(2)]), "/size", "size 2 does not divide the data shape 1×4")
        expectInvalidPrefix("max_pool2d", jo(["data": a, "size": jn(1e300)]), "/size", "size 1e+300 does not divide")
        expectInvalidPrefix("reshape", jo(["data": a, "rows": jn(3), "cols": jn(1)]), "", "rows × cols = 3 × 1 does not equal the 4 elements of data")
        expectInvalidPrefix("reshape", jo(["data": a, "rows": jn(1e300), "cols": jn(1e300)]), "", "rows × cols = 1e+300 × 1e+300 does not equal")
        expectInvalidPrefix("reshape", jo(["data": a, "rows": jn(4294967296), "cols": jn(4294967296)]), "", "rows × cols = 4294967296 × 4294967296 does not equal")
        expectInvalidPrefix("compute", jo(["data": a, "operation": .string("reshape"), "parameters": jo(["rows": jn(3), "cols": jn(3)])]),
                            "/parameters", "rows × cols = 3 × 3")
        expectInvalid("normalize", jo(["data": jm([[2, 2], [2, 2]])]), "/data",
                      "minmax normalization of a constant matrix is undefined (its maximum equals its minimum)")
        expectInvalid("compute", jo(["data": jm([[7]]), "operation": .string("normalize")]), "/data",
                      "minmax normalization of a constant matrix is undefined (its maximum equals its minimum)")
    }

    @Test func limits() {
        let small = OperationCatalogue(kernels: FallbackKernels(), limits: OperationLimits(maxElements: 6))
        // Inputs: 4 + 4 = 8 > 6.
        let inputs = failure("elementwise_add", jo(["data": a, "other": a]), small)
        #expect(inputs?.kind == .tooLarge)
        #expect(inputs?.message == "Request too large: its matrices hold 8 elements in total, over the limit of 6")
        // Inputs 3 + 3 = 6 fit; the 3×3 result does not, and is refused before it is computed.
        let result = failure("matmul", jo(["data": jm([[1], [2], [3]]), "matrix_b": jm([[1, 2, 3]])]), small)
        #expect(result?.kind == .tooLarge)
        #expect(result?.message == "Result too large: matmul would produce 3×3 elements, over the limit of 6")
        // Exactly at the limit is fine.
        #expect(failure("sum", jo(["data": jm([[1, 2, 3], [4, 5, 6]])]), small) == nil)
        #expect(failure("compute", jo(["data": jm([[1, 2, 3, 4, 5, 6, 7]]), "operation": .string("sum")]), small)?.kind == .tooLarge)
        // Shape problems are reported before limits.
        #expect(failure("sum", jo(["data": jm([[1, 2, 3, 4, 5, 6, 7], [1]])]), small)?.kind == .invalidParams)
    }
}

@Suite("OperationCatalogue: streaming")
struct CatalogueStreamTests {
    /// Streams and reassembles; checks the blocks arrive in order and cover the result.
    func streamed(_ method: String, _ params: JSONValue, rowBlock: Int) throws -> (shape: (rows: Int, cols: Int), rows: [[Double]], blocks: [Int]) {
        var rows: [[Double]] = []
        var starts: [Int] = []
        var ordered = true
        let shape = try catalogue.stream(method: method, params: params, rowBlock: rowBlock) { start, block in
            if start != rows.count { ordered = false }
            starts.append(start)
            #expect(block.rows <= max(rowBlock, 1))
            for i in 0..<block.rows { rows.append(Array(block.storage[(i * block.cols)..<((i + 1) * block.cols)])) }
        }
        #expect(ordered)
        #expect(rows.count == shape.rows)
        return (shape, rows, starts)
    }

    func testMatrix(_ rows: Int, _ cols: Int, seed: Int) -> [[Double]] {
        (0..<rows).map { i in (0..<cols).map { j in Double(((i * 31 + j * 17 + seed) % 23) - 11) / 4 } }
    }

    @Test func everyOperationStreamsTheSameResult() throws {
        let data = testMatrix(12, 6, seed: 1)
        let cases: [(String, JSONValue)] = [
            ("multiply", jo(["factor": jn(1.5)])),
            ("add", jo(["addend": jn(-2)])),
            ("matmul", jo(["matrix_b": jm(testMatrix(6, 5, seed: 2))])),
            ("transpose", jo([:])),
            ("elementwise_add", jo(["other": jm(testMatrix(12, 6, seed: 3))])),
            ("elementwise_sub", jo(["other": jm(testMatrix(12, 6, seed: 4))])),
            ("elementwise_mul", jo(["other": jm(testMatrix(12, 6, seed: 5))])),
            ("elementwise_div", jo(["other": jm(testMatrix(12, 6, seed: 6))])),
            ("conv2d", jo(["kernel": jm(testMatrix(3, 2, seed: 7))])),
            ("max_pool2d", jo(["size": jn(3)])),
            ("max_pool2d", jo(["size": jn(2)])),
            ("normalize", jo(["mode": .string("minmax")])),
            ("normalize", jo(["mode": .string("l2")])),
            ("reshape", jo(["rows": jn(8), "cols": jn(9)])),
            ("sum", jo([:])),
            ("mean", jo(["axis": jn(0)])),
            ("min", jo(["axis": jn(1)])),
            ("max", jo(["axis": .null])),
        ]
        for (operation, parameters) in cases {
            let params = jo(["data": jm(data), "operation": .string(operation), "parameters": parameters])
            let whole = try catalogue.call(method: "compute", params: params)
            let expected: [[Double]] = rowsOf(whole) ?? [[scalarOf(whole)!]]
            for rowBlock in [1, 2, 5, 100] {
                let s = try streamed("stream", params, rowBlock: rowBlock)
                #expect(s.shape.rows == expected.count && s.shape.cols == expected[0].count, "\(operation)")
                #expect(sameBits(s.rows.flatMap { $0 }, expected.flatMap { $0 }), "\(operation) rowBlock \(rowBlock)")
                #expect(s.blocks == Array(stride(from: 0, to: expected.count, by: rowBlock)), "\(operation) rowBlock \(rowBlock)")
            }
        }
    }

    @Test(.enabled(if: SIMDKernels.cpuSupported, "needs AVX2 + FMA"))
    func simdStreamingEqualsSIMDWholeResults() throws {
        // The SIMD engine streams through the same catalogue: its row blocks must reassemble its own whole result.
        let simd = OperationCatalogue(kernels: SIMDKernels(threads: 2))
        let data = testMatrix(96, 70, seed: 11)
        let cases: [(String, JSONValue)] = [
            ("multiply", jo(["factor": jn(1.5)])),
            ("add", jo(["addend": jn(-2)])),
            ("matmul", jo(["matrix_b": jm(testMatrix(70, 45, seed: 12))])),
            ("transpose", jo([:])),
            ("elementwise_div", jo(["other": jm(testMatrix(96, 70, seed: 13))])),
            ("conv2d", jo(["kernel": jm(testMatrix(5, 4, seed: 14))])),
            ("max_pool2d", jo(["size": jn(2)])),
            ("normalize", jo(["mode": .string("minmax")])),
            ("normalize", jo(["mode": .string("l2")])),
            ("reshape", jo(["rows": jn(70), "cols": jn(96)])),
            ("mean", jo(["axis": jn(0)])),
            ("max", jo(["axis": jn(1)])),
        ]
        for (operation, parameters) in cases {
            let params = jo(["data": jm(data), "operation": .string(operation), "parameters": parameters])
            let whole = try simd.call(method: "compute", params: params)
            let expected = rowsOf(whole)!
            for rowBlock in [1, 7, 64] {
                var rows: [[Double]] = []
                _ = try simd.stream(method: "stream", params: params, rowBlock: rowBlock) { start, block in
                    #expect(start == rows.count)
                    for i in 0..<block.rows { rows.append(Array(block.storage[(i * block.cols)..<((i + 1) * block.cols)])) }
                }
                #expect(sameBits(rows.flatMap { $0 }, expected.flatMap { $0 }), "\(operation) rowBlock \(rowBlock)")
            }
        }
    }

    @Test func streamAcceptsComputeAndDirectShapes() throws {
        let s1 = try streamed("compute", jo(["data": jm([[1, 2], [3, 4]]), "operation": .string("multiply"), "parameters": jo(["factor": jn(2)])]), rowBlock: 1)
        #expect(s1.rows == [[2, 4], [6, 8]] && s1.blocks == [0, 1])
        let s2 = try streamed("multiply", jo(["data": jm([[1, 2], [3, 4]]), "factor": jn(2)]), rowBlock: 0)
        #expect(s2.rows == [[2, 4], [6, 8]] && s2.blocks == [0, 1])
        let s3 = try streamed("stream", jo(["data": jm([[1, 2], [3, 4]]), "operation": .string("sum")]), rowBlock: 8)
        #expect(s3.rows == [[10]] && s3.shape == (1, 1) && s3.blocks == [0])
    }

    @Test func streamErrorsComeBeforeAnyBlock() {
        var emitted = 0
        func run(_ method: String, _ params: JSONValue) -> OperationError? {
            do {
                _ = try catalogue.stream(method: method, params: params, rowBlock: 1) { _, _ in emitted += 1 }
                return nil
            } catch { return error }
        }
        #expect(run("stream", jo(["data": jm([[3, 3], [3, 3]]), "operation": .string("normalize")]))?.issues.first?.pointer == "/data")
        #expect(run("stream", jo(["data": jm([[1, 2]]), "operation": .string("nope")]))?.issues.first?.pointer == "/operation")
        #expect(run("stream", jo(["data": jm([[1, 2]]), "operation": .string("matmul"), "parameters": jo(["matrix_b": jm([[1]])])]))?.kind == .invalidParams)
        #expect(run("bogus", jo([:]))?.kind == .methodNotFound)
        #expect(emitted == 0)
    }
}
