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
        default:
            do {
                return try catalogue.call(method: request.method, params: request.params)
            } catch {
                throw RPCError(error)
            }
        }
    }
}

extension RPCError {
    /// The JSON-RPC error for an operation failure; params problems go into `data.errors`.
    init(_ error: OperationError) {
        if error.issues.isEmpty {
            self.init(code: error.code, message: error.message)
        } else {
            self = .invalidParams(error.message, errors: error.issues.map { ($0.pointer, $0.message) })
            code = error.code
        }
    }
}
