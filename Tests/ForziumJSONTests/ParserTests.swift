import ForziumJSON
import Testing

@Suite("Parser: accepted documents")
struct ParserAcceptTests {
    let parser = JSONParser()

    @Test("scalars at top level, with surrounding whitespace")
    func scalars() throws {
        #expect(try parser.parse("null") == .null)
        #expect(try parser.parse(" true ") == .bool(true))
        #expect(try parser.parse("\t\r\nfalse\n") == .bool(false))
        #expect(try parser.parse("\"hi\"") == .string("hi"))
        #expect(try parser.parse("-0") == .number(JSONNumber(-0.0)))
        #expect(try parser.parse("-0").doubleValue?.sign == .minus)
        #expect(try parser.parse("12.5e-1") == 1.25)
        #expect(try parser.parse("1E2") == 100)
        #expect(try parser.parse("1e+2") == 100)
        #expect(try parser.parse("0.0") == 0)
    }

    @Test("scalar numbers keep their literal text")
    func literals() throws {
        #expect(try parser.parse("1").numberValue?.literal == "1")
        #expect(try parser.parse(" 1.50e+3 ").numberValue?.literal == "1.50e+3")
        #expect(try parser.parse("{\"id\": -7}")["id"]?.numberValue?.literal == "-7")
        #expect(JSONWriter.string(try parser.parse("[\"a\", 1.0, 2e0]")) == "[\"a\",1.0,2e0]")
    }

    @Test("all-number arrays become .numbers, mixed arrays stay .array")
    func numberArrays() throws {
        let m = try parser.parse("[[1, 2], [3, 4.5]]")
        guard case .array(let rows) = m, case .numbers(let r0) = rows[0], case .numbers(let r1) = rows[1] else {
            Issue.record("expected an array of .numbers, got \(m)")
            return
        }
        #expect(r0 == [1, 2])
        #expect(r1 == [3, 4.5])
        let mixed = try parser.parse("[1, 2, \"x\", 3]")
        guard case .array(let items) = mixed else {
            Issue.record("expected .array")
            return
        }
        #expect(items == [.number(1), .number(2), .string("x"), .number(3)])
        // Numbers in a mixed array keep their literals too.
        #expect(items.map { $0.numberValue?.literal } == ["1", "2", nil, "3"])
        #expect(JSONWriter.string(try parser.parse("[1, 2e0, \"x\", 3.50]")) == "[1,2e0,\"x\",3.50]")
        #expect(try parser.parse("[]") == .array([]))
        #expect(try parser.parse("[ ]").arrayCount == 0)
        #expect(try parser.parse("[NaN, Infinity, -Infinity]").doublesValue?.map(\.isFinite) == [false, false, false])
    }

    @Test("number runs longer than the parser's batch (64 values) keep every value, in rows too, and their errors")
    func numberRunsAcrossBatches() throws {
        var options = JSONParser.Options()
        options.contiguousRows = true
        let rows = JSONParser(options: options)
        for count in [1, 63, 64, 65, 127, 128, 129, 200] {
            let values = (0..<count).map { Double($0) * (($0 & 1) == 0 ? 1.5 : -0.25) }
            let numbers = values.map { "\($0)" }.joined(separator: ",")
            #expect(try parser.parse("[\(numbers)]").doublesValue == values, "\(count) values")
            // Three rows of them, read into one contiguous buffer.
            guard case .rows(let matrix) = try rows.parse("[[\(numbers)],[\(numbers)],[\(numbers)]]") else {
                Issue.record("\(count) columns: not parsed as rows")
                continue
            }
            #expect(matrix.rows == 3 && matrix.cols == count && matrix.storage == values + values + values, "\(count) columns")
            // A string past the batch: the array is read again as general values, every number kept.
            let mixed = try parser.parse("[\(numbers),\"x\"]")
            #expect(mixed.arrayCount == count + 1)
            #expect(mixed[count] == .string("x"))
            #expect(mixed[count - 1]?.doubleValue == values[count - 1])
            // A bad token past the batch: the error is at its byte (the 'e' after "1.").
            let bad = "[\(numbers),1.e5]"
            do {
                _ = try parser.parse(bad)
                Issue.record("\(count): accepted a bad number")
            } catch {
                #expect(error.offset == bad.utf8.count - 3, "\(count): \(error)")
            }
        }
    }

