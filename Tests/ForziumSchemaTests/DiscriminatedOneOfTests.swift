import ForziumJSON
import Testing
@testable import ForziumSchema

/// A `oneOf` whose alternatives each require one property with a distinct `const` (what an OpenAPI discriminator
/// describes) is decided by the selected alternative alone: same verdicts as the general `oneOf`, clearer issues.
struct DiscriminatedOneOfTests {
    static let branches = """
        [{"type": "object", "required": ["kind", "size"], "additionalProperties": false,
          "properties": {"kind": {"const": "square"}, "size": {"type": "number", "minimum": 0}}},
         {"$ref": "circle.json"},
         {"allOf": [{"required": ["kind"]}, {"properties": {"kind": {"const": "dot"}}}]}]
        """
    static let circle = """
        {"$id": "https://example.test/circle.json", "type": "object", "required": ["kind", "radius"],
         "properties": {"kind": {"type": "string", "const": "circle"}, "radius": {"type": "integer"}}}
        """

    func registry() throws -> SchemaRegistry {
        var registry = SchemaRegistry()
        try registry.add(JSONParser().parse(Self.circle), uri: "https://example.test/circle.json")
        // The selector applies to `union`; the extra `false` alternative (which never matches, so the verdict is the
        // same) keeps `general` on the general path.
        try registry.add(JSONParser().parse(#"{"$id": "https://example.test/union.json", "oneOf": \#(Self.branches)}"#),
                         uri: "https://example.test/union.json")
        let general = Self.branches.dropLast() + #", false]"#
        try registry.add(JSONParser().parse(#"{"$id": "https://example.test/general.json", "oneOf": \#(general)}"#),
                         uri: "https://example.test/general.json")
        return registry
    }

    @Test func selectorIsFoundThroughRefsAndAllOf() throws {
        let registry = try registry()
        var compiler = SchemaCompiler(index: registry.index)
        let root = try compiler.compile(reference: "https://example.test/union.json")
        guard case .oneOf(let group)? = root.keywords.first?.keyword else { Issue.record("no oneOf"); return }
        #expect(group.selector?.property == "kind")
        #expect(group.selector?.values == ["square", "circle", "dot"])
        let other = try compiler.compile(reference: "https://example.test/general.json")
        guard case .oneOf(let plain)? = other.keywords.first?.keyword else { Issue.record("no oneOf"); return }
        #expect(plain.selector == nil)
    }

    @Test func sameVerdictsAsTheGeneralOneOf() throws {
        let registry = try registry()
        let values: [JSONValue] = [
            .null, 1, "square", "circle", "dot", "line", [1], ["kind": "square"], JSONValue.object(JSONObject()),
        ]
        var instances: [JSONValue] = values
        for kind in values {
            for size in values {
                for radius in values {
                    instances.append(["kind": kind, "size": size, "radius": radius])
                    instances.append(["kind": kind, "size": size])
                    instances.append(["kind": kind, "radius": radius])
                    instances.append(["size": size, "radius": radius])
                }
            }
        }
        var accepted = 0
        for instance in instances {
            let selected = try registry.validate(instance, against: "https://example.test/union.json")
            let general = try registry.validate(instance, against: "https://example.test/general.json")
            #expect(selected.isEmpty == general.isEmpty, "\(JSONWriter.string(instance))")
            if selected.isEmpty { accepted += 1 }
        }
        #expect(accepted > 10 && accepted < instances.count - 10)
    }

    @Test func issuesComeFromTheSelectedAlternative() throws {
        let registry = try registry()
        let uri = "https://example.test/union.json"
        let wrongSize = try registry.validate(["kind": "square", "size": -1], against: uri)
        #expect(wrongSize.map(\.instancePointer) == ["/size"])
        #expect(wrongSize.first?.keywordLocation.hasPrefix("/oneOf/0/properties/size") == true)
        let missing = try registry.validate(["size": 1], against: uri)
        #expect(missing.count == 1 && missing[0].instancePointer == "" && missing[0].message.contains("\"kind\""))
        let unknown = try registry.validate(["kind": "line"], against: uri)
        #expect(unknown.count == 1 && unknown[0].instancePointer == "/kind")
        #expect(unknown.first?.message.contains("\"square\", \"circle\", \"dot\"") == true)
    }
}
