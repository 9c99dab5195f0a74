import ForziumJSON

// API shape only; the operations work replaces the bodies.

/// One problem with a request's params, located by a JSON Pointer into `params`.
public struct ParamIssue: Sendable, Equatable {
    public var pointer: String
    public var message: String
    public init(pointer: String, message: String) {
        self.pointer = pointer
        self.message = message
    }
}

/// An operation that could not run, carrying its JSON-RPC error code.
public struct OperationError: Error, Sendable, Equatable {
    /// JSON-RPC error code (-32601 unknown method, -32602 invalid params, -320xx application errors).
    public var code: Int
    public var message: String
    /// For invalid params: where and why.
    public var issues: [ParamIssue]

    public init(code: Int, message: String, issues: [ParamIssue] = []) {
        self.code = code
        self.message = message
        self.issues = issues
    }
}

/// Limits applied before any kernel runs.
public struct OperationLimits: Sendable {
    /// Most elements accepted across all matrices of one request (and in its result).
    public var maxElements: Int = 50_000_000
    public init(maxElements: Int = 50_000_000) { self.maxElements = maxElements }
}

/// The operation catalogue: maps a method name and its params onto a kernel call and its JSON result.
public struct OperationCatalogue: Sendable {
    public let kernels: any Kernels
    public let limits: OperationLimits

    public init(kernels: any Kernels, limits: OperationLimits = OperationLimits()) {
        self.kernels = kernels
        self.limits = limits
    }

    /// Every method this catalogue answers (the operations and `compute`).
    public static var methodNames: [String] { [] }

    /// Runs `method` with `params`; throws an `OperationError` for unknown methods, bad params, or limits.
    public func call(method: String, params: JSONValue?) throws(OperationError) -> JSONValue {
        fatalError("operation catalogue not written yet")
    }
}
