import ForziumJSON

/// Turns one request line into its reply line, per JSON-RPC 2.0: envelope checks, batches, notifications,
/// error objects. Pure apart from what the handler does, so it is testable in-process.
public struct RPCDispatcher: Sendable {
    /// Answers the validated requests.
    public let handler: any RPCHandler
    /// Parses each line.
    public let decoder: any MessageDecoder
    /// Threads that may format one large result (the codec splits big matrices by rows); 1 keeps it on the caller.
    public let writerThreads: Int

    public init(handler: any RPCHandler, decoder: any MessageDecoder = JSONParserDecoder(), writerThreads: Int = 1) {
        self.handler = handler
        self.decoder = decoder
        self.writerThreads = max(1, writerThreads)
    }

    /// The reply to one line (terminated by LF), or nil when nothing is to be sent (notifications only).
    /// Notifications the handler sends go to `context` as they happen, before this returns.
    public func reply(to line: UnsafeRawBufferPointer, context: RPCContext) -> [UInt8]? {
        switch decode(line) {
        case .message(let message): return reply(to: message, context: context)
        case .rejected(let errorLine): return errorLine
        }
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

    /// The reply to an already-decoded message (a request object or a batch).
    public func reply(to message: JSONValue, context: RPCContext) -> [UInt8]? {
        var line: [UInt8] = []
        switch message {
        case .array(let elements):
            guard !elements.isEmpty else {
                return Self.errorLine(id: .null, error: .invalidRequest("empty batch"))
            }
            var wroteAny = false
            line.append(UInt8(ascii: "["))
            for element in elements {
                let mark = line.count
                if wroteAny { line.append(UInt8(ascii: ",")) }
                if respond(to: element, context: context, into: &line) {
                    wroteAny = true
                } else {
                    line.removeSubrange(mark...)
                }
            }
            guard wroteAny else { return nil }
            line.append(UInt8(ascii: "]"))
        case .numbers(let numbers):
            // A batch of bare numbers: each element is an invalid request.
            guard !numbers.isEmpty else {
                return Self.errorLine(id: .null, error: .invalidRequest("empty batch"))
            }
            line.append(UInt8(ascii: "["))
            for index in numbers.indices {
                if index > 0 { line.append(UInt8(ascii: ",")) }
                RPCEncoder.error(id: .null, error: .invalidRequest("a request must be an object"), into: &line)
            }
            line.append(UInt8(ascii: "]"))
        default:
            guard respond(to: message, context: context, into: &line) else { return nil }
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
        let outcome: Result<JSONValue, RPCError>
        do {
            outcome = .success(try handler.handle(request, context: context))
        } catch let error as RPCError {
            outcome = .failure(error)
        } catch {
            outcome = .failure(.internalError(String(describing: error)))
        }
        guard let id = request.id else { return false }
        switch outcome {
        case .success(let result): RPCEncoder.result(id: id, result: result, into: &line, threads: writerThreads)
        case .failure(let error): RPCEncoder.error(id: id, error: error, into: &line)
        }
        return true
    }

    struct EnvelopeFailure: Error {
        var id: JSONValue
        var error: RPCError
    }

    /// The envelope rules: an object; `id`, when present, a string, number or null; `jsonrpc` exactly "2.0";
    /// `method` a string; `params`, when present, an object or array. Invalid requests are answered even without
    /// an id (with id null), since they cannot be recognised as notifications.
    static func validate(_ message: JSONValue) -> Result<RPCRequest, EnvelopeFailure> {
        guard case .object(let object) = message else {
            return .failure(EnvelopeFailure(id: .null, error: .invalidRequest("a request must be an object")))
        }
        let id = object["id"]
        switch id {
        case nil, .string?, .number?, .null?:
            break
        default:
            return .failure(EnvelopeFailure(id: .null, error: .invalidRequest(#""id" must be a string, a number or null"#)))
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
        case nil, .object?, .array?, .numbers?:
            break
        default:
            return .failure(EnvelopeFailure(id: replyID, error: .invalidRequest(#""params" must be an object or an array"#)))
        }
        return .success(RPCRequest(method: method, params: params, id: id))
    }
}
