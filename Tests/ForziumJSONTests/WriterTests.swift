import ForziumTesting
import ForziumJSON
import Testing

@Suite("Writer")
struct WriterTests {
    @Test("compact output of every kind of value")
    func compact() {
        let v: JSONValue = ["a": [1, 2.5, "x", nil, true, false], "b": [:], "c": [], "d": [[1, 2], [3, 4]]]
        #expect(JSONWriter.string(v) == #"{"a":[1.0,2.5,"x",null,true,false],"b":{},"c":[],"d":[[1.0,2.0],[3.0,4.0]]}"#)
    }

    @Test("doubles print like Swift's description")
    func doubles() {
        let cases: [(Double, String)] = [
            (2, "2.0"), (-0.0, "-0.0"), (0, "0.0"), (0.1, "0.1"), (1e-5, "1e-05"), (1e-4, "0.0001"),
            (1e16, "1e+16"), (9_007_199_254_740_992, "9007199254740992.0"), (9_007_199_254_740_994, "9.007199254740994e+15"),
            (.leastNonzeroMagnitude, "5e-324"), (1e-323, "1e-323"), (1.7976931348623157e308, "1.7976931348623157e+308"),
            (123.456, "123.456"), (-1.5e300, "-1.5e+300"), (100, "100.0"), (0.3, "0.3"), (2.5e-10, "2.5e-10"),
        ]
        for (value, text) in cases {
            #expect(written(value) == text)
        }
        #expect(written(.nan) == "null")
        #expect(written(.infinity) == "null")
        #expect(written(-.infinity) == "null")
        #expect(JSONWriter.string(.number(JSONNumber(.nan, literal: "NaN"))) == "null")
        #expect(JSONWriter.string(.numbers([1, .infinity, -.nan])) == "[1.0,null,null]")
    }

    @Test("string escaping per RFC 8259")
    func escaping() throws {
        #expect(JSONWriter.string("a\"b\\c/d") == #""a\"b\\c/d""#)
        #expect(JSONWriter.string("\n\r\t\u{8}\u{c}") == #""\n\r\t\b\f""#)
        #expect(JSONWriter.string("\u{0}\u{1}\u{1f}\u{7f}") == "\"\\u0000\\u0001\\u001f\u{7f}\"")
        #expect(JSONWriter.string("é€😀") == "\"é€😀\"")
        #expect(JSONWriter.string(["k\"ey": "v"]) == #"{"k\"ey":"v"}"#)
        // Every control character survives a write → parse round trip.
        let all = String(decoding: (0..<0x80).map { UInt8($0) }, as: UTF8.self)
        let text = JSONWriter.bytes(.string(all))
        #expect(try JSONParser().parse(text) == .string(all))
        #expect(!text.contains { $0 < 0x20 })
    }

    @Test("long number arrays cross the writer's chunk boundary intact")
    func longArray() throws {
        var rng = SplitMix64(seed: 7)
        let values = (0..<5000).map { _ in Double(bitPattern: rng.next()) }.filter(\.isFinite)
        let bytes = JSONWriter.bytes(.numbers(values))
        let back = try JSONParser().parse(bytes)
        let doubles = try #require(back.doublesValue)
        #expect(doubles.map(\.bitPattern) == values.map(\.bitPattern))
    }
}
