import Foundation
import ForziumJSON
import Testing
@testable import ForziumSchema

/// Forzium's own `schemas/` through this validator: they compile, conform to the metaschema, their
/// `default`s and `examples` are valid, and every keyword they use is one whose suite file must pass 100%.
struct ForziumSchemasTests {
    static let schemasRoot = OfficialSuiteTests.packageRoot.appendingPathComponent("schemas")
    static let baseURI = "https://forzium.dev/schemas/"

    /// Schema keyword → the official suite files that test it ([] = annotation only, nothing to assert).
    static let keywordFiles: [String: [String]] = [
        "$schema": [], "$id": ["ref.json", "refRemote.json"], "$ref": ["ref.json", "refRemote.json"], "$defs": ["defs.json"],
        "$anchor": ["anchor.json"], "$comment": [],
        "title": [], "description": [], "examples": [],
        // OpenAPI's discriminator: an annotation for code generators (DiscriminatedOneOfTests covers oneOf's verdicts).
        "discriminator": [], "default": ["default.json"], "deprecated": [], "readOnly": [], "writeOnly": [],
        "type": ["type.json"], "enum": ["enum.json"], "const": ["const.json"],
        "properties": ["properties.json"], "required": ["required.json"], "additionalProperties": ["additionalProperties.json"],
        "patternProperties": ["patternProperties.json"], "propertyNames": ["propertyNames.json"],
        "minProperties": ["minProperties.json"], "maxProperties": ["maxProperties.json"],
        "items": ["items.json"], "prefixItems": ["prefixItems.json"], "minItems": ["minItems.json"], "maxItems": ["maxItems.json"],
        "uniqueItems": ["uniqueItems.json"], "contains": ["contains.json"],
        "minimum": ["minimum.json"], "maximum": ["maximum.json"], "exclusiveMinimum": ["exclusiveMinimum.json"],
        "exclusiveMaximum": ["exclusiveMaximum.json"], "multipleOf": ["multipleOf.json"],
        "minLength": ["minLength.json"], "maxLength": ["maxLength.json"], "pattern": ["pattern.json"], "format": [],
        "allOf": ["allOf.json"], "anyOf": ["anyOf.json"], "oneOf": ["oneOf.json"], "not": ["not.json"],
        "if": ["if-then-else.json"], "then": ["if-then-else.json"], "else": ["if-then-else.json"],
    ]

    struct Document {
        var path: String
        var uri: String
        var value: JSONValue
    }

    static func documents() throws -> [Document] {
        let enumerator = FileManager.default.enumerator(at: schemasRoot, includingPropertiesForKeys: nil)!
        var documents: [Document] = []
        for case let url as URL in enumerator where url.pathExtension == "json" {
            let path = String(url.standardizedFileURL.path.dropFirst(schemasRoot.standardizedFileURL.path.count + 1))
            if path == "openapi.json" { continue }  // generated OpenAPI document, not a JSON Schema
            documents.append(Document(path: path, uri: baseURI + path, value: try JSONParser().parse(Array(Data(contentsOf: url)))))
        }
        return documents.sorted { $0.path < $1.path }
    }

    /// Calls `visit(pointer, object)` for every schema object in `value` (following only subschema positions).
    static func forEachSchema(_ value: JSONValue, pointer: String = "", _ visit: (String, JSONObject) -> Void) {
        guard case .object(let object) = value else { return }
        visit(pointer, object)
        for member in object.members {
            let child = pointer + "/" + JSONPointer.escape(member.key)
            if SchemaIndex.singleSchemaKeywords.contains(member.key) {
                forEachSchema(member.value, pointer: child, visit)
            } else if SchemaIndex.arraySchemaKeywords.contains(member.key), case .array(let items) = member.value {
                for (i, item) in items.enumerated() { forEachSchema(item, pointer: child + "/\(i)", visit) }
            } else if SchemaIndex.mapSchemaKeywords.contains(member.key), case .object(let map) = member.value {
                for entry in map.members { forEachSchema(entry.value, pointer: child + "/" + JSONPointer.escape(entry.key), visit) }
            }
        }
    }

    @Test func everySchemaCompilesAndConformsToTheMetaschema() throws {
        let documents = try Self.documents()
        #expect(documents.count >= 30, "schemas/ not found at \(Self.schemasRoot.path)")
        var registry = SchemaRegistry()
        for document in documents { try registry.add(document.value, uri: document.uri) }
        for document in documents {
            #expect(throws: Never.self, "\(document.path) does not compile") { _ = try registry.validator(for: document.uri) }
            let issues = try registry.validate(document.value, against: SchemaRegistry.metaschemaURI)
            #expect(issues.isEmpty, "\(document.path) breaks the metaschema: \(issues)")
            if case .string(let id)? = document.value.objectValue?["$id"] {
                #expect(id == document.uri, "\(document.path) has $id \(id)")
            }
        }
    }

    @Test func defaultsAndExamplesAreValid() throws {
        let documents = try Self.documents()
        var registry = SchemaRegistry()
        for document in documents { try registry.add(document.value, uri: document.uri) }
        var checked = 0
        for document in documents {
            var samples: [(String, JSONValue)] = []
            Self.forEachSchema(document.value) { pointer, object in
                if let value = object["default"] { samples.append((pointer, value)) }
                if case .array(let examples)? = object["examples"] { samples += examples.map { (pointer, $0) } }
                if case .numbers(let examples)? = object["examples"] { samples += examples.map { (pointer, .number(JSONNumber($0))) } }
            }
            for (pointer, sample) in samples {
                let issues = try registry.validate(sample, against: document.uri + "#" + pointer)
                #expect(issues.isEmpty, "\(document.path)#\(pointer): \(sample.briefDescription()) is invalid: \(issues)")
                checked += 1
            }
        }
        #expect(checked > 0)
    }

    @Test func everyKeywordUsedHasItsSuiteFileInTheMustPassSet() throws {
        var used: Set<String> = []
        for document in try Self.documents() {
            Self.forEachSchema(document.value) { _, object in used.formUnion(object.keys) }
        }
        #expect(used.contains("$ref") && used.contains("type"))
        for keyword in used.sorted() {
            guard let files = Self.keywordFiles[keyword] else {
                Issue.record("schemas/ uses \(keyword), which this test does not know: map it to its suite file")
                continue
            }
            for file in files {
                #expect(OfficialSuiteTests.mustPassFiles.contains(file), "\(keyword) is used by schemas/, so \(file) must be in mustPassFiles")
            }
        }
    }
}
