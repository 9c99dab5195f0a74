import ForziumJSON

/// Turns one request line into its reply line, per JSON-RPC 2.0: envelope checks, batches, notifications,
/// error objects, and the protocol's own methods (`ping`, `$/cancelRequest`). Pure apart from what the handler does
/// and the registry of requests in flight, so it is testable in-process.
public struct RPCDispatcher: Sendable {
    /// Answers the validated requests.
    public let handler: any RPCHandler
    /// Parses each line.
    public let decoder: any MessageDecoder
    /// Threads that may format one large result (the codec splits big matrices by rows); 1 keeps it on the caller.
    public let writerThreads: Int
    /// The requests read and not yet answered (for `$/cancelRequest` and `ping`).
    public let requests = RequestRegistry()

    public init(handler: any RPCHandler, decoder: any MessageDecoder = JSONParserDecoder(), writerThreads: Int = 1) {
        self.handler = handler
        self.decoder = decoder
        self.writerThreads = max(1, writerThreads)
    }

    /// The reply to one line (terminated by LF), or nil when nothing is to be sent (notifications only).
    /// Notifications the handler sends go to `context` as they happen, before this returns.
    ///
    /// The line is answered before its caller reads another (the serve loop's reading thread answers short lines
    /// itself), so nothing can cancel its request or count it while it runs: a single request is not registered as
    /// in flight (a batch still is, element by element).
    public func reply(to line: UnsafeRawBufferPointer, context: RPCContext) -> [UInt8]? {
        switch decode(line) {
        case .message(let message):
            if case .object = message, !Self.isControl(message) {
                return reply(to: message, tokens: [], context: context)
            }
            return reply(to: message, context: context)
        case .rejected(let errorLine): return errorLine
        }
    }

    /// A single `ping` or `$/cancelRequest` (handled by the reading thread the moment it is read).
    static func isControl(_ message: JSONValue) -> Bool {
        guard case .object(let object) = message, case .string(let method)? = object["method"] else { return false }
        return method == RPCEncoder.pingMethod || method == RPCEncoder.cancelMethod
    }

    /// A line after decoding: the message, or the -32700 reply (id null) that answers it.
    public enum DecodedLine: Sendable {
        case message(JSONValue)
        case rejected(errorLine: [UInt8])
    }

    /// Decodes one line with `decoder`, turning a parse failure into its reply line.
    public func decode(_ line: UnsafeRawBufferPointer) -> DecodedLine {
        do {
            return .message(try decoder.decode(line))
        } catch {
            return .rejected(errorLine: Self.errorLine(id: .null, error: .parseError(error)))
        }
    }

    /// `decode(_:)`, telling `release` offsets below which the line will not be read again (see `MessageDecoder`).
    public func decode(_ line: UnsafeRawBufferPointer, release: @escaping (Int) -> Void) -> DecodedLine {
        do {
            return .message(try decoder.decode(line, release: release))
        } catch {
            return .rejected(errorLine: Self.errorLine(id: .null, error: .parseError(error)))
        }
    }

    /// `decode(_:)` for a line read while it arrives (`LineFrame.partial`); nil for a blank line.
    public func decode(window: any JSONByteWindow) -> DecodedLine? {
        do {
            return try decoder.decode(window: window).map { .message($0) }
        } catch {
            return .rejected(errorLine: Self.errorLine(id: .null, error: .parseError(error)))
        }
    }

    /// What the reading thread does with a decoded message.
    public enum Intake: Sendable {
        /// A control message — a single `ping` or `$/cancelRequest` — handled at once; its reply line, if any
        /// (a ping request gets one, a cancel notification none).
        case handled(replyLine: [UInt8]?)
        /// A request or a batch, now registered as in flight (so a later `$/cancelRequest` reaches it): answer it
        /// with `reply(to:context:)`, on any thread.
        case admitted(AdmittedMessage)
    }

    /// Sorts a decoded message: control messages are handled here and now (they must not wait behind requests
    /// that compute), everything else is registered as in flight.
    public func intake(_ message: JSONValue, context: RPCContext) -> Intake {
        if Self.isControl(message) {
            var line: [UInt8] = []
            guard respond(to: message, context: context, into: &line) else { return .handled(replyLine: nil) }
            line.append(0x0A)
            return .handled(replyLine: line)
        }
        return .admitted(requests.admit(message))
    }

    /// The reply to an admitted message (see `intake`); nil when nothing is to be sent. Its requests stop being
    /// in flight once this returns.
    public func reply(to admitted: AdmittedMessage, context: RPCContext) -> [UInt8]? {
        defer { requests.finish(admitted) }
        return reply(to: admitted.message, tokens: admitted.tokens, context: context)
    }

    /// The reply to an already-decoded message (a request object, a batch, or a control message).
    public func reply(to message: JSONValue, context: RPCContext) -> [UInt8]? {
        switch intake(message, context: context) {
        case .handled(let line): return line
        case .admitted(let admitted): return reply(to: admitted, context: context)
        }
    }

