import ForziumJSON
import ForziumRPC
import Testing

@Suite("Request envelopes")
struct RPCEncoderTests {
    /// The head lent in pieces, completed with params and the tail, parses back to the same id, method and params.
    @Test(arguments: [0, 7, 42, 1_000_003, -5, Int.max, Int.min])
    func requestHeadRoundTrips(id: Int) throws {
        for method in ["compute", "engine.info", #"odd "name"\ with escapes"#, "é", ""] {
            var pieces: [UInt8] = []
            RPCEncoder.writeRequestHead(id: id, method: method) { pieces.append(contentsOf: $0) }
            var whole: [UInt8] = []
            RPCEncoder.requestHead(id: id, method: method, into: &whole)
            #expect(pieces == whole)
            let line = whole + Array(#"{"x":[1,2]}"#.utf8) + RPCEncoder.requestTail
            #expect(line.last == 0x0A)
            guard case .object(let envelope) = try JSONParser().parse(Array(line.dropLast())) else {
                Issue.record("not an object"); continue
            }
            #expect(envelope.keys == ["jsonrpc", "id", "method", "params"])
            #expect(envelope["jsonrpc"] == .string("2.0"))
            #expect(envelope["method"] == .string(method))
            #expect(String(decoding: whole, as: UTF8.self).hasPrefix(#"{"jsonrpc":"2.0","id":\#(id),"method":"#))
            #expect(envelope["params"] == .object(JSONObject([("x", .array([1, 2]))])))
        }
    }
}
