import ForziumJSON
import Testing
@testable import ForziumSchema

/// What callers see: instance pointers, keyword locations, messages, and schema errors.
struct ValidationIssueTests {
    static let matrix = """
        {"$id": "https://forzium.dev/schemas/defs/matrix.json",
         "type": "array", "minItems": 1,
         "items": {"type": "array", "minItems": 1, "items": {"type": "number"}}}
        """
    static let params = """
        {"$id": "https://forzium.dev/schemas/methods/multiply.params.json",
         "type": "object",
         "properties": {
            "data": {"$ref": "../defs/matrix.json"},
            "factor": {"type": "number", "default": 1},
            "mode": {"enum": ["minmax", "l2"]},
            "axis": {"oneOf": [{"type": "null"}, {"enum": [0, 1]}]},
            "name": {"type": "string", "minLength": 2, "pattern": "^[a-z]+$"}
         },
         "required": ["data"],
         "additionalProperties": false}
        """
    static let paramsURI = "https://forzium.dev/schemas/methods/multiply.params.json"

    func registry() throws -> SchemaRegistry {
        var registry = SchemaRegistry()
        try registry.add(JSONParser().parse(Self.matrix), uri: "https://forzium.dev/schemas/defs/matrix.json")
        try registry.add(JSONParser().parse(Self.params), uri: Self.paramsURI)
        return registry
    }

    func issues(_ json: String) throws -> [ValidationIssue] {
        try registry().validate(JSONParser().parse(json), against: Self.paramsURI)
    }

    @Test func validInstanceHasNoIssues() throws {
        #expect(try issues(#"{"data": [[1, 2], [3, 4.5]], "factor": 2, "axis": null, "mode": "l2"}"#) == [])
    }