    @Test("objects keep order and duplicates; lookups see the last")
    func objects() throws {
        let v = try parser.parse("{\"b\": 1, \"a\": [true, null], \"b\": 2}")
        #expect(v.objectValue?.keys == ["b", "a", "b"])
        #expect(v["b"] == 2)
        #expect(v["a"] == [true, nil])
        #expect(try parser.parse("{}") == .object(JSONObject()))
    }

    @Test("string escapes, including surrogate pairs")
    func escapes() throws {
        #expect(try parser.parse(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{8}\u{c}\n\r\t"))
        #expect(try parser.parse(#""\u0041\u00e9\u20AC""#) == .string("Aé€"))
        #expect(try parser.parse(#""\uD83D\uDE00""#) == .string("😀"))
        #expect(try parser.parse(#""\u0000""#) == .string("\u{0}"))
        #expect(try parser.parse("\"é€😀\"") == .string("é€😀"))
        #expect(try parser.parse(#""x\ud834\udd1ey""#) == .string("x𝄞y"))
    }

    @Test("nesting up to the depth limit is accepted")
    func depthLimit() throws {
        var options = JSONParser.Options()
        options.maxDepth = 8
        let ok = String(repeating: "[", count: 8) + String(repeating: "]", count: 8)
        #expect(try JSONParser(options: options).parse(ok).arrayCount == 1)
        let deep = String(repeating: "[", count: 9) + String(repeating: "]", count: 9)
        let error = parseError(deep, options: options)
        #expect(error?.offset == 8)
        #expect(error?.message.contains("nesting") == true)
        let defaultDeep = String(repeating: "{\"a\":", count: 513) + "1" + String(repeating: "}", count: 513)
        #expect(parseError(defaultDeep) != nil)
        let defaultOK = String(repeating: "{\"a\":", count: 512) + "1" + String(repeating: "}", count: 512)
        #expect(parseError(defaultOK) == nil)
    }

    @Test("deeply nested input beyond the limit fails cleanly, without recursion trouble")
    func veryDeep() {
        let deep = String(repeating: "[", count: 100_000)
        #expect(parseError(deep)?.offset == 512)
    }

    @Test(
        "RFC 8259 grammar corners are accepted, and write → parse is stable",
        arguments: [
            "[1e1]", "[-0]", "[-0.0e-0]", "[0e+1]", "[0E-1]", "[1E22]", "[123e65]", "[1.5e-10]", "[-123]",
            "[[] ]", "[\"\"]", "{\"\":0}", "{\"a\":[]}", " [] ", "[\"\\u0000\"]", "[\"\\uDBFF\\uDFFF\"]",
            "[\"\\uFFFF\"]", "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]", "[\"\u{7F}\"]", "[\"\u{10FFFF}\"]",
            "{\"a\":{\"b\":{\"c\":[1,{\"d\":null}]}}}", "[1,\"a\",true,false,null,{},[]]", "[[1,2],[3,\"x\"],[]]",
            "{\"a\":1,\"a\":2}", "\n\r\t 7 \n", "[1 , 2\t,\n3\r]", "\"\u{1F600}\"", "123456789012345678901234567890",
            "[0.000000000000000000000000000001]", "[1e-400, -1e-400]",
        ])
    func rfcCorners(_ text: String) throws {
        let first = try parser.parse(text)
        let written = JSONWriter.bytes(first)
        let second = try parser.parse(written)
        #expect(first == second)
        #expect(JSONWriter.bytes(second) == written)
    }

