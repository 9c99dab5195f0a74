import Foundation
import Testing
import ForziumJSON
import ForziumKernels
import ForziumSchema
import ForziumSchemaBundle

/// The package root, found from this file's path (Tests/ForziumSchemaBundleTests/<file>).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Every `*.json` under schemas/, as (path relative to schemas/, bytes), sorted by path bytes.
func schemaFilesOnDisk() throws -> [(path: String, bytes: [UInt8])] {
    let schemas = packageRoot.appendingPathComponent("schemas")
    guard let walker = FileManager.default.enumerator(at: schemas, includingPropertiesForKeys: nil) else { return [] }
    var files: [(path: String, bytes: [UInt8])] = []
    let prefix = schemas.standardizedFileURL.path + "/"
    for case let url as URL in walker where url.pathExtension == "json" {
        let full = url.standardizedFileURL.path
        #expect(full.hasPrefix(prefix))
        if full.dropFirst(prefix.count) == "openapi.json" { continue } // generated OpenAPI document, not a schema
        files.append((String(full.dropFirst(prefix.count)), Array(try Data(contentsOf: url))))
    }
    return files.sorted { Array($0.path.utf8).lexicographicallyPrecedes(Array($1.path.utf8)) }
}

/// All bundled schemas, parsed and registered under their `$id`s.
func bundleRegistry() throws -> SchemaRegistry {
    var registry = SchemaRegistry()
    for file in SchemaBundle.files {
        try registry.add(try JSONParser().parse(file.text), uri: SchemaBundle.baseURI + file.path)
    }
    return registry
}

@Suite("SchemaBundle")
struct SchemaBundleTests {
    @Test func bundleMatchesSchemasOnDisk() throws {
        let disk = try schemaFilesOnDisk()
        let stale = "Sources/ForziumSchemaBundle/SchemaBundle.swift is stale: run python3 scripts/embed-schemas.py"
        #expect(disk.map(\.path) == SchemaBundle.files.map(\.path), Comment(rawValue: stale))
        for (onDisk, bundled) in zip(disk, SchemaBundle.files) where onDisk.path == bundled.path {
            let same = onDisk.bytes == Array(bundled.text.utf8)
            #expect(same, "schemas/\(onDisk.path) differs from its embedded copy: \(stale)")
        }
    }

    @Test func digestCoversTheFiles() {
        var hash = SHA256()
        for file in SchemaBundle.files {
            hash.update(file.path.utf8)
            hash.update([0])
            hash.update(file.text.utf8)
            hash.update([0])
        }
        #expect(SchemaBundle.digest == "sha256:" + hash.finish())
    }

    @Test func sha256KnownAnswers() {
        var empty = SHA256()
        #expect(empty.finish() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        var abc = SHA256()
        abc.update("abc".utf8)
        #expect(abc.finish() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        var long = SHA256()
        long.update("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(long.finish() == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var million = SHA256()
        million.update(repeatElement(UInt8(ascii: "a"), count: 1_000_000))
        #expect(million.finish() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func everySchemaIsAWellFormed2020_12Document() throws {
        let registry = try bundleRegistry()
        for file in SchemaBundle.files {
            let document = try JSONParser().parse(file.text)
            #expect(document["$schema"] == .string("https://json-schema.org/draft/2020-12/schema"), "\(file.path)")
            #expect(document["$id"] == .string(SchemaBundle.baseURI + file.path), "\(file.path)")
            #expect(try registry.validate(document, against: SchemaRegistry.metaschemaURI).isEmpty, "\(file.path)")
            // Every schema compiles: all references resolve.
            _ = try registry.validator(for: SchemaBundle.baseURI + file.path)
            checkConventions(document, path: file.path, at: "")
        }
    }

    /// No `$defs`, no internal (`#...`) references, no boolean schemas except `additionalProperties: false`,
    /// and a description on every property.
    func checkConventions(_ value: JSONValue, path: String, at pointer: String) {
        guard case .object(let object) = value else { return }
        #expect(object["$defs"] == nil, "\(path)\(pointer): $defs")
        if case .string(let ref)? = object["$ref"] {
            #expect(!ref.hasPrefix("#") && !ref.contains("#"), "\(path)\(pointer): internal $ref \(ref)")
        }
        for member in object.members {
            let here = pointer + "/" + member.key
            switch member.key {
            case "properties":
                guard case .object(let properties) = member.value else { continue }
                for property in properties.members {
                    #expect(property.value["description"] != nil, "\(path)\(here)/\(property.key): no description")
                    #expect(property.value.boolValue == nil, "\(path)\(here)/\(property.key): boolean schema")
                    checkConventions(property.value, path: path, at: here + "/" + property.key)
                }
            case "additionalProperties":
                #expect(member.value == .bool(false) || member.value.objectValue != nil, "\(path)\(here)")
                checkConventions(member.value, path: path, at: here)
            case "items", "not", "if", "then", "else", "contains", "propertyNames":
                #expect(member.value.boolValue == nil, "\(path)\(here): boolean schema")
                checkConventions(member.value, path: path, at: here)
            case "allOf", "anyOf", "oneOf":
                for (i, sub) in (member.value.arrayValue ?? []).enumerated() {
                    #expect(sub.boolValue == nil, "\(path)\(here)/\(i): boolean schema")
                    checkConventions(sub, path: path, at: "\(here)/\(i)")
                }
            default:
                break
            }
        }
    }

    @Test func everyMethodHasParamsAndResultSchemas() {
        let paths = Set(SchemaBundle.files.map(\.path))
        for method in OperationCatalogue.methodNames + ["stream", "engine.info", "ping"] {
            #expect(paths.contains("methods/\(method).params.json"), "\(method)")
            #expect(paths.contains("methods/\(method).result.json"), "\(method)")
        }
        for operation in OperationCatalogue.operationNames {
            #expect(paths.contains("defs/parameters/\(operation).json"), "\(operation)")
        }
        #expect(paths.contains("defs/matrix.json"))
    }

    @Test func operationNameEnumListsTheCatalogue() throws {
        let file = try #require(SchemaBundle.files.first { $0.path == "defs/operation-name.json" })
        let document = try JSONParser().parse(file.text)
        #expect(document["enum"] == .array(OperationCatalogue.operationNames.map { .string($0) }))
    }
}
