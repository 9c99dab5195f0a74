import ForziumJSON
import Testing

/// The one writer's options for documents (the gateway's answers and the OpenAPI document).
@Suite("Writer options")
struct WriterOptionsTests {
    let value: JSONValue = .object(JSONObject([
        ("count", .number(JSONNumber(3))),
        ("ratio", .number(JSONNumber(0.5))),
        ("literal", try! JSONParser().parse(Array("1.50".utf8))),
        ("empty", .array([])),
        ("none", .object(JSONObject([]))),
        ("row", .numbers([1, 2.5, .infinity])),
        ("nested", .array([.string("a\"b"), .null, .bool(true)])),
    ]))

    @Test func compactIsTheEnginesForm() {
        #expect(JSONWriter.string(value, options: .compact) == JSONWriter.string(value))
        #expect(JSONWriter.string(value) == #"{"count":3.0,"ratio":0.5,"literal":1.50,"empty":[],"none":{},"row":[1.0,2.5,null],"nested":["a\"b",null,true]}"#)
    }

    @Test func documentsWriteCountsAsIntegers() {
        #expect(JSONWriter.string(value, options: .document) == #"{"count":3,"ratio":0.5,"literal":1.50,"empty":[],"none":{},"row":[1,2.5,null],"nested":["a\"b",null,true]}"#)
        #expect(JSONWriter.string(.number(JSONNumber(-0.0)), options: .document) == "0")
        #expect(JSONWriter.string(.number(JSONNumber(1e15)), options: .document) == "1000000000000000.0")  // past 10^15: the usual form
    }

    @Test func prettyIndentsAndEndsWithANewline() throws {
        let text = JSONWriter.string(value, options: .pretty)
        #expect(text.hasPrefix("{\n  \"count\": 3,\n  \"ratio\": 0.5,"))
        #expect(text.contains("\"empty\": [],\n  \"none\": {},"))
        #expect(text.contains("\"nested\": [\n    \"a\\\"b\",\n    null,\n    true\n  ]\n}\n"))
        // Reads back as the same document.
        let back = try JSONParser().parse(Array(text.utf8))
        #expect(JSONWriter.string(back, options: .document) == JSONWriter.string(value, options: .document))
    }
}