    @Test("parse from raw bytes and from String agree")
    func inputForms() throws {
        let text = "{\"k\": [1, 2.5, \"s\"]}"
        let fromString = try parser.parse(text)
        let fromBytes = try parser.parse(Array(text.utf8))
        let fromRaw = try Array(text.utf8).withUnsafeBytes { raw in try parser.parse(raw) }
        #expect(fromString == fromBytes)
        #expect(fromBytes == fromRaw)
        let framed = Array("xx\(text)yy".utf8)
        #expect(try parser.parse(framed[2..<(framed.count - 2)]) == fromString)
        let fromTyped = try framed.withUnsafeBufferPointer { try parser.parse(UnsafeBufferPointer(rebasing: $0[2..<(framed.count - 2)])) }
        #expect(fromTyped == fromString)
        // Error offsets count from the start of the slice.
        let bad = Array("{\"a\":1} [1,]".utf8)
        #expect(parseErrorOffset { () throws(JSONParseError) -> JSONValue in try parser.parse(bad[8...]) } == 3)
    }
}

@Suite("Parser: rejected documents")
struct ParserRejectTests {
    @Test(
        "invalid JSON is rejected",
        arguments: [
            "", " ", "nul", "truex", "True", "[1,]", "[1 2]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{\"a\":}",
            "[", "]", "{", "}", "[1", "{\"a\":1", "\"abc", "'a'", "01", "-01", "00", "1.", ".5", "+1", "-",
            "1e", "1e+", "1.e3", "--1", "0x10", "1 2", "[1] x", "{} {}", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"",
            "[,1]", "[1,,2]", "-Infinity1", "nan", "infinity", "-NaN", "\u{FEFF}1", "[\"a\"\"b\"]", "Infinit",
        ])
    func rejected(_ text: String) {
        #expect(parseError(text) != nil, "accepted \(text.debugDescription)")
    }

    @Test("error positions: offset, 1-based line and byte column")
    func positions() {
        let e1 = parseError("[1,\n  2,\n  x]")
        #expect(e1?.offset == 11)
        #expect(e1?.line == 3)
        #expect(e1?.column == 3)
        let e2 = parseError("{\"a\": 01}")
        #expect(e2?.offset == 6)
        #expect(e2?.line == 1)
        #expect(e2?.column == 7)
        let e3 = parseError("[1.]")
        #expect(e3?.offset == 3)
        let e4 = parseError("{\"a\":1} x")
        #expect(e4?.offset == 8)
        #expect(e4?.message.contains("after the JSON value") == true)
        let e5 = parseError("[1, 2")
        #expect(e5?.offset == 5)
        #expect(e5?.message.contains("end of input") == true)
        let e6 = parseError("\"ab\ncd\"")
        #expect(e6?.offset == 3)
        #expect(e6?.message.contains("control character") == true)
        let e7 = parseError("\r\n\r\n  [1,]")
        #expect(e7?.line == 3)
        #expect(e7?.column == 6)
        let e8 = parseError("[1,]")
        #expect(e8?.message.contains("trailing comma") == true)
    }

    @Test("control characters must be escaped in strings", arguments: Array(0..<0x20))
    func controlCharacters(_ byte: Int) {
        let bytes: [UInt8] = [0x22, 0x61, UInt8(byte), 0x22]
        #expect(parseError(bytes: bytes)?.offset == 2)
    }

    @Test("lone or misordered surrogate escapes are rejected")
    func surrogates() {
        #expect(parseError(#""\uD800""#)?.offset == 1)
        #expect(parseError(#""\uD800x""#)?.offset == 1)
        #expect(parseError(#""\uD800\n""#)?.offset == 1)
        #expect(parseError(#""\uDC00""#)?.offset == 1)
        #expect(parseError(#""\uDC00\uD800""#)?.offset == 1)
        #expect(parseError(#""\uD800\uD800""#)?.offset == 7)
        #expect(parseError(#""ab\uD83D\u0041""#)?.offset == 9)
    }

