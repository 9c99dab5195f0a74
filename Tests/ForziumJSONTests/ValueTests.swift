import ForziumJSON
import Testing

@Suite("JSONValue model")
struct ValueTests {
    @Test("numbers compare by value; .numbers equals the .array of .number")
    func equality() {
        #expect(JSONValue.numbers([1, 2]) == .array([.number(1), .number(2)]))
        #expect(JSONValue.array([.number(1), .number(2)]) == .numbers([1, 2]))
        #expect(JSONValue.numbers([1, 2]) != .array([.number(1), .string("2")]))
        #expect(JSONValue.numbers([1, 2]) != .numbers([1, 2, 3]))
        #expect(JSONValue.number(JSONNumber(1, literal: "1")) == .number(JSONNumber(1.0, literal: "1.0")))
        #expect(JSONValue.number(JSONNumber(0.0)) == .number(JSONNumber(-0.0)))
        #expect(JSONValue(Double.nan) == JSONValue(Double.nan))
        #expect(JSONValue.null != .bool(false))
        #expect(JSONValue.string("1") != .number(1))
    }

    @Test("objects compare as unordered key sets, last duplicate wins")
    func objectEquality() {
        let a: JSONValue = ["x": 1, "y": [1, 2]]
        let b: JSONValue = ["y": .array([.number(1), .number(2)]), "x": 1.0]
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        let dup = JSONValue.object(JSONObject([(key: "x", value: 5), (key: "y", value: [1, 2]), (key: "x", value: 1)]))
        #expect(dup == a)
        #expect(dup.hashValue == a.hashValue)
        #expect(a != ["x": 1])
        #expect(a != ["x": 1, "y": [1, 2], "z": nil])
    }

    @Test("equal values hash equally across representations")
    func hashing() {
        let set: Set<JSONValue> = [.numbers([1, 2]), .array([.number(1), .number(2)]), .number(JSONNumber(-0.0)), 0]
        #expect(set.count == 2)
    }

    @Test("accessors")
    func accessors() throws {
        let v = try JSONParser().parse(#"{"m": [[1, 2], [3, 4]], "s": "t", "n": 2.0, "b": true, "z": null, "a": [1, "x"]}"#)
        #expect(v["m"]?.arrayCount == 2)
        #expect(v["m"]?[1]?[0]?.doubleValue == 3)
        #expect(v["m"]?[1]?[5] == nil)
        #expect(v["m"]?.elements?.map { $0.arrayCount } == [2, 2])
        #expect(v["m"]?[0]?.elements?.compactMap(\.doubleValue) == [1, 2])
        #expect(v["s"]?.stringValue == "t")
        #expect(v["n"]?.intValue == 2)
        #expect(v["n"]?.doubleValue == 2)
        #expect(v["b"]?.boolValue == true)
        #expect(v["z"]?.isNull == true)
        #expect(v["missing"] == nil)
        #expect(v["a"]?.doublesValue == nil)
        #expect(v["a"]?.arrayValue?.count == 2)
        #expect(v["m"]?[0]?.arrayValue == [.number(1), .number(2)])
        #expect(v.objectValue?.count == 6)
        #expect(v["s"]?["x"] == nil)
        #expect(v["s"]?.typeName == "string")
        #expect(v["m"]?[0]?.typeName == "array")
        #expect(JSONValue.number(2.5).intValue == nil)
    }

    @Test("literals build the same values the parser does")
    func literals() throws {
        let v: JSONValue = ["a": [1, 2], "b": nil, "c": "x", "d": [true, 1]]
        #expect(v == (try JSONParser().parse(#"{"d": [true, 1], "c": "x", "b": null, "a": [1, 2]}"#)))
        if case .numbers = v["a"] {} else { Issue.record("an all-number literal should be .numbers") }
        #expect(v.description == #"{"a":[1.0,2.0],"b":null,"c":"x","d":[true,1.0]}"#)
    }
}
