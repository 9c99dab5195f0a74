import ForziumJSON

/// The members `compute` (and `stream`) accept at the top level of params.
let computeMembers = ["data", "operation", "parameters"]

/// Parameters read from params, before the matrices are copied out of the JSON.
struct Arguments {
    /// Where the operation's own parameters live: `""` for a direct call, `/parameters` for `compute`.
    var parametersPointer: String
    var dataPointer: String = "/data"
    var data: MatrixArgument?
    var matrices: [String: MatrixArgument] = [:]
    var numbers: [String: Double] = [:]
    var integers: [String: Int] = [:]
    /// Integer parameters as given, for messages (the stored value is clamped to 2^53).
    var integerTexts: [String: String] = [:]
    var axis: Axis?
    var mode: NormalizeMode = .minmax
    var issues: [PointerIssue] = []

    func pointer(_ name: String) -> String { JSONPointer.appending(parametersPointer, name) }
}

extension OperationCatalogue {
    /// Reads and checks params for `method`, producing a plan whose inputs fit the kernels and the limits.
    func makePlan(method: String, params: JSONValue?, streaming: Bool) throws(OperationError) -> Plan {
        let isComputeShaped = method == "compute" || (streaming && method == "stream")
        let direct = MatrixOperation.named(method)
        guard isComputeShaped || direct != nil else {
            throw OperationError(.methodNotFound, message: "Method not found: \(method)")
        }
        guard let params else {
            throw OperationError.invalidParams(at: "", "params must be an object; none were given")
        }
        guard case .object(let object) = params else {
            throw OperationError.invalidParams(at: "", "params must be an object (parameters by name), got \(params.typeName)")
        }

        var args: Arguments
        let operation: MatrixOperation
        if let direct, !isComputeShaped {
            operation = direct
            args = Arguments(parametersPointer: "")
            let allowed = ["data"] + operation.parameters.map(\.name)
            for member in object.members where !allowed.contains(member.key) {
                args.issues.append(PointerIssue(
                    pointer: JSONPointer.appending("", member.key),
                    message: "unknown parameter (\(operation.rawValue) takes: \(allowed.joined(separator: ", ")))"))
            }
            readData(object["data"], into: &args)
            readParameters(of: operation, from: object, into: &args)
        } else {
            args = Arguments(parametersPointer: "/parameters")
            for member in object.members where !computeMembers.contains(member.key) {
                args.issues.append(PointerIssue(
                    pointer: JSONPointer.appending("", member.key),
                    message: "unknown parameter (\(method) takes: \(computeMembers.joined(separator: ", ")))"))
            }
            readData(object["data"], into: &args)
            let named = readOperationName(object["operation"], into: &args)
            var parameters = JSONObject()
            switch object["parameters"] {
            case nil: break
            case .object(let given): parameters = given
            case let other?:
                args.issues.append(PointerIssue(pointer: "/parameters", message: "expected an object, got \(other.typeName)"))
            }
            guard let named else { throw OperationError.invalidParams(args.issues) }
            operation = named
            let allowed = operation.parameters.map(\.name)
            for member in parameters.members where !allowed.contains(member.key) {
                let takes = allowed.isEmpty ? "\(operation.rawValue) takes no parameters" : "\(operation.rawValue) takes: \(allowed.joined(separator: ", "))"
                args.issues.append(PointerIssue(pointer: args.pointer(member.key), message: "unknown parameter (\(takes))"))
            }
            readParameters(of: operation, from: parameters, into: &args)
        }
        if !args.issues.isEmpty { throw OperationError.invalidParams(args.issues) }
        return try plan(operation, args)
    }

    private func readOperationName(_ value: JSONValue?, into args: inout Arguments) -> MatrixOperation? {
        switch value {
        case nil:
            args.issues.append(PointerIssue(pointer: "/operation", message: "missing required parameter"))
        case .string(let name):
            if let operation = MatrixOperation.named(name) { return operation }
            args.issues.append(PointerIssue(
                pointer: "/operation",
                message: "unknown operation \"\(name)\"; expected one of: \(OperationCatalogue.operationNames.joined(separator: ", "))"))
        case let other?:
            args.issues.append(PointerIssue(pointer: "/operation", message: "expected a string (an operation name), got \(other.typeName)"))
        }
        return nil
    }