    @Test("invalid UTF-8 is rejected wherever it is")
    func invalidUTF8() throws {
        let cases: [([UInt8], Int)] = [
            ([0x22, 0x80, 0x22], 1),  // lone continuation byte
            ([0x22, 0xC0, 0xAF, 0x22], 1),  // overlong '/'
            ([0x22, 0xC1, 0xBF, 0x22], 1),  // overlong
            ([0x22, 0xE0, 0x80, 0xAF, 0x22], 1),  // overlong 3-byte
            ([0x22, 0xF0, 0x80, 0x80, 0xAF, 0x22], 1),  // overlong 4-byte
            ([0x22, 0xED, 0xA0, 0x80, 0x22], 1),  // UTF-8-encoded surrogate U+D800
            ([0x22, 0xED, 0xBF, 0xBF, 0x22], 1),  // U+DFFF
            ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], 1),  // above U+10FFFF
            ([0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], 1),  // never valid lead byte
            ([0x22, 0xFF, 0x22], 1),
            ([0x22, 0x61, 0xC3, 0x22], 2),  // truncated
            ([0x22, 0xE2, 0x82, 0x22], 1),  // truncated 3-byte
            ([0x22, 0xE2, 0x82], 1),  // truncated at end of input
            ([0x5B, 0xC3, 0xA9, 0x5D], 1),  // valid UTF-8 but not a JSON token
            ([0x7B, 0x22, 0x6B, 0xFE, 0x22, 0x3A, 0x31, 0x7D], 3),  // in a key
        ]
        for (bytes, offset) in cases {
            let error = parseError(bytes: bytes)
            #expect(error?.offset == offset, "bytes \(bytes)")
        }
        // The boundaries of each valid range are accepted.
        let valid: [[UInt8]] = [
            [0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF], [0xEE, 0x80, 0x80],
            [0xEF, 0xBF, 0xBF], [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF],
        ]
        for sequence in valid {
            let bytes = [0x22] + sequence + [0x22]
            #expect(parseError(bytes: bytes) == nil, "bytes \(sequence)")
            #expect(try JSONParser().parse(bytes).stringValue?.utf8.elementsEqual(sequence) == true)
        }
    }

    @Test("NaN and Infinity are an extension that can be turned off")
    func nonFinite() throws {
        let v = try JSONParser().parse("[NaN, -Infinity, Infinity, 1]")
        let d = try #require(v.doublesValue)
        #expect(d[0].isNaN)
        #expect(d[1] == -.infinity)
        #expect(d[2] == .infinity)
        #expect(try JSONParser().parse("{\"x\": NaN}")["x"]?.doubleValue?.isNaN == true)
        var strict = JSONParser.Options()
        strict.allowNonFiniteNumbers = false
        #expect(parseError("NaN", options: strict)?.offset == 0)
        #expect(parseError("[1, Infinity]", options: strict)?.offset == 4)
        #expect(parseError("-Infinity", options: strict)?.offset == 1)
        // Written back, they are null.
        #expect(JSONWriter.string(v) == "[null,null,null,1.0]")
    }

    @Test("huge exponents saturate instead of failing; tiny ones underflow")
    func extremeExponents() throws {
        #expect(try JSONParser().parse("1e400").doubleValue == .infinity)
        #expect(try JSONParser().parse("-1e99999999999999999999").doubleValue == -.infinity)
        #expect(try JSONParser().parse("1e-400").doubleValue == 0)
        #expect(try JSONParser().parse("0e999999").doubleValue == 0)
        #expect(try JSONParser().parse("4.9e-324").doubleValue == 5e-324)
        #expect(try JSONParser().parse("2.4703282292062328e-324").doubleValue == 5e-324)
        #expect(try JSONParser().parse("2.4703282292062327e-324").doubleValue == 0)
        #expect(try JSONParser().parse("1.7976931348623158e308").doubleValue == .greatestFiniteMagnitude)
        #expect(try JSONParser().parse("1.7976931348623159e308").doubleValue == .infinity)
    }
}
