import ForziumJSON
import ForziumJansson
import Testing

/// Same value, same representation (`.numbers` vs `.array`), same number bits and literals, same member order.
func identical(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.null, .null): return true
    case (.bool(let x), .bool(let y)): return x == y
    case (.string(let x), .string(let y)): return x == y
    case (.number(let x), .number(let y)):
        return (x.value.bitPattern == y.value.bitPattern || (x.value.isNaN && y.value.isNaN)) && x.literal == y.literal
    case (.numbers(let x), .numbers(let y)):
        return x.count == y.count && zip(x, y).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
    case (.array(let x), .array(let y)):
        return x.count == y.count && zip(x, y).allSatisfy { identical($0, $1) }
    case (.object(let x), .object(let y)):
        return x.members.count == y.members.count
            && zip(x.members, y.members).allSatisfy { $0.key == $1.key && identical($0.value, $1.value) }
    default: return false
    }
}

func decode(_ decoder: JanssonHybridDecoder, _ bytes: [UInt8]) -> Result<JSONValue, JSONParseError> {
    bytes.withUnsafeBytes { raw in Result { () throws(JSONParseError) -> JSONValue in try decoder.decode(raw) } }
}

@Suite struct JanssonHybridDecoderTests {
    /// Every line goes through jansson (threshold above all of them) and must give JSONParser's exact value.
    static let janssonEverything = JanssonHybridDecoder(threshold: 1 << 30)

    static let validLines: [String] = [
        #"{"jsonrpc":"2.0","id":1,"method":"engine.info"}"#,
        #"{"jsonrpc":"2.0","id":"1","method":"multiply","params":{"data":[[1,2],[3,4]],"factor":2.5}}"#,
        #"{"jsonrpc":"2.0","id":1.50,"method":"x"}"#,
        #"{"jsonrpc":"2.0","id":-0,"method":"x","params":[-0,0,-0.0,1e2,1E-2,-12.5e+3]}"#,
        #"{"id":1e2,"a":[0,-0],"b":-0,"c":0}"#,
        #"{"big":12345678901234567890,"arr":[1,12345678901234567890]}"#,
        #"{"nan":NaN,"inf":[Infinity,-Infinity,1]}"#,
        #"{"dup":1,"dup":2,"x":{"dup":[1],"dup":"s"}}"#,
        #"{"s":"a\u0000b","k\u0000ey":true,"u":"\u00e9\ud83d\ude00 \"q\" \\ \/ \b\f\n\r\t","emoji":"😀"}"#,
        #"[]"#, #"{}"#, #"[[]]"#, #"[1,"a",null,true,false,[2,3],{"z":[4.5]}]"#,
        #"  [1, 2 ,3 ]  "#, #"42"#, #"-0"#, #""str""#, #"null"#, #"true"#, #"1.7976931348623157e308"#,
        #"[1e400,-1e400,4.9e-324,2.2250738585072014e-308,0.1,123456789012345678]"#,
        #"{"order":{"z":1,"a":2,"m":3,"b":[{"y":1,"x":2}]}}"#,
        #"[[0.5,-0.25],[1e-300,3]]"#,
        #"{"jsonrpc":"2.0","method":"notify","params":{"data":[[9007199254740993]]}}"#,
        String(repeating: "[", count: 300) + String(repeating: "]", count: 300),
    ]

    @Test("jansson path gives exactly JSONParser's value (representation, bits, literals, order)", arguments: validLines)
    func sameAsParser(line: String) throws {
        let bytes = Array(line.utf8)
        let want = try JSONParser().parse(bytes)
        let got = try decode(Self.janssonEverything, bytes).get()
        #expect(identical(got, want), "\(line)")
    }