    private func readData(_ value: JSONValue?, into args: inout Arguments) {
        guard let value else {
            args.issues.append(PointerIssue(pointer: "/data", message: "missing required parameter"))
            return
        }
        switch MatrixArgument.read(value, at: "/data") {
        case .success(let matrix): args.data = matrix
        case .failure(let issue): args.issues.append(issue)
        }
    }

    private func readParameters(of operation: MatrixOperation, from object: JSONObject, into args: inout Arguments) {
        let base = args.parametersPointer
        for spec in operation.parameters {
            // Built only for an issue or a matrix (whose issues point below it): most requests need none.
            var pointer: String { JSONPointer.appending(base, spec.name) }
            guard let value = object[spec.name] else {
                if spec.isRequired {
                    args.issues.append(PointerIssue(pointer: pointer, message: "missing required parameter"))
                }
                continue
            }
            switch spec.kind {
            case .matrix:
                switch MatrixArgument.read(value, at: pointer) {
                case .success(let matrix): args.matrices[spec.name] = matrix
                case .failure(let issue): args.issues.append(issue)
                }
            case .number:
                if case .number(let number) = value {
                    args.numbers[spec.name] = number.value
                } else {
                    args.issues.append(PointerIssue(pointer: pointer, message: "expected a number, got \(value.typeName)"))
                }
            case .positiveInteger:
                guard case .number(let number) = value else {
                    args.issues.append(PointerIssue(pointer: pointer, message: "expected an integer ≥ 1, got \(value.typeName)"))
                    continue
                }
                let v = number.value
                guard v.isFinite, v == v.rounded(.towardZero) else {
                    args.issues.append(PointerIssue(pointer: pointer, message: "expected an integer ≥ 1, got \(describe(v))"))
                    continue
                }
                guard v >= 1 else {
                    args.issues.append(PointerIssue(pointer: pointer, message: "expected an integer ≥ 1, got \(describe(v))"))
                    continue
                }
                // Beyond 2^53 no dimension can match; clamp so the shape checks reject it without overflow.
                args.integers[spec.name] = v >= 0x1p53 ? 1 << 53 : Int(v)
                args.integerTexts[spec.name] = describe(v)
            case .axis:
                switch value {
                case .null:
                    args.axis = nil
                case .number(let number) where number.value == 0:
                    args.axis = .rows
                case .number(let number) where number.value == 1:
                    args.axis = .cols
                case .number(let number):
                    args.issues.append(PointerIssue(pointer: pointer, message: "expected null, 0 or 1, got \(describe(number.value))"))
                default:
                    args.issues.append(PointerIssue(pointer: pointer, message: "expected null, 0 or 1, got \(value.typeName)"))
                }
            case .normalizeMode:
                switch value {
                case .string(let text):
                    if let mode = NormalizeMode(rawValue: text) {
                        args.mode = mode
                    } else {
                        args.issues.append(PointerIssue(pointer: pointer, message: "expected \"minmax\" or \"l2\", got \"\(text)\""))
                    }
                default:
                    args.issues.append(PointerIssue(pointer: pointer, message: "expected \"minmax\" or \"l2\", got \(value.typeName)"))
                }
            }
        }
    }

