import ForziumJSON
import Testing
@testable import ForziumRPC

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A handler with a few methods that exercise every reply path.
struct TestHandler: RPCHandler {
    struct Boom: Error {}

    /// The parts the `parts` method emits: `[0,1,2,…]` cut at sizes 1, 3, 300 KB, 5, 2.2 MB, 700 KB, rest.
    static let parts: [[UInt8]] = {
        let text = Array(("[" + (0..<700_000).map(String.init).joined(separator: ",") + "]").utf8)
        var parts: [[UInt8]] = []
        var start = 0
        for size in [1, 3, 300_000, 5, 2_200_000, 700_000] {
            parts.append(Array(text[start..<(start + size)]))
            start += size
        }
        parts.append(Array(text[start...]))
        return parts
    }()

    func handle(_ request: RPCRequest, context: RPCContext) throws -> RPCResult {
        switch request.method {
        case "echo":
            return .value(request.params ?? .null)
        case "text":
            return .text { line, _ in line.append(contentsOf: "[1,2.5]".utf8) }
        case "parts":
            // One JSON array in parts of very different sizes (below and above the dispatcher's batching sizes).
            return .parts { emit, _ in
                for part in TestHandler.parts { part.withUnsafeBytes { emit($0) } }
            }
        case "wait_for_cancel":
            // Stands in for a long computation that checks for cancellation between blocks (gives up after 10 s).
            for _ in 0..<10_000 {
                if context.isCancelled { throw RPCError.requestCancelled }
                usleep(1_000)
            }
            return .value(.string("not cancelled"))
        case "bad_params":
            throw RPCError.invalidParams("Invalid params", issues: [PointerIssue(pointer: "/data/1", message: "row 1 has 3 elements, expected 2")])
        case "boom":
            throw Boom()
        case "announce":
            context.notify(method: "progress", params: .object(JSONObject([("step", .exactInteger(1))])))
            return .value(.string("done"))
        default:
            throw RPCError.methodNotFound(request.method)
        }
    }
}

/// Collects lines written (replies and notifications) in order.
final class MemorySink: LineSink, @unchecked Sendable {
    private let lock = ConditionLock()
    private var collected: [String] = []
    var isClosed: Bool { false }

    @discardableResult func write(_ line: [UInt8]) -> Bool {
        lock.withLock { collected.append(String(decoding: line, as: UTF8.self)) }
        return true
    }

    var lines: [String] { lock.withLock { collected } }
}

let dispatcher = RPCDispatcher(handler: TestHandler())

/// The reply text to `line` (without its LF), nil when none; notifications sent on the way go to `sink`.
/// Tests that count requests in flight pass a dispatcher of their own (the shared one serves tests running in parallel).
func reply(_ line: String, sink: MemorySink = MemorySink(), using own: RPCDispatcher = dispatcher) -> String? {
    let context = RPCContext(sink: { sink.write($0) })
    let bytes = Array(line.utf8)
    guard let out = bytes.withUnsafeBytes({ own.reply(to: $0, context: context) }) else { return nil }
    #expect(out.last == 0x0A)
    #expect(out.dropLast().contains(0x0A) == false)
    return String(decoding: out.dropLast(), as: UTF8.self)
}

func json(_ text: String) -> JSONValue {
    do { return try JSONParser().parse(text) } catch { fatalError("bad JSON in test: \(text)") }
}