    /// `tokens`: one per request object of `message` (see `AdmittedMessage`).
    private func reply(to message: JSONValue, tokens: [CancellationToken?], context: RPCContext) -> [UInt8]? {
        var line: [UInt8] = []
        // Room for a small reply at once, where growing from empty would reallocate it three or four times.
        line.reserveCapacity(256)
        switch message {
        case .array(let elements):
            guard !elements.isEmpty else {
                return Self.errorLine(id: .null, error: .invalidRequest("empty batch"))
            }
            var wroteAny = false
            line.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                let mark = line.count
                if wroteAny { line.append(UInt8(ascii: ",")) }
                if respond(to: element, context: context.request(tokens[index]), into: &line) {
                    wroteAny = true
                } else {
                    line.removeSubrange(mark...)
                }
            }
            guard wroteAny else { return nil }
            line.append(UInt8(ascii: "]"))
        case .numbers, .rows:
            // A batch of bare numbers, or of arrays of numbers: each element is an invalid request.
            let count = message.arrayCount ?? 0
            guard count > 0 else {
                return Self.errorLine(id: .null, error: .invalidRequest("empty batch"))
            }
            line.append(UInt8(ascii: "["))
            for index in 0 ..< count {
                if index > 0 { line.append(UInt8(ascii: ",")) }
                RPCEncoder.error(id: .null, error: .invalidRequest("a request must be an object"), into: &line)
            }
            line.append(UInt8(ascii: "]"))
        default:
            guard respond(to: message, context: context.request(tokens.first ?? nil), into: &line) else { return nil }
        }
        line.append(0x0A)
        return line
    }

    /// A complete error line (with LF).
    public static func errorLine(id: JSONValue, error: RPCError) -> [UInt8] {
        var line: [UInt8] = []
        RPCEncoder.error(id: id, error: error, into: &line)
        line.append(0x0A)
        return line
    }

    /// Answers an admitted message (see `intake`) straight into `sink`: like `reply(to:context:)` followed by
    /// `sink.write`, except that a single request whose result comes in parts (`RPCResult.parts`) is written part by
    /// part as it is printed (its text never exists whole). Its requests stop being in flight once this returns.
    public func send(_ admitted: AdmittedMessage, context: RPCContext, to sink: any LineSink) {
        // As with `reply(to:context:)`, the requests stop being in flight before the end of their reply goes out (a
        // ping sent on reading it must not count them).
        guard case .object = admitted.message, case .success(let request) = Self.validate(admitted.message) else {
            let line = reply(to: admitted.message, tokens: admitted.tokens, context: context)
            requests.finish(admitted)
            if let line { sink.write(line) }
            return
        }
        let outcome = self.outcome(of: request, context: context.request(admitted.tokens.first ?? nil))
        guard let id = request.id else {
            requests.finish(admitted)
            return
        }
        if case .success(.parts(let write)) = outcome {
            let threads = writerThreads
            var finished = false
            defer { if !finished { requests.finish(admitted) } }  // output closed: the parts were never asked for
            sink.writeLine { emit in
                // Small parts are gathered into ~1 MiB writes (the head goes out with the first of them); parts of
                // 256 KiB and up are written as they are.
                var pending: [UInt8] = []
                pending.reserveCapacity(Self.sendBatchBytes)
                RPCEncoder.result(id: id, into: &pending) { _ in }
                pending.removeLast()  // the closing brace, written after the result
                write({ part in
                    let direct = part.count >= Self.sendBatchBytes / 4
                    if !pending.isEmpty && (direct || pending.count + part.count > Self.sendBatchBytes) {
                        pending.withUnsafeBytes { emit($0) }
                        pending.removeAll(keepingCapacity: true)
                    }
                    if direct {
                        emit(part)
                    } else {
                        pending.append(contentsOf: part)
                    }
                }, threads)
                pending.append(UInt8(ascii: "}"))
                pending.append(0x0A)
                requests.finish(admitted)
                finished = true
                pending.withUnsafeBytes { emit($0) }
            }
            return
        }
        var line: [UInt8] = []
        encode(outcome, id: id, into: &line)
        line.append(0x0A)
        requests.finish(admitted)
        sink.write(line)
    }

    /// Bytes gathered before a write in `send(_:context:to:)`.
    static let sendBatchBytes = 1 << 20

    /// Validates one request object, runs it, and appends its response; false when there is nothing to send.
    private func respond(to message: JSONValue, context: RPCContext, into line: inout [UInt8]) -> Bool {
        let request: RPCRequest
        switch Self.validate(message) {
        case .failure(let failure):
            RPCEncoder.error(id: failure.id, error: failure.error, into: &line)
            return true
        case .success(let valid):
            request = valid
        }
        let outcome = self.outcome(of: request, context: context)
        guard let id = request.id else { return false }
        encode(outcome, id: id, into: &line)
        return true
    }

    /// Runs a validated request: its result, or the error that answers it.
    private func outcome(of request: RPCRequest, context: RPCContext) -> Result<RPCResult, RPCError> {
        do {
            return .success(try run(request, context: context))
        } catch let error as RPCError {
            return .failure(error)
        } catch {
            return .failure(.internalError(String(describing: error)))
        }
    }

    /// Appends the response for `outcome` (without LF).
    private func encode(_ outcome: Result<RPCResult, RPCError>, id: JSONValue, into line: inout [UInt8]) {
        switch outcome {
        case .success(.value(let result)):
            RPCEncoder.result(id: id, result: result, into: &line, threads: writerThreads)
        case .success(.text(let write)):
            let threads = writerThreads
            RPCEncoder.result(id: id, into: &line) { write(&$0, threads) }
        case .success(.parts(let write)):
            let threads = writerThreads
            RPCEncoder.result(id: id, into: &line) { buffer in write({ buffer.append(contentsOf: $0) }, threads) }
        case .failure(let error):
            RPCEncoder.error(id: id, error: error, into: &line)
        }
    }

    /// The protocol's own methods, then the handler's.
    private func run(_ request: RPCRequest, context: RPCContext) throws -> RPCResult {
        switch request.method {
        case RPCEncoder.cancelMethod:
            // A notification, as in LSP; a `$/` method sent as a request is not one the engine answers.
            guard request.isNotification else { throw RPCError.methodNotFound(request.method) }
            if case .object(let params)? = request.params, let id = params["id"], Self.isValidID(id) {
                requests.cancel(id: id)
            }
            return .value(.null)
        case RPCEncoder.pingMethod:
            if let issue = Self.pingParamsIssue(request.params) {
                throw RPCError.invalidParams("Invalid params: \(issue.message) (at \(issue.pointer))", issues: [issue])
            }
            return .value(.object(JSONObject([("in_flight", .exactInteger(requests.inFlight))])))
        default:
            return try handler.handle(request, context: context)
        }
    }

    /// The first member or element of `ping` params (it takes none), if there is one.
    static func pingParamsIssue(_ params: JSONValue?) -> PointerIssue? {
        switch params {
        case .object(let object)?:
            guard let first = object.members.first else { return nil }
            return PointerIssue(pointer: "/" + JSONPointerToken.escape(first.key), message: "unknown parameter (ping takes none)")
        case .array(let items)? where !items.isEmpty:
            return PointerIssue(pointer: "/0", message: "unexpected parameter (ping takes none)")
        case .numbers(let items)? where !items.isEmpty:
            return PointerIssue(pointer: "/0", message: "unexpected parameter (ping takes none)")
        case .rows?:
            return PointerIssue(pointer: "/0", message: "unexpected parameter (ping takes none)")
        default:
            return nil
        }
    }

    /// An id a request may carry: a string, null, or a number written as a JSON number (not the `NaN`, `Infinity`
    /// and `-Infinity` tokens the parser accepts as an extension, which could not be echoed as strict JSON).
    static func isValidID(_ id: JSONValue) -> Bool {
        switch id {
        case .string, .null: return true
        case .number(let number):
            if let literal = number.literal { return literal.utf8.last.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }
            return number.value.isFinite
        default: return false
        }
    }

    struct EnvelopeFailure: Error {
        var id: JSONValue
        var error: RPCError
    }

    /// The envelope rules: an object; `id`, when present, a string, finite number or null (`isValidID`); `jsonrpc` exactly "2.0";
    /// `method` a string; `params`, when present, an object or array. Invalid requests are answered even without
    /// an id (with id null), since they cannot be recognised as notifications.
    static func validate(_ message: JSONValue) -> Result<RPCRequest, EnvelopeFailure> {
        guard case .object(let object) = message else {
            return .failure(EnvelopeFailure(id: .null, error: .invalidRequest("a request must be an object")))
        }
        let id = object["id"]
        if let id, !isValidID(id) {
            return .failure(EnvelopeFailure(id: .null, error: .invalidRequest(#""id" must be a string, a finite number or null"#)))
        }
        let replyID = id ?? .null
        guard let version = object["jsonrpc"] else {
            return .failure(EnvelopeFailure(id: replyID, error: .invalidRequest(#"missing "jsonrpc": "2.0""#)))
        }
        guard case .string("2.0") = version else {
            return .failure(EnvelopeFailure(id: replyID, error: .invalidRequest(#""jsonrpc" must be exactly "2.0""#)))
        }
        guard let methodValue = object["method"] else {
            return .failure(EnvelopeFailure(id: replyID, error: .invalidRequest(#"missing "method""#)))
        }
        guard case .string(let method) = methodValue else {
            return .failure(EnvelopeFailure(id: replyID, error: .invalidRequest(#""method" must be a string"#)))
        }
        let params = object["params"]
        switch params {
        case nil, .object?, .array?, .numbers?, .rows?:
            break
        default:
            return .failure(EnvelopeFailure(id: replyID, error: .invalidRequest(#""params" must be an object or an array"#)))
        }
        return .success(RPCRequest(method: method, params: params, id: id))
    }
}
