import ForziumJSON

/// One request as the handler sees it: the envelope is already validated.
public struct RPCRequest: Sendable {
    /// The method name.
    public var method: String
    /// `params` as sent: an object or array, or nil when absent.
    public var params: JSONValue?
    /// The id as sent (string, finite number or null); nil for a notification, which gets no reply.
    public var id: JSONValue?

    public init(method: String, params: JSONValue?, id: JSONValue?) {
        self.method = method
        self.params = params
        self.id = id
    }

    public var isNotification: Bool { id == nil }
}

/// What a handler may do besides returning its result: send notifications (e.g. `stream.rows`) ahead of it, and
/// learn whether the request has been cancelled (`$/cancelRequest`).
public struct RPCContext: Sendable {
    private let sink: @Sendable ([UInt8]) -> Void
    private let cancellation: CancellationToken?

    /// - Parameter sink: receives each complete notification line (terminated by LF).
    public init(sink: @escaping @Sendable ([UInt8]) -> Void) {
        self.init(sink: sink, cancellation: nil)
    }

    private init(sink: @escaping @Sendable ([UInt8]) -> Void, cancellation: CancellationToken?) {
        self.sink = sink
        self.cancellation = cancellation
    }

    /// The same sink, for the request `token` belongs to.
    func request(_ token: CancellationToken?) -> RPCContext {
        RPCContext(sink: sink, cancellation: token)
    }

    /// True once a `$/cancelRequest` for this request has been read. Cheap enough to ask between blocks of work;
    /// a handler that sees it should stop and throw `RPCError.requestCancelled`.
    public var isCancelled: Bool { cancellation?.isCancelled ?? false }

    /// Sends `{"jsonrpc":"2.0","method":<method>,"params":<params>}` as one line.
    public func notify(method: String, params: JSONValue) {
        var line: [UInt8] = []
        RPCEncoder.notification(method: method, params: params, into: &line)
        line.append(0x0A)
        sink(line)
    }

    /// Sends a notification whose params are already-encoded JSON bytes (for large payloads built in place).
    public func notify(method: String, encodedParams: [UInt8]) {
        var line: [UInt8] = []
        line.reserveCapacity(encodedParams.count + method.utf8.count + 40)
        RPCEncoder.notification(method: method, encodedParams: encodedParams, into: &line)
        line.append(0x0A)
        sink(line)
    }
}

/// A handler's answer to a request.
public enum RPCResult: Sendable {
    /// A JSON value, written by `RPCEncoder` (in an object, numbers that carry a literal keep it).
    case value(JSONValue)
    /// A result that writes its own JSON text straight into the response line (e.g. a matrix from its storage, as
    /// JSON rows or as a `BinaryMatrix`): `write(&line, threads)` appends exactly one JSON value, using up to
    /// `threads` threads (`RPCDispatcher.writerThreads`). It runs once, after the handler has returned.
    case text(write: @Sendable (_ line: inout [UInt8], _ threads: Int) -> Void)
    /// A large result written in parts (e.g. a matrix a block of rows at a time) so that its text never exists whole:
    /// `write(emit, threads)` calls `emit` with consecutive parts of exactly one JSON value, using up to `threads`
    /// threads. A single request's reply goes to the output part by part as it is printed
    /// (`RPCDispatcher.send(_:context:to:)`); in a batch the parts are collected into the line. It runs once.
    case parts(write: @Sendable (_ emit: (UnsafeRawBufferPointer) -> Void, _ threads: Int) -> Void)
}

/// Answers validated requests. Throw an `RPCError` to answer with that error; any other error becomes -32603.
public protocol RPCHandler: Sendable {
    func handle(_ request: RPCRequest, context: RPCContext) throws -> RPCResult
}
