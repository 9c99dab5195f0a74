import ForziumJSON
import ForziumKernels
import ForziumRPC

/// The engine's methods: every operation of the catalogue (and `compute`), `engine.info`, and `stream`.
/// (`ping` and `$/cancelRequest` belong to the protocol layer, `RPCDispatcher`.)
struct EngineHandler: RPCHandler {
    /// Runs the operations.
    let catalogue: OperationCatalogue
    /// The `engine.info` result (fixed for the process).
    let info: JSONValue

    /// The catalogue's methods, for a quick membership test.
    private static let catalogueMethods = Set(OperationCatalogue.methodNames)

    func handle(_ request: RPCRequest, context: RPCContext) throws -> RPCResult {
        switch request.method {
        case "engine.info":
            return .value(info)
        case "stream":
            return try stream(request, context: context)
        case let method where method == "compute" || Self.catalogueMethods.contains(method):  // the usual one, unhashed
            let options = try RequestOptions(params: request.params)
            if method == "matmul", case .shared(let target) = options.resultForm,
               let answer = try sharedMatmul(options.params, into: target, context: context) {
                return answer
            }
            do {
                let result = try catalogue.evaluate(method: method, params: options.params, isCancelled: { context.isCancelled })
                return options.resultForm.result(result)
            } catch {
                throw RPCError(error)
            }
        default:
            throw RPCError.methodNotFound(request.method)
        }
    }
}

extension EngineHandler {
    /// Elements per `stream.rows` notification (about 1–2 MB of JSON).
    static let streamBlockElements = 65_536

    /// `stream {data, operation, parameters?}`: sends `stream.rows` notifications
    /// `{"request":<id>,"start":<row>,"rows":<matrix>}` as row blocks are ready, then answers `{"rows":R,"cols":C}`.
    /// `rows` is JSON rows, or a `BinaryMatrix` with `"$result":"binary"`. Params errors are answered before any
    /// block is sent; a cancel stops the stream between blocks (-32800). As a notification (no id) it sends nothing.
    func stream(_ request: RPCRequest, context: RPCContext) throws -> RPCResult {
        guard let id = request.id else { return .value(.null) }
        let options = try RequestOptions(params: request.params)
        let rowBlock = max(1, Self.streamBlockElements / Self.dataColumns(options.params))
        let shape: (rows: Int, cols: Int)
        do {
            shape = try catalogue.stream(
                method: "stream", params: options.params, rowBlock: rowBlock, isCancelled: { context.isCancelled }
            ) { start, block in
                let params = StreamRows.params(request: id, start: start) { options.resultForm.write(block, into: &$0) }
                context.notify(method: StreamRows.method, encodedParams: params)
            }
        } catch {
            throw RPCError(error)
        }
        return .value(.object(JSONObject([("rows", .exactInteger(shape.rows)), ("cols", .exactInteger(shape.cols))])))
    }

    /// Columns of `data` in stream params (JSON rows or the binary form), 1 when it cannot tell.
    static func dataColumns(_ params: JSONValue?) -> Int {
        guard case .object(let object)? = params else { return 1 }
        switch object["data"] {
        case .rows(let rows)?:
            return rows.cols
        case .array(let rows)?:
            if case .numbers(let row)? = rows.first { return max(1, row.count) }
            if case .array(let row)? = rows.first { return max(1, row.count) }
        case .object(let binary)?:
            if case .numbers(let shape)? = binary["shape"], shape.count == 2, shape[1] >= 1, shape[1] <= 1e15 {
                return Int(shape[1])
            }
        default:
            break
        }
        return 1
    }
}

extension RPCError {
    /// The JSON-RPC error for an operation failure (the one place operation failures get their wire codes);
    /// params problems go into `data.errors`.
    init(_ error: OperationError) {
        switch error.kind {
        case .methodNotFound: self.init(.methodNotFound, message: error.message)
        case .invalidParams: self = .invalidParams(error.message, issues: error.issues)
        case .tooLarge: self.init(.tooLarge, message: error.message)
        case .cancelled: self = .requestCancelled
        }
    }
}