    /// Limits, then agreement between the inputs, then the result's size; copies the matrices out last.
    private func plan(_ operation: MatrixOperation, _ args: Arguments) throws(OperationError) -> Plan {
        guard let data = args.data else { preconditionFailure("data checked before planning") }
        let a = data.shape
        let maxElements = limits.maxElements

        // 1. Inputs.
        var inputElements = a.count
        for (_, matrix) in args.matrices { inputElements += matrix.shape.count }
        if inputElements > maxElements {
            throw OperationError(
                .tooLarge,
                message: "Request too large: its matrices hold \(inputElements) elements in total, over the limit of \(maxElements)")
        }

        // 2. Agreement, and the result's shape.
        let resultShape: (rows: Int, cols: Int)
        switch operation {
        case .multiply, .add, .normalize, .transpose:
            resultShape = operation == .transpose ? (a.cols, a.rows) : (a.rows, a.cols)
        case .matmul:
            let b = args.matrices["matrix_b"]!.shape
            if b.rows != a.cols {
                throw OperationError.invalidParams(
                    at: args.pointer("matrix_b"),
                    "matrix_b has \(b.rows) rows but data has \(a.cols) columns; matmul needs data columns = matrix_b rows (data is \(a.rows)×\(a.cols), matrix_b is \(b.rows)×\(b.cols))")
            }
            resultShape = (a.rows, b.cols)
        case .elementwiseAdd, .elementwiseSub, .elementwiseMul, .elementwiseDiv:
            let b = args.matrices["other"]!.shape
            if b.rows != a.rows || b.cols != a.cols {
                throw OperationError.invalidParams(
                    at: args.pointer("other"),
                    "other is \(b.rows)×\(b.cols) but data is \(a.rows)×\(a.cols); elementwise operations need equal shapes")
            }
            resultShape = (a.rows, a.cols)
        case .conv2d:
            let k = args.matrices["kernel"]!.shape
            if k.rows > a.rows || k.cols > a.cols {
                throw OperationError.invalidParams(
                    at: args.pointer("kernel"),
                    "kernel is \(k.rows)×\(k.cols), larger than data (\(a.rows)×\(a.cols)); a valid convolution needs a kernel no larger than the input in either dimension")
            }
            resultShape = (a.rows - k.rows + 1, a.cols - k.cols + 1)
        case .maxPool2d:
            let size = args.integers["size"]!
            if a.rows % size != 0 || a.cols % size != 0 {
                throw OperationError.invalidParams(
                    at: args.pointer("size"),
                    "size \(args.integerTexts["size"]!) does not divide the data shape \(a.rows)×\(a.cols); pooling windows must tile the matrix exactly")
            }
            resultShape = (a.rows / size, a.cols / size)
        case .reshape:
            let rows = args.integers["rows"]!, cols = args.integers["cols"]!
            let (product, overflow) = rows.multipliedReportingOverflow(by: cols)
            if overflow || product != a.count {
                throw OperationError.invalidParams(
                    at: args.parametersPointer,
                    "rows × cols = \(args.integerTexts["rows"]!) × \(args.integerTexts["cols"]!) does not equal the \(a.count) elements of data (\(a.rows)×\(a.cols))")
            }
            resultShape = (rows, cols)
        case .sum, .mean, .min, .max:
            switch args.axis {
            case nil: resultShape = (1, 1)
            case .rows: resultShape = (1, a.cols)
            case .cols: resultShape = (a.rows, 1)
            }
        }

        // 3. Result.
        let (resultElements, overflow) = resultShape.rows.multipliedReportingOverflow(by: resultShape.cols)
        if overflow || resultElements > maxElements {
            throw OperationError(
                .tooLarge,
                message: "Result too large: \(operation.rawValue) would produce \(resultShape.rows)×\(resultShape.cols) elements, over the limit of \(maxElements)")
        }

        // 4. Copy the inputs out of the JSON (binary inputs are already matrices).
        let matrixA = data.build()
        func other(_ name: String) -> Matrix { args.matrices[name]!.build() }
        switch operation {
        case .multiply: return .scale(matrixA, args.numbers["factor"] ?? 1)
        case .add: return .offset(matrixA, args.numbers["addend"] ?? 0)
        case .matmul: return .matmul(matrixA, other("matrix_b"))
        case .transpose: return .transpose(matrixA)
        case .elementwiseAdd, .elementwiseSub, .elementwiseMul, .elementwiseDiv:
            return .elementwise(operation.elementwiseOp!, matrixA, other("other"))
        case .conv2d: return .conv2d(matrixA, other("kernel"))
        case .maxPool2d: return .maxPool(matrixA, args.integers["size"]!)
        case .normalize: return .normalize(matrixA, args.mode, args.dataPointer)
        case .reshape: return .reshape(matrixA, resultShape.rows, resultShape.cols)
        case .sum, .mean, .min, .max: return .reduce(operation.reductionOp!, matrixA, args.axis)
        }
    }
}

/// A number as people write it in messages: `3` rather than `3.0`, `2.5`, `NaN`, `Infinity`.
func describe(_ v: Double) -> String {
    if v.isNaN { return "NaN" }
    if v.isInfinite { return v < 0 ? "-Infinity" : "Infinity" }
    if v == v.rounded(.towardZero), abs(v) < 1e15 { return String(Int(v)) }
    return "\(v)"
}