    @Test("literals of scalar numbers are the input tokens (ids echo exactly)")
    func literals() throws {
        let value = try decode(Self.janssonEverything, Array(#"{"a":1.50,"b":-0,"c":1e2,"d":7,"e":[0.5,-3]}"#.utf8)).get()
        guard case .object(let object) = value else { Issue.record("not an object"); return }
        #expect(object["a"].flatMap { if case .number(let n) = $0 { n.literal } else { nil } } == "1.50")
        #expect(object["b"].flatMap { if case .number(let n) = $0 { n.literal } else { nil } } == "-0")
        #expect(object["c"].flatMap { if case .number(let n) = $0 { n.literal } else { nil } } == "1e2")
        #expect(object["d"].flatMap { if case .number(let n) = $0 { n.literal } else { nil } } == "7")
        if case .numbers(let values)? = object["e"] { #expect(values == [0.5, -3]) } else { Issue.record("e is not .numbers") }
    }

    @Test("nesting deeper than maxDepth is rejected as JSONParser rejects it")
    func depthLimit() {
        let line = Array((String(repeating: "[", count: 600) + String(repeating: "]", count: 600)).utf8)
        let want = line.withUnsafeBytes { raw in Result { () throws(JSONParseError) -> JSONValue in try JSONParser().parse(raw) } }
        let got = decode(Self.janssonEverything, line)
        guard case .failure(let wantError) = want, case .failure(let gotError) = got else {
            Issue.record("expected both to reject 600 levels")
            return
        }
        #expect(gotError == wantError)
    }

    static let invalidLines: [(String, [UInt8])] = [
        ("trailing comma", Array("[1,2,]".utf8)),
        ("unterminated", Array(#"{"a":"#.utf8)),
        ("leading zero", Array("[01]".utf8)),
        ("garbage after", Array("{} x".utf8)),
        ("empty", []),
        ("invalid UTF-8", [0x22, 0xC3, 0x28, 0x22]),
        ("lone surrogate", Array(#""\ud800""#.utf8)),
        ("control char", [0x22, 0x01, 0x22]),
        ("bare word", Array("nul".utf8)),
        ("second line", Array("[1,\n 2,\n ?]".utf8)),
    ]

    @Test("malformed lines are rejected with JSONParser's error (offset, line, column), as forzium-engine reports them",
          arguments: invalidLines.map(\.0))
    func rejects(name: String) {
        let bytes = Self.invalidLines.first { $0.0 == name }!.1
        let parserAlso = bytes.withUnsafeBytes { raw in Result { () throws(JSONParseError) -> JSONValue in try JSONParser().parse(raw) } }
        guard case .failure(let want) = parserAlso else { Issue.record("JSONParser accepted \(name)"); return }
        switch decode(Self.janssonEverything, bytes) {
        case .success(let value):
            Issue.record("accepted \(name): \(value)")
        case .failure(let error):
            #expect(error == want)
            if name == "second line" { #expect(error.line == 3) }
        }
    }

    /// jansson's lexer took a 0 byte right after a number or literal for the end of its unget buffer and skipped it.
    static let nulLines: [String] = [
        "{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"params\":{\"data\":[[1,2\u{0}]]},\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"params\":{\"data\":[[1,2\u{0}]]}}",
        "[true\u{0}]", "[null\u{0}]", "[false\u{0}]", "[1\u{0}]", "1\u{0}", "[1e5\u{0},2]", "{\"a\":1\u{0}}", "\u{0}[]", "[]\u{0}",
        "[12345678901234567890123\u{0}]",
    ]

    @Test("a raw NUL anywhere is rejected exactly as JSONParser rejects it", arguments: nulLines)
    func nulBytes(line: String) {
        let bytes = Array(line.utf8)
        let want = bytes.withUnsafeBytes { raw in Result { () throws(JSONParseError) -> JSONValue in try JSONParser().parse(raw) } }
        guard case .failure(let wantError) = want else { Issue.record("JSONParser accepted a NUL"); return }
        guard case .failure(let gotError) = decode(Self.janssonEverything, bytes) else {
            Issue.record("hybrid decoder accepted a line with a NUL byte")
            return
        }
        #expect(gotError == wantError)
    }

    @Test("lines at or above the threshold go to JSONParser (its error positions)")
    func longLinesUseParser() {
        let decoder = JanssonHybridDecoder(threshold: 8)
        let bytes = Array("[1,2,3,]".utf8)
        let want = bytes.withUnsafeBytes { raw in Result { () throws(JSONParseError) -> JSONValue in try JSONParser().parse(raw) } }
        guard case .failure(let wantError) = want, case .failure(let gotError) = decode(decoder, bytes) else {
            Issue.record("expected a failure")
            return
        }
        #expect(gotError == wantError)
        let ok = Array("[[1,2],[3,4]]".utf8)
        #expect((try? decode(decoder, ok).get()) == .array([.numbers([1, 2]), .numbers([3, 4])]))
    }

    @Test("random matrices decode identically through jansson")
    func randomMatrices() throws {
        var state: UInt64 = 99
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state }
        for rows in [1, 2, 7, 33] {
            var text = #"{"jsonrpc":"2.0","id":5,"method":"matmul","params":{"data":["#
            for i in 0 ..< rows {
                if i > 0 { text += "," }
                let row = (0 ..< 9).map { _ -> String in
                    let bits = next()
                    let d = Double(bitPattern: bits)
                    return d.isFinite ? "\(d)" : "\(Double(bits >> 11) * 0x1p-53)"
                }
                text += "[" + row.joined(separator: ",") + "]"
            }
            text += "]}}"
            let bytes = Array(text.utf8)
            #expect(identical(try decode(Self.janssonEverything, bytes).get(), try JSONParser().parse(bytes)))
        }
    }
}