    @Test func wrongTypeInsideAReferencedMatrix() throws {
        let found = try issues(#"{"data": [[1, 2], [3, "x"]]}"#)
        #expect(found == [ValidationIssue(instancePointer: "/data/1/1",
                                          keywordLocation: "/properties/data/$ref/items/items/type",
                                          message: "expected number, got string")])
    }

    @Test func missingRequiredAndUnknownProperty() throws {
        let found = try issues(#"{"factor": "2", "extra": true}"#)
        #expect(found.contains(ValidationIssue(instancePointer: "", keywordLocation: "/required",
                                               message: "missing required property \"data\"")))
        #expect(found.contains(ValidationIssue(instancePointer: "/factor", keywordLocation: "/properties/factor/type",
                                               message: "expected number, got string")))
        #expect(found.contains(ValidationIssue(instancePointer: "/extra", keywordLocation: "/additionalProperties",
                                               message: "property \"extra\" is not allowed")))
        #expect(found.count == 3)
    }

    @Test func emptyMatrixAndRaggedTypes() throws {
        #expect(try issues(#"{"data": []}"#) == [
            ValidationIssue(instancePointer: "/data", keywordLocation: "/properties/data/$ref/minItems",
                            message: "must have at least 1 item, got 0"),
        ])
        #expect(try issues(#"{"data": [[1], 2]}"#) == [
            ValidationIssue(instancePointer: "/data/1", keywordLocation: "/properties/data/$ref/items/type",
                            message: "expected array, got integer"),
        ])
    }

    @Test func enumOneOfAndStringMessages() throws {
        let mode = try issues(#"{"data": [[1]], "mode": "max"}"#)
        #expect(mode == [ValidationIssue(instancePointer: "/mode", keywordLocation: "/properties/mode/enum",
                                         message: "\"max\" is not one of the allowed values: \"minmax\", \"l2\"")])
        let axis = try issues(#"{"data": [[1]], "axis": 2}"#)
        #expect(axis.last == ValidationIssue(instancePointer: "/axis", keywordLocation: "/properties/axis/oneOf",
                                             message: "must match exactly one of the 2 oneOf alternatives, matched none"))
        #expect(axis.contains { $0.keywordLocation == "/properties/axis/oneOf/0/type" && $0.message == "expected null, got integer" })
        let name = try issues(#"{"data": [[1]], "name": "A"}"#)
        #expect(name.map(\.message) == ["must be at least 2 characters long, got 1",
                                        "\"A\" does not match the pattern \"^[a-z]+$\""])
    }

    @Test func numbersFastPathReportsTheFailingElement() throws {
        var registry = SchemaRegistry()
        try registry.add(JSONParser().parse(#"{"items": {"type": "integer", "minimum": 0}}"#), uri: "https://example.test/nonneg.json")
        let validator = try registry.validator(for: "https://example.test/nonneg.json")
        #expect(validator.root.keywords.contains { if case .items(let node, _) = $0.keyword { node.numberCheck != nil } else { false } })
        #expect(validator.validate(.numbers([0, 1, 2.0])) == [])
        #expect(validator.validate(.numbers([0, -1, 2.5])) == [
            ValidationIssue(instancePointer: "/1", keywordLocation: "/items/minimum", message: "must be at least 0, got -1"),
            ValidationIssue(instancePointer: "/2", keywordLocation: "/items/type", message: "expected integer, got number"),
        ])
        #expect(!validator.isValid(.numbers([3, -1])))
    }

    @Test(arguments: [#", "else": {"required": ["other"]}"#, ""])
    func discriminatorConditionsAgreeWithFullEvaluation(elseClause: String) throws {
        // The first `if` has the discriminator shape (decided by lookups, and without `else` skipped outright
        // when it does not hold); the second is the same condition in a shape the quick path declines
        // (`minLength: 0` beside `const`), so it is fully evaluated.
        let quick = ##"{"allOf": [{"if": {"properties": {"op": {"const": "add"}, "n": {"enum": [1, [2]]}}, "required": ["op"]}, "then": {"required": ["addend"]}"## + elseClause + "}]}"
        let full = ##"{"allOf": [{"if": {"properties": {"op": {"const": "add", "minLength": 0}, "n": {"enum": [1, [2]], "minLength": 0}}, "required": ["op"]}, "then": {"required": ["addend"]}"## + elseClause + "}]}"
        var registry = SchemaRegistry()
        try registry.add(jsonText: quick, uri: "https://example.test/quick.json")
        try registry.add(jsonText: full, uri: "https://example.test/full.json")
        let quickValidator = try registry.validator(for: "https://example.test/quick.json")
        let fullValidator = try registry.validator(for: "https://example.test/full.json")
        func conditional(_ validator: SchemaValidator) -> Conditional? {
            guard case .allOf(let nodes) = validator.root.keywords[0].keyword,
                  case .conditional(let conditional) = nodes[0].keywords[0].keyword else { return nil }
            return conditional
        }
        #expect(conditional(quickValidator)?.quick != nil)
        #expect(conditional(fullValidator)?.quick == nil)
        let instances = [
            #"5"#, #"{}"#, #"{"op": "add"}"#, #"{"op": "add", "addend": 1}"#, #"{"op": "sub", "addend": 1}"#,
            #"{"op": "sub", "other": 1}"#, #"{"op": "add", "n": 1.0, "addend": 1}"#, #"{"op": "add", "n": [2.0], "addend": 0}"#,
            #"{"op": "add", "n": 3, "addend": 0}"#, #"{"op": "add", "n": 3, "other": 0}"#, #"{"op": 1, "other": 0}"#,
        ]
        for text in instances {
            let instance = try JSONParser().parse(text)
            let expected = fullValidator.validate(instance)
            #expect(quickValidator.validate(instance) == expected, "\(text)")
            #expect(quickValidator.isValid(instance) == expected.isEmpty, "\(text)")
        }
        #expect(quickValidator.validate(try JSONParser().parse(#"{"op": "add"}"#)) == [
            ValidationIssue(instancePointer: "", keywordLocation: "/allOf/0/then/required", message: "missing required property \"addend\""),
        ])
    }

    @Test func numbersEqualGeneralArrays() throws {
        var registry = SchemaRegistry()
        try registry.add(JSONParser().parse(#"{"const": [1, 2.0], "uniqueItems": true}"#), uri: "https://example.test/c.json")
        let validator = try registry.validator(for: "https://example.test/c.json")
        #expect(validator.isValid(.numbers([1, 2])))
        #expect(validator.isValid(.array([.number(JSONNumber(1)), .number(JSONNumber(2))])))
        #expect(!validator.isValid(.numbers([2, 1])))
        try registry.add(JSONParser().parse(#"{"uniqueItems": true}"#), uri: "https://example.test/u.json")
        #expect(try registry.validate(.numbers([1, 2, 1.0]), against: "https://example.test/u.json") == [
            ValidationIssue(instancePointer: "", keywordLocation: "/uniqueItems", message: "items must be unique, but items 0 and 2 are equal"),
        ])
    }

    @Test func lengthCountsCodePoints() throws {
        var registry = SchemaRegistry()
        try registry.add(JSONParser().parse(#"{"maxLength": 1}"#), uri: "https://example.test/len.json")
        #expect(try registry.validate(.string("😀"), against: "https://example.test/len.json") == [])
        // "e" + combining acute accent: one character to the eye, two code points.
        #expect(try registry.validate(.string("e\u{301}"), against: "https://example.test/len.json").map(\.message)
                == ["must be at most 1 characters long, got 2"])
    }

    @Test func propertyNamesMatchByCodePoints() throws {
        var registry = SchemaRegistry()
        // "é" precomposed (U+00E9) is a different property name from "e" + combining acute (U+0301).
        try registry.add(jsonText: #"{"properties": {"\u00e9": {"type": "integer"}}, "required": ["\u00e9"], "additionalProperties": false}"#,
                         uri: "https://example.test/names.json")
        let validator = try registry.validator(for: "https://example.test/names.json")
        #expect(validator.validate(.object(JSONObject([("\u{e9}", .number(JSONNumber(1)))]))) == [])
        let decomposed = validator.validate(.object(JSONObject([("e\u{301}", .number(JSONNumber(1)))]))).map(\.message)
        #expect(decomposed == ["missing required property \"\u{e9}\"", "property \"e\u{301}\" is not allowed"])
    }

    @Test func schemaErrors() throws {
        var registry = SchemaRegistry()
        try registry.add(JSONParser().parse(#"{"minLength": -1}"#), uri: "https://example.test/bad.json")
        try registry.add(JSONParser().parse(#"{"pattern": "(unclosed"}"#), uri: "https://example.test/regex.json")
        try registry.add(JSONParser().parse(#"{"properties": {"a": {"$ref": "missing.json"}}}"#), uri: "https://example.test/ref.json")
        #expect(throws: SchemaError.self) { try registry.validate(.null, against: "https://example.test/bad.json") }
        do {
            _ = try registry.validator(for: "https://example.test/bad.json")
        } catch let error as SchemaError {
            #expect(error.kind == .invalidSchema)
            #expect(error.message == "minLength must be a non-negative integer")
        }
        do {
            _ = try registry.validator(for: "https://example.test/regex.json")
            Issue.record("a bad regex compiled")
        } catch let error as SchemaError {
            #expect(error.kind == .invalidSchema)
        }
        do {
            _ = try registry.validator(for: "https://example.test/ref.json")
            Issue.record("an unresolvable reference compiled")
        } catch let error as SchemaError {
            #expect(error.kind == .unresolvableReference)
            #expect(error.message == "cannot resolve reference https://example.test/missing.json")
        }
        do {
            _ = try registry.validator(for: "https://example.test/none.json")
            Issue.record("an unknown URI compiled")
        } catch let error as SchemaError {
            #expect(error.kind == .unknownSchema)
        }
        #expect(throws: SchemaError.self) { try registry.add(.number(JSONNumber(1)), uri: "https://example.test/n.json") }
        #expect(throws: SchemaError.self) { try registry.add(.bool(true), uri: "relative.json") }
    }

    @Test func addingFromText() throws {
        var registry = SchemaRegistry()
        try registry.add(jsonText: #"{"type": "integer"}"#, uri: "https://example.test/int.json")
        #expect(registry.documentURIs == [SchemaRegistry.metaschemaURI, "https://example.test/int.json"])
        #expect(try registry.validate(.number(JSONNumber(1.5)), against: "https://example.test/int.json").map(\.message)
                == ["expected integer, got number"])
        do {
            try registry.add(jsonText: "{\"type\": }", uri: "https://example.test/broken.json")
            Issue.record("malformed JSON was accepted")
        } catch let error as SchemaError {
            #expect(error.kind == .invalidSchema)
            #expect(error.message.hasPrefix("schema is not valid JSON:"))
            #expect(error.message.contains("line 1"))
        }
    }

    @Test func replacingADocumentForgetsItsOldIdentifiers() throws {
        var registry = SchemaRegistry()
        try registry.add(JSONParser().parse(#"{"$defs": {"a": {"$anchor": "old", "type": "string"}}}"#), uri: "https://example.test/doc.json")
        try registry.add(JSONParser().parse(#"{"$ref": "doc.json#old"}"#), uri: "https://example.test/user.json")
        #expect(try registry.validate(.number(JSONNumber(1)), against: "https://example.test/user.json").map(\.message) == ["expected string, got integer"])
        try registry.add(JSONParser().parse(#"{"$defs": {"a": {"$anchor": "new", "type": "string"}}}"#), uri: "https://example.test/doc.json")
        #expect(throws: SchemaError.self) { try registry.validate(.null, against: "https://example.test/user.json") }
        #expect(try registry.validate(.null, against: "https://example.test/doc.json#new").count == 1)
    }

    @Test func referenceLoopEndsWithAnIssue() throws {
        var registry = SchemaRegistry()
        try registry.add(JSONParser().parse(##"{"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}"##),
                         uri: "https://example.test/loop.json")
        let found = try registry.validate(.null, against: "https://example.test/loop.json")
        #expect(found.count == 1)
        #expect(found.first?.message.contains("a reference loop?") == true)
    }

    @Test func schemasCheckAgainstTheBuiltInMetaschema() throws {
        var registry = try registry()
        #expect(try registry.validate(JSONParser().parse(Self.params), against: SchemaRegistry.metaschemaURI) == [])
        let bad = try registry.validate(JSONParser().parse(#"{"type": "float", "minItems": -1}"#), against: SchemaRegistry.metaschemaURI)
        #expect(bad.contains { $0.instancePointer == "/minItems" && $0.message == "must be at least 0, got -1" })
        #expect(bad.contains { $0.instancePointer == "/type" })
        try registry.add(.bool(false), uri: "https://example.test/false.json")
        #expect(try registry.validate(.null, against: "https://example.test/false.json").map(\.message)
                == ["no value is allowed here (the schema is false)"])
    }

    @Test func validatorIsUsableFromManyTasks() async throws {
        let validator = try registry().validator(for: Self.paramsURI)
        let good = try JSONParser().parse(#"{"data": [[1, 2], [3, 4]], "name": "abc"}"#)
        let bad = try JSONParser().parse(#"{"data": [[1, 2], [3, null]], "name": "abc"}"#)
        let counts = await withTaskGroup(of: Int.self) { group in
            for i in 0..<8 {
                group.addTask { (0..<200).reduce(0) { sum, _ in sum + validator.validate(i.isMultiple(of: 2) ? good : bad).count } }
            }
            return await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(counts.sorted() == [0, 0, 0, 0, 200, 200, 200, 200])
    }
}

/// Large and deep instances: capped issue lists, no stack exhaustion.
struct ValidationLimitsTests {
    @Test func issuesAreCappedButTheVerdictIsNot() throws {
        var registry = SchemaRegistry()
        try registry.add(JSONParser().parse(#"{"items": {"items": {"type": "string"}}}"#), uri: "https://example.test/strings.json")
        let matrix = JSONValue.array(Array(repeating: .numbers(Array(repeating: 1, count: 512)), count: 512))
        let validator = try registry.validator(for: "https://example.test/strings.json")
        let issues = validator.validate(matrix)
        #expect(issues.count == 100)
        #expect(issues.first == ValidationIssue(instancePointer: "/0/0", keywordLocation: "/items/items/type", message: "expected string, got integer"))
        #expect(validator.validate(matrix, maxIssues: 3).map(\.instancePointer) == ["/0/0", "/0/1", "/0/2"])
        #expect(try registry.validate(matrix, against: "https://example.test/strings.json", maxIssues: 1).count == 1)
        #expect(!validator.isValid(matrix))
    }

    @Test func deeplyNestedInstanceUnderARecursiveSchema() throws {
        var registry = SchemaRegistry()
        try registry.add(JSONParser().parse(##"{"anyOf": [{"type": "number"}, {"type": "array", "items": {"$ref": "#"}}]}"##),
                         uri: "https://example.test/tree.json")
        var deep = JSONValue.numbers([1])
        for _ in 0..<1000 { deep = .array([deep]) }
        let issues = try registry.validate(deep, against: "https://example.test/tree.json", maxIssues: 10_000)
        #expect(issues.contains { $0.message.contains("nesting exceeds") })
        var shallow = JSONValue.numbers([1])
        for _ in 0..<50 { shallow = .array([shallow, .number(JSONNumber(2))]) }
        #expect(try registry.validate(shallow, against: "https://example.test/tree.json") == [])
    }
}
