import ForziumJSON
import ForziumKernels
import ForziumRPC

/// The engine's methods: every operation of the catalogue (and `compute`), `engine.info`, and `stream`.
struct EngineHandler: RPCHandler {
    /// Runs the operations.
    let catalogue: OperationCatalogue
    /// The `engine.info` result (fixed for the process).
    let info: JSONValue

    func handle(_ request: RPCRequest, context: RPCContext) throws -> JSONValue {
        switch request.method {
        case "engine.info":
            return info
        case "stream":
            return try stream(request, context: context)
        default:
            do {
                return try catalogue.call(method: request.method, params: request.params)
            } catch {
                throw RPCError(error)
            }
        }
    }
}

extension EngineHandler {
    /// Elements per `stream.rows` notification (about 1–2 MB of JSON).
    static let streamBlockElements = 65_536

    /// `stream {data, operation, parameters?}`: sends `stream.rows` notifications
    /// `{"request":<id>,"start":<row>,"rows":[[...],...]}` as row blocks are ready, then answers `{"rows":R,"cols":C}`.
    /// Params errors are answered before any block is sent. As a notification (no id) it sends nothing at all.
    func stream(_ request: RPCRequest, context: RPCContext) throws -> JSONValue {
        guard let id = request.id else { return .null }
        var columns = 1
        if case .object(let object)? = request.params, case .array(let rows)? = object["data"], let first = rows.first {
            if case .numbers(let row) = first { columns = max(1, row.count) }
            if case .array(let row) = first { columns = max(1, row.count) }
        }
        let rowBlock = max(1, Self.streamBlockElements / columns)
        let shape: (rows: Int, cols: Int)
        do {
            shape = try catalogue.stream(method: "stream", params: request.params, rowBlock: rowBlock) { start, block in
                var params: [UInt8] = []
                params.reserveCapacity(block.count * 20 + 64)
                params.append(contentsOf: #"{"request":"#.utf8)
                RPCEncoder.writeID(id, into: &params)
                params.append(contentsOf: #","start":"#.utf8)
                params.append(contentsOf: String(start).utf8)
                params.append(contentsOf: #","rows":"#.utf8)
                JSONWriter.write(block.jsonValue, into: &params)
                params.append(UInt8(ascii: "}"))
                context.notify(method: "stream.rows", encodedParams: params)
            }
        } catch {
            throw RPCError(error)
        }
        return .object(JSONObject([("rows", .exactInteger(shape.rows)), ("cols", .exactInteger(shape.cols))]))
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
        case .cancelled: self.init(.requestCancelled, message: error.message)
        }
    }
}