func parsed(_ text: String?) throws -> JSONValue {
    try JSONParser().parse(try #require(text))
}

/// The error code of a single error reply.
func errorCode(_ value: JSONValue) -> Double? {
    guard case .object(let object) = value, case .object(let error)? = object["error"],
          case .number(let code)? = error["code"] else { return nil }
    return code.value
}

@Suite("JSON-RPC envelopes and batches")
struct RPCDispatcherTests {
    @Test("A result line is {jsonrpc, id, result} in that order, compact, with the id token kept")
    func resultLayout() {
        #expect(reply(#"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"a":[1.5,2]}}"#)
            == #"{"jsonrpc":"2.0","id":1,"result":{"a":[1.5,2.0]}}"#)
        #expect(reply(#"{"id":"1","method":"echo","params":[],"jsonrpc":"2.0"}"#)
            == #"{"jsonrpc":"2.0","id":"1","result":[]}"#)
    }

    @Test("Ids are echoed exactly as sent", arguments: ["1", "-0", "1.50", "1e400", "123456789012345678901234567890", "\"xé\"", "\"a\\\"b\"", "null", "\"\""])
    func idsEchoed(id: String) {
        #expect(reply(#"{"jsonrpc":"2.0","id":\#(id),"method":"echo"}"#) == #"{"jsonrpc":"2.0","id":\#(id),"result":null}"#)
    }

    @Test("A string id is echoed as the same string (escapes written canonically)")
    func stringIDEscapes() {
        #expect(reply(#"{"jsonrpc":"2.0","id":"x\u00e9","method":"echo"}"#) == #"{"jsonrpc":"2.0","id":"xé","result":null}"#)
    }

    @Test("Notifications get no reply, even on error")
    func notifications() {
        #expect(reply(#"{"jsonrpc":"2.0","method":"echo","params":[1]}"#) == nil)
        #expect(reply(#"{"jsonrpc":"2.0","method":"nope"}"#) == nil)
        #expect(reply(#"{"jsonrpc":"2.0","method":"bad_params","params":{}}"#) == nil)
        #expect(reply(#"{"jsonrpc":"2.0","method":"boom"}"#) == nil)
    }

    @Test("Invalid requests: -32600, id echoed when it is valid, else null", arguments: [
        (#"{"jsonrpc":"2.0","id":5}"#, "5"),
        (#"{"jsonrpc":"1.0","id":5,"method":"echo"}"#, "5"),
        (#"{"id":5,"method":"echo"}"#, "5"),
        (#"{"jsonrpc":2.0,"id":"a","method":"echo"}"#, "\"a\""),
        (#"{"jsonrpc":"2.0","id":5,"method":1}"#, "5"),
        (#"{"jsonrpc":"2.0","id":5,"method":"echo","params":3}"#, "5"),
        (#"{"jsonrpc":"2.0","id":5,"method":"echo","params":"x"}"#, "5"),
        (#"{"jsonrpc":"2.0","id":[1],"method":"echo"}"#, "null"),
        (#"{"jsonrpc":"2.0","id":{},"method":"echo"}"#, "null"),
        (#"{"jsonrpc":"2.0","id":true,"method":"echo"}"#, "null"),
        (#"{"jsonrpc":"2.0","method":1}"#, "null"),
        (#""just a string""#, "null"),
        ("42", "null"),
    ])
    func invalidRequests(line: String, id: String) throws {
        let text = try #require(reply(line))
        #expect(text.hasPrefix(#"{"jsonrpc":"2.0","id":\#(id),"error":{"code":-32600,"message":"#))
    }

    @Test("Parse errors: -32700 with id null, line and column in the message and data")
    func parseErrors() throws {
        let text = try #require(reply("{\"jsonrpc\":\"2.0\",\n\"id\":1,\"method\":}"))
        #expect(text.hasPrefix(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: "#))
        #expect(text.contains("line 2, column"))
        let value = try parsed(text)
        guard case .object(let object) = value, case .object(let error)? = object["error"],
              case .object(let data)? = error["data"], case .number(let line)? = data["line"] else {
            Issue.record("no data.line in \(text)")
            return
        }
        #expect(line.value == 2)
        #expect(text.contains(#""line":2,"#))
        #expect(errorCode(try parsed(reply("{")) ) == -32700)
        #expect(errorCode(try parsed(reply(#"{"jsonrpc":"2.0","id":1,"method":"echo"} x"#))) == -32700)
    }

    @Test("Invalid UTF-8 is a parse error")
    func invalidUTF8() throws {
        let sink = MemorySink()
        let context = RPCContext(sink: { sink.write($0) })
        var bytes = Array(#"{"jsonrpc":"2.0","id":1,"method":"echo","params":["#.utf8)
        bytes += [0x22, 0xC3, 0x28, 0x22, 0x5D, 0x7D]  // "\xC3(" then ]}
        let out = try #require(bytes.withUnsafeBytes { dispatcher.reply(to: $0, context: context) })
        #expect(errorCode(try JSONParser().parse(Array(out.dropLast()))) == -32700)
    }

    @Test("Method not found, invalid params with data.errors, internal error")
    func errors() throws {
        #expect(reply(#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#)
            == #"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found: nope"}}"#)
        #expect(reply(#"{"jsonrpc":"2.0","id":2,"method":"bad_params","params":{}}"#)
            == #"{"jsonrpc":"2.0","id":2,"error":{"code":-32602,"message":"Invalid params","data":{"errors":[{"pointer":"/data/1","message":"row 1 has 3 elements, expected 2"}]}}}"#)
        let internalError = try #require(reply(#"{"jsonrpc":"2.0","id":3,"method":"boom"}"#))
        #expect(internalError.hasPrefix(#"{"jsonrpc":"2.0","id":3,"error":{"code":-32603,"message":"Internal error: "#))
    }

    @Test("Batches: empty, invalid elements, all notifications, mixed")
    func batches() throws {
        #expect(reply("[]") == #"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: empty batch"}}"#)
        let two = try parsed(reply("[1,2]"))
        guard case .array(let replies) = two else { Issue.record("not an array: \(two)"); return }
        #expect(replies.count == 2)
        #expect(replies.allSatisfy { errorCode($0) == -32600 })
        #expect(reply(#"[{"jsonrpc":"2.0","method":"echo"},{"jsonrpc":"2.0","method":"nope"}]"#) == nil)
        #expect(reply(#"[{"jsonrpc":"2.0","id":1,"method":"echo","params":[1]},{"jsonrpc":"2.0","method":"echo"},{"foo":1},{"jsonrpc":"2.0","id":"b","method":"nope"}]"#)
            == #"[{"jsonrpc":"2.0","id":1,"result":[1.0]},{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: missing \"jsonrpc\": \"2.0\""}},{"jsonrpc":"2.0","id":"b","error":{"code":-32601,"message":"Method not found: nope"}}]"#)
        let nested = try parsed(reply("[[]]"))
        guard case .array(let inner) = nested else { Issue.record("not an array: \(nested)"); return }
        #expect(inner.count == 1 && errorCode(inner[0]) == -32600)
    }

    @Test("A result the handler writes itself goes between the envelope's members as it is")
    func textResult() {
        #expect(reply(#"{"jsonrpc":"2.0","id":3,"method":"text"}"#) == #"{"jsonrpc":"2.0","id":3,"result":[1,2.5]}"#)
        #expect(reply(#"[{"jsonrpc":"2.0","id":3,"method":"text"},{"jsonrpc":"2.0","id":4,"method":"text"}]"#)
            == #"[{"jsonrpc":"2.0","id":3,"result":[1,2.5]},{"jsonrpc":"2.0","id":4,"result":[1,2.5]}]"#)
    }

    @Test("An id written NaN, Infinity or -Infinity makes the request invalid (-32600, id null)", arguments: ["NaN", "Infinity", "-Infinity"])
    func nonFiniteIDs(id: String) throws {
        let text = try #require(reply(#"{"jsonrpc":"2.0","id":\#(id),"method":"echo"}"#))
        #expect(text == #"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: \"id\" must be a string, a finite number or null"}}"#)
    }

    @Test("ping answers {in_flight} and takes no params; $/cancelRequest is a notification")
    func controlMethods() throws {
        let own = RPCDispatcher(handler: TestHandler())
        func reply(_ line: String) -> String? { ForziumRPCTests.reply(line, using: own) }
        #expect(reply(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#) == #"{"jsonrpc":"2.0","id":1,"result":{"in_flight":0}}"#)
        #expect(reply(#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{}}"#) == #"{"jsonrpc":"2.0","id":1,"result":{"in_flight":0}}"#)
        #expect(reply(#"{"jsonrpc":"2.0","id":2,"method":"ping","params":{"a/b":1}}"#)
            == #"{"jsonrpc":"2.0","id":2,"error":{"code":-32602,"message":"Invalid params: unknown parameter (ping takes none) (at /a~1b)","data":{"errors":[{"pointer":"/a~1b","message":"unknown parameter (ping takes none)"}]}}}"#)
        #expect(reply(#"{"jsonrpc":"2.0","method":"ping"}"#) == nil)
        #expect(reply(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":12345}}"#) == nil)
        #expect(reply(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":NaN}}"#) == nil)
        #expect(reply(#"{"jsonrpc":"2.0","method":"$/cancelRequest"}"#) == nil)
        #expect(reply(#"{"jsonrpc":"2.0","id":3,"method":"$/cancelRequest","params":{"id":1}}"#)
            == #"{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"Method not found: $/cancelRequest"}}"#)
        // Inside a batch, ping counts the batch's own requests.
        #expect(reply(#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"echo"}]"#)
            == #"[{"jsonrpc":"2.0","id":1,"result":{"in_flight":2}},{"jsonrpc":"2.0","id":2,"result":null}]"#)
    }

    @Test("The registry tracks requests by JSON value while they are in flight, and forgets them after")
    func registry() {
        let registry = RequestRegistry()
        let first = registry.admit(json(#"{"jsonrpc":"2.0","id":7,"method":"x"}"#))
        let batch = registry.admit(json(#"[{"jsonrpc":"2.0","id":7.0,"method":"x"},{"jsonrpc":"2.0","method":"x"},{"jsonrpc":"2.0","id":"7","method":"x"},3]"#))
        #expect(registry.inFlight == 5)
        #expect(registry.trackedIDs == 2)
        #expect(registry.cancel(id: json("7e0")) == 2)
        #expect(first.tokens[0]?.isCancelled == true)
        #expect(batch.tokens[0]?.isCancelled == true)
        #expect(batch.tokens[1] == nil && batch.tokens[3] == nil)
        #expect(batch.tokens[2]?.isCancelled == false)
        registry.finish(first)
        registry.finish(batch)
        #expect(registry.inFlight == 0)
        #expect(registry.trackedIDs == 0)
        #expect(registry.cancel(id: json("7")) == 0)
    }

    @Test("A handler's notifications are written before its reply")
    func handlerNotifications() {
        let sink = MemorySink()
        #expect(reply(#"{"jsonrpc":"2.0","id":9,"method":"announce"}"#, sink: sink) == #"{"jsonrpc":"2.0","id":9,"result":"done"}"#)
        #expect(sink.lines == [#"{"jsonrpc":"2.0","method":"progress","params":{"step":1}}"# + "\n"])
    }
}

@Suite("Serve loop")
struct RPCServerTests {
    func serve(
        _ input: String, chunk: Int, concurrency: ServeConcurrency, maxLineBytes: Int = 1 << 20,
        dispatcher: RPCDispatcher = dispatcher, streamLinesFrom: Int? = nil
    ) -> (MemorySink, ServeSummary) {
        let sink = MemorySink()
        let reader = LineReader(
            source: ChunkedSource(input, chunk: chunk), maxLineBytes: maxLineBytes, initialCapacity: 8, streamLinesFrom: streamLinesFrom)
        let summary = RPCServer(dispatcher: dispatcher, concurrency: concurrency).serve(reader: reader, sink: sink)
        return (sink, summary)
    }

    /// A request that runs until it is cancelled, on a line long enough (padding) not to be answered inline.
    static func waitForCancel(id: Int) -> String {
        #"{"jsonrpc":"2.0","id":\#(id),"method":"wait_for_cancel"}"# + String(repeating: " ", count: RPCServer.defaultInlineBelow)
    }

    static let cancelModes: [ServeConcurrency] = [
        .ordered(maxInFlight: 4, inlineBelow: 0), .ordered(maxInFlight: 4), .concurrent(maxInFlight: 4, workers: 2, inlineBelow: 0),
    ]

    @Test("A cancel read while its request computes ends it with -32800; a ping is answered meanwhile; the next request is served", arguments: cancelModes)
    func cancelWhileComputing(mode: ServeConcurrency) {
        let fresh = RPCDispatcher(handler: TestHandler())
        let lines: [String] = [
            Self.waitForCancel(id: 1),
            #"{"jsonrpc":"2.0","id":"p","method":"ping"}"#,
            #"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":99}}"#,
            #"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}"#,
            #"{"jsonrpc":"2.0","id":2,"method":"echo"}"#,
        ]
        let input = lines.joined(separator: "\n") + "\n"
        let (sink, _) = serve(input, chunk: 4096, concurrency: mode, dispatcher: fresh)
        let replies = sink.lines
        #expect(replies.count == 3)
        #expect(replies.first == #"{"jsonrpc":"2.0","id":"p","result":{"in_flight":1}}"# + "\n")
        // In concurrent mode the echo may overtake the cancelled reply.
        #expect(Set(replies.dropFirst()) == [
            #"{"jsonrpc":"2.0","id":1,"error":{"code":-32800,"message":"Request cancelled"}}"# + "\n",
            #"{"jsonrpc":"2.0","id":2,"result":null}"# + "\n",
        ])
        #expect(fresh.requests.inFlight == 0)
        #expect(fresh.requests.trackedIDs == 0)
    }

    @Test("Ordered: a request queued behind a long one can be cancelled before it starts; errors keep request order")
    func cancelQueued() {
        let fresh = RPCDispatcher(handler: TestHandler())
        let lines: [String] = [
            Self.waitForCancel(id: 1), Self.waitForCancel(id: 2), "{",
            #"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":2}}"#,
            #"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}"#,
        ]
        let input = lines.joined(separator: "\n") + "\n"
        let (sink, _) = serve(input, chunk: 4096, concurrency: .ordered(maxInFlight: 4), dispatcher: fresh)
        let replies = sink.lines
        #expect(replies.count == 3)
        #expect(replies.first == #"{"jsonrpc":"2.0","id":1,"error":{"code":-32800,"message":"Request cancelled"}}"# + "\n")
        #expect(replies.dropFirst().first == #"{"jsonrpc":"2.0","id":2,"error":{"code":-32800,"message":"Request cancelled"}}"# + "\n")
        #expect(replies.last?.hasPrefix(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"#) == true)
        #expect(fresh.requests.inFlight == 0)
    }

    @Test("Ordered: byte-by-byte input, blank lines skipped, oversize answered, last line without LF answered")
    func sequential() {
        let input = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}\r\n\n   \n"
            + "[\"" + String(repeating: "a", count: 200) + "\"]\n"
            + "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\"}"
        let (sink, summary) = serve(input, chunk: 1, concurrency: .ordered(maxInFlight: 1), maxLineBytes: 100)
        #expect(sink.lines == [
            #"{"jsonrpc":"2.0","id":1,"result":null}"# + "\n",
            #"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: line of 204 bytes exceeds the limit of 100 bytes","data":{"limit":100,"length":204}}}"# + "\n",
            #"{"jsonrpc":"2.0","id":2,"result":null}"# + "\n",
        ])
        #expect(summary == ServeSummary(end: .endOfInput, lines: 2, oversizeLines: 1))
    }

    @Test("Long lines parsed as they arrive get the replies they get when buffered whole", arguments: [1, 13, 4096])
    func streamedLines(chunk: Int) {
        let matrix = "[" + (0..<40).map { r in "[" + (0..<30).map { "\(r * 30 + $0).5" }.joined(separator: ",") + "]" }.joined(separator: ",") + "]"
        let lines: [String] = [
            #"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"m":\#(matrix)}}"#,
            #"{"jsonrpc":"2.0","id":2,"method":"echo","params":{"m":\#(matrix)}"#,  // unterminated: -32700 at its end
            String(repeating: " ", count: 3000) + "\r",  // blank
            #"{"jsonrpc":"2.0","id":3,"method":"echo","params":[\#(matrix), "x"]} "# + String(repeating: "\t", count: 900),
            #"{"jsonrpc":"2.0","id":4,"method":"echo","params":{"m":\#(matrix)}} x"#,  // trailing garbage
            #"{"jsonrpc":"2.0","id":5,"method":"echo","params":{"m":\#(matrix)}}"# + String(repeating: " ", count: 9000),  // oversize
            matrix,  // a batch of arrays: each an invalid request
            #"{"jsonrpc":"2.0","id":6,"method":"text"}"# + String(repeating: " ", count: 2000),
            #"{"jsonrpc":"2.0","id":7,"method":"echo","params":{"m":\#(matrix)}}"#,
        ]
        let input = lines.joined(separator: "\n")
        let mode = ServeConcurrency.ordered(maxInFlight: 2, inlineBelow: 0)
        let (plain, plainSummary) = serve(input, chunk: chunk, concurrency: mode, maxLineBytes: 10_000, dispatcher: RPCDispatcher(handler: TestHandler()))
        let (streamed, streamedSummary) = serve(
            input, chunk: chunk, concurrency: mode, maxLineBytes: 10_000, dispatcher: RPCDispatcher(handler: TestHandler()), streamLinesFrom: 100)
        let same = streamed.lines == plain.lines  // (not printed whole when they differ: the lines are long)
        #expect(same, "first difference at reply \(Array(zip(streamed.lines, plain.lines)).firstIndex { $0 != $1 } ?? min(streamed.lines.count, plain.lines.count))")
        #expect(streamedSummary == plainSummary)
        #expect(plainSummary == ServeSummary(end: .endOfInput, lines: 7, oversizeLines: 1))
        #expect(plain.lines.count == 8)
        #expect(plain.lines.first?.hasPrefix(#"{"jsonrpc":"2.0","id":1,"result":{"m":[[0.5,1.5,"#) == true)
    }

    @Test("Concurrent: every request answered exactly once before serve returns")
    func concurrent() {
        var input = ""
        for id in 0..<500 { input += #"{"jsonrpc":"2.0","id":\#(id),"method":"echo","params":[\#(id)]}"# + "\n" }
        let (sink, summary) = serve(input, chunk: 997, concurrency: .concurrent(maxInFlight: 3, workers: 3, inlineBelow: 0))
        #expect(summary.lines == 500)
        let expected = Set((0..<500).map { #"{"jsonrpc":"2.0","id":\#($0),"result":[\#($0).0]}"# + "\n" })
        #expect(Set(sink.lines) == expected)
        #expect(sink.lines.count == 500)
    }

    @Test("Concurrent with short lines answered inline: all answered, none twice")
    func concurrentInline() {
        var input = ""
        for id in 0..<300 {
            let padding = id.isMultiple(of: 3) ? String(repeating: " ", count: 100) : ""
            input += #"{"jsonrpc":"2.0","id":\#(id),"method":"echo","params":[\#(id)]}\#(padding)"# + "\n"
        }
        let (sink, summary) = serve(input, chunk: 4096, concurrency: .concurrent(maxInFlight: 2, workers: 2, inlineBelow: 80))
        #expect(summary.lines == 300)
        #expect(Set(sink.lines) == Set((0..<300).map { #"{"jsonrpc":"2.0","id":\#($0),"result":[\#($0).0]}"# + "\n" }))
        #expect(sink.lines.count == 300)
    }
}

extension RPCServerTests {
    @Test func shortLinesNamingSharedMemoryAreNeverAnsweredInline() {
        func names(_ text: String) -> Bool { Array(text.utf8).withUnsafeBytes { RPCServer.matrixForm($0) } == .shared }
        #expect(names(#"{"params":{"data":{"dtype":"float64","shape":[2,2],"shm":"/forzium-1-2"}}}"#))
        #expect(!names(#"{"params":{"data":[[1,2]],"note":"shm"}}"#))
        #expect(!names(#"{"params":{"data":{"dtype":"float64","shape":[1,1],"base64":"AAAAAAAA8D8="}}}"#))
        #expect(names(#"{"params":{"data":[[1]],"$result":{"shm":"/forzium-1-3"}}}"#))
        #expect(names(#"{"shm":"#))
        #expect(!names(#"{"params":{"a":"shm","b":1},"x":"\"shm\""}"#))
        #expect(!names(#":"shm"#))
        #expect(!names(""))
    }

    @Test("a line's matrices: decimal text, base64 (a longer line may be answered inline), or shared memory (never)")
    func matrixForms() {
        func form(_ text: String) -> RPCServer.MatrixForm { Array(text.utf8).withUnsafeBytes { RPCServer.matrixForm($0) } }
        #expect(form(#"{"params":{"data":[[1,2]],"note":"base64"}}"#) == .text)
        #expect(form(#"{"params":{"data":{"dtype":"float64","shape":[1,1],"base64":"AAAAAAAA8D8="}}}"#) == .base64)
        #expect(form(#"{"params":{"data":{"dtype":"float64","shape":[1,1],"base64":"AAAAAAAA8D8="},"b":{"dtype":"float64","shape":[2,2],"shm":"/forzium-1-2"}}}"#) == .shared)
        #expect(form(#"{"params":{"b":{"shm":"/forzium-1-2"},"data":{"base64":"AAAAAAAA8D8="}}}"#) == .shared)
        #expect(form("") == .text)
        // The limit for a base64 line is base64InlineFactor × inlineBelow; a decimal line of the same length is handed over.
        #expect(RPCServer.base64InlineFactor * RPCServer.defaultInlineBelow == 8192)
    }

    @Test("Concurrent: a base64 line under the longer limit and a decimal one over the limit are both answered")
    func base64LinesInline() {
        let payload = "AAAAAAAA8D8="
        let padding = String(repeating: " ", count: 300)
        let input = [
            #"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"data":{"dtype":"float64","shape":[1,1],"base64":"\#(payload)"}}}\#(padding)"#,
            #"{"jsonrpc":"2.0","id":2,"method":"echo","params":[2]}\#(padding)"#,
        ].joined(separator: "\n") + "\n"
        let (sink, summary) = serve(input, chunk: 4096, concurrency: .concurrent(maxInFlight: 2, workers: 2, inlineBelow: 100))
        #expect(summary.lines == 2)
        #expect(sink.lines.count == 2)
        #expect(sink.lines.contains(#"{"jsonrpc":"2.0","id":2,"result":[2.0]}"# + "\n"))
    }
}


@Suite("Replies written in parts")
struct PartsReplyTests {
    static let expected = #"{"jsonrpc":"2.0","id":5,"result":"# + String(decoding: TestHandler.parts.joined(), as: UTF8.self) + "}"

    @Test("reply(to:) collects the parts into the line")
    func collected() {
        #expect(reply(#"{"jsonrpc":"2.0","id":5,"method":"parts"}"#) == Self.expected)
        // In a batch too.
        #expect(reply(#"[{"jsonrpc":"2.0","id":5,"method":"parts"},{"jsonrpc":"2.0","id":6,"method":"text"}]"#)
            == "[" + Self.expected + #",{"jsonrpc":"2.0","id":6,"result":[1,2.5]}]"#)
    }

    @Test("send(_:context:to:) writes the same line through a pipe, part by part, and other replies as whole lines")
    func sentThroughPipe() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let writer = LineWriter(descriptor: fds[1])
        let own = RPCDispatcher(handler: TestHandler())
        let context = RPCContext(sink: { writer.write($0) })
        let reading = ReadAll(descriptor: fds[0])
        for line in [#"{"jsonrpc":"2.0","id":5,"method":"parts"}"#, #"{"jsonrpc":"2.0","id":6,"method":"text"}"#,
                     #"{"jsonrpc":"2.0","method":"parts"}"#, #"[{"jsonrpc":"2.0","id":5,"method":"parts"}]"#] {
            guard case .message(let message) = Array(line.utf8).withUnsafeBytes({ own.decode($0) }),
                  case .admitted(let admitted) = own.intake(message, context: context) else {
                Issue.record("not admitted: \(line)")
                continue
            }
            own.send(admitted, context: context, to: writer)
        }
        close(fds[1])
        let lines = reading.wait().split(separator: 0x0A, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        close(fds[0])
        #expect(lines.count == 4)
        #expect(lines.first == Self.expected)
        #expect(lines.dropFirst().first == #"{"jsonrpc":"2.0","id":6,"result":[1,2.5]}"#)
        #expect(lines.dropFirst(2).first == "[" + Self.expected + "]")
        #expect(lines.last == "")
        #expect(own.requests.inFlight == 0)
    }
}

/// Reads a descriptor to its end on a thread of its own (so a writer never blocks on a full pipe).
final class ReadAll: @unchecked Sendable {
    private var bytes: [UInt8] = []
    private var thread = pthread_t()

    init(descriptor: Int32) {
        let box = Unmanaged.passRetained(Box(self, descriptor))
        pthread_create(&thread, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(box.descriptor, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                box.owner.bytes.append(contentsOf: chunk[0..<n])
            }
            return nil
        }, box.toOpaque())
    }

    func wait() -> [UInt8] {
        pthread_join(thread, nil)
        return bytes
    }

    private final class Box {
        let owner: ReadAll
        let descriptor: Int32
        init(_ owner: ReadAll, _ descriptor: Int32) {
            self.owner = owner
            self.descriptor = descriptor
        }
    }
}

/// Records each write call: how the serve loop groups replies into writes.
final class WriteCountingSink: LineSink, @unchecked Sendable {
    private let lock = ConditionLock()
    private var calls: [String] = []
    var isClosed: Bool { false }

    @discardableResult func write(_ line: [UInt8]) -> Bool {
        lock.withLock { calls.append(String(decoding: line, as: UTF8.self)) }
        return true
    }

    @discardableResult func write(lines: [UInt8]) -> Bool { write(lines) }

    var writes: [String] { lock.withLock { calls } }
}

@Suite("Serve loop: inline replies")
struct InlineBatchTests {
    func serve(_ lines: [String], chunk: Int, concurrency: ServeConcurrency) -> [String] {
        let sink = WriteCountingSink()
        let input = lines.joined(separator: "\n") + "\n"
        let reader = LineReader(source: ChunkedSource(input, chunk: chunk), maxLineBytes: 1 << 20, initialCapacity: 8)
        _ = RPCServer(dispatcher: RPCDispatcher(handler: TestHandler()), concurrency: concurrency).serve(reader: reader, sink: sink)
        return sink.writes
    }

    static let pings = (1...5).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"ping"}"# }

    @Test("Small requests read together are answered in one write, each reply a whole line, in order")
    func readTogetherWrittenTogether() {
        let writes = serve(Self.pings, chunk: 1 << 16, concurrency: .concurrent(maxInFlight: 4, workers: 2))
        #expect(writes.count == 1)
        let lines = writes.joined().split(separator: "\n").map(String.init)
        #expect(lines.count == 5)
        for (index, line) in lines.enumerated() { #expect(line.contains(#""id":\#(index + 1),"#)) }
    }

    @Test("A reply is never held while the reader would wait for input")
    func arrivingOneByOneWrittenOneByOne() {
        // One byte per read: no second line is ever buffered when a reply is ready, so each goes out at once.
        let writes = serve(Self.pings, chunk: 1, concurrency: .concurrent(maxInFlight: 4, workers: 2))
        #expect(writes.count == 5)
    }

    @Test("The ordered loop writes each reply as it goes")
    func orderedIsNotBatched() {
        let writes = serve(Self.pings, chunk: 1 << 16, concurrency: .ordered(maxInFlight: 4))
        #expect(writes.count == 5)
    }
}
