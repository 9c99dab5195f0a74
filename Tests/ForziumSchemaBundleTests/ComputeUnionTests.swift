import Foundation
import Testing
import ForziumJSON
import ForziumKernels
import ForziumSchema
import ForziumSchemaBundle

/// Issue 10 rewrote compute params from an `allOf` of `if`/`then` rules into a discriminated `oneOf` (one schema per
/// operation, for code generators). The old document is kept in Fixtures/; the validator must give both the same
/// verdict on every body, and stream params (now a `$ref` to compute's) too.
@Suite("Compute params as a discriminated union")
struct ComputeUnionTests {
    static let legacyURI = "https://forzium.dev/schemas/legacy/compute.params.json"
    static let computeURI = SchemaBundle.baseURI + "methods/compute.params.json"
    static let streamURI = SchemaBundle.baseURI + "methods/stream.params.json"

    let registry: SchemaRegistry

    init() throws {
        var registry = try bundleRegistry()
        let legacy = packageRoot.appendingPathComponent("Tests/ForziumSchemaBundleTests/Fixtures/compute.params.before-issue-10.json")
        try registry.add(try JSONParser().parse(String(decoding: try Data(contentsOf: legacy), as: UTF8.self)), uri: Self.legacyURI)
        self.registry = registry
    }

    /// Every parameter name of every operation, and values that are valid for some and invalid for others.
    static let parameterNames = ["factor", "addend", "matrix_b", "other", "kernel", "size", "mode", "rows", "cols", "axis", "data", "extra"]
    static let values: [JSONValue] = SchemaAgreementTests.palette + [
        .number(JSONNumber(0, literal: "0.0")), .number(JSONNumber(1, literal: "1.0")), .number(JSONNumber(3)), "sum", "Matmul", "",
    ]

    /// A seeded generator (SplitMix64), so the corpus is the same on every run.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Bodies built slot by slot (each top-level and parameter slot substituted or removed, for each operation),
    /// then random bodies over the same names and values.
    static func corpus() -> [JSONValue] {
        var bodies: [JSONValue] = [.null, .array([]), .numbers([1]), "x", JSONValue.object(JSONObject())]
        let operations = OperationCatalogue.operationNames.map { JSONValue.string($0) }
        for operation in OperationCatalogue.operationNames {
            let parameters = SchemaAgreementTests.baseParameters(operation)
            let top: [(key: String, value: JSONValue)] = [
                ("data", SchemaAgreementTests.baseData), ("operation", .string(operation)), ("parameters", .object(JSONObject(parameters))),
            ]
            bodies.append(.object(JSONObject(top)))
            for slot in ["data", "operation", "parameters", "extra"] {
                let removed = top.filter { $0.key != slot }
                bodies.append(.object(JSONObject(removed)))
                for value in values + operations { bodies.append(.object(JSONObject(removed + [(slot, value)]))) }
            }
            for slot in parameterNames {
                let inner = parameters.filter { $0.key != slot }
                bodies.append(.object(JSONObject(top.dropLast() + [("parameters", .object(JSONObject(inner)))])))
                for value in values {
                    bodies.append(.object(JSONObject(top.dropLast() + [("parameters", .object(JSONObject(inner + [(slot, value)])))])))
                }
            }
        }
        var random = Seeded(state: 10)
        for _ in 0..<6000 {
            var members: [(key: String, value: JSONValue)] = []
            if Int.random(in: 0..<10, using: &random) > 0 { members.append(("data", Bool.random(using: &random) ? SchemaAgreementTests.baseData : values.randomElement(using: &random)!)) }
            if Int.random(in: 0..<10, using: &random) > 0 { members.append(("operation", Int.random(in: 0..<8, using: &random) > 0 ? operations.randomElement(using: &random)! : values.randomElement(using: &random)!)) }
            if Bool.random(using: &random) {
                var inner: [(key: String, value: JSONValue)] = []
                for _ in 0..<Int.random(in: 0...3, using: &random) {
                    inner.append((parameterNames.randomElement(using: &random)!, values.randomElement(using: &random)!))
                }
                members.append(("parameters", .object(JSONObject(inner))))
            }
            if Int.random(in: 0..<20, using: &random) == 0 { members.append(("extra", 1)) }
            members.shuffle(using: &random)
            bodies.append(.object(JSONObject(members)))
        }
        return bodies
    }

    @Test func oldAndNewComputeSchemasGiveTheSameVerdicts() throws {
        var accepted = 0, rejected = 0
        for body in Self.corpus() {
            let legacy = try registry.validate(body, against: Self.legacyURI).isEmpty
            let compute = try registry.validate(body, against: Self.computeURI).isEmpty
            let stream = try registry.validate(body, against: Self.streamURI).isEmpty
            #expect(legacy == compute, "\(JSONWriter.string(body)): before \(legacy), now \(compute)")
            #expect(stream == compute, "\(JSONWriter.string(body)): stream \(stream), compute \(compute)")
            if compute { accepted += 1 } else { rejected += 1 }
        }
        // Both verdicts well represented (the random part alone is 6000 bodies).
        #expect(accepted > 1000, "accepted \(accepted)")
        #expect(rejected > 3000, "rejected \(rejected)")
        #expect(accepted + rejected > 15_000)
    }

    @Test func axisIsAnIntegerEnumPlusNullWithTheOldVerdicts() throws {
        var registry = registry
        try registry.add(try JSONParser().parse(#"{"$id": "https://forzium.dev/schemas/legacy/axis.json", "enum": [null, 0, 1]}"#),
                         uri: "https://forzium.dev/schemas/legacy/axis.json")
        for value in Self.values + [.number(JSONNumber(-0.0)), .number(JSONNumber(1, literal: "1e0")), .number(JSONNumber(1.0000001))] {
            let old = try registry.validate(value, against: "https://forzium.dev/schemas/legacy/axis.json").isEmpty
            let new = try registry.validate(value, against: SchemaBundle.baseURI + "defs/axis.json").isEmpty
            #expect(old == new, "\(JSONWriter.string(value))")
        }
    }

    /// Issues of a bad body name the place and the problem, as before: no list of sixteen alternatives.
    @Test func issuesStayClear() throws {
        func issues(_ text: String) throws -> [ValidationIssue] { try registry.validate(try JSONParser().parse(text), against: Self.computeURI) }
        let missingB = try issues(#"{"data":[[1]],"operation":"matmul"}"#)
        #expect(missingB.map(\.instancePointer) == [""])
        #expect(missingB.first?.message == #"missing required property "parameters""#)
        let badB = try issues(#"{"data":[[1]],"operation":"matmul","parameters":{"matrix_b":[]}}"#)
        #expect(badB.map(\.instancePointer) == ["/parameters/matrix_b"])
        let badAxis = try issues(#"{"data":[[1]],"operation":"sum","parameters":{"axis":2}}"#)
        #expect(badAxis.map(\.instancePointer) == ["/parameters/axis"])
        let unknown = try issues(#"{"data":[[1]],"operation":"nope"}"#)
        #expect(unknown.map(\.instancePointer) == ["/operation"])
        #expect(unknown.first?.message.contains(#""matmul""#) == true)
        let noOperation = try issues(#"{"data":[[1]]}"#)
        #expect(noOperation.count == 1 && noOperation.first?.message.contains(#""operation""#) == true)
        let badData = try issues(#"{"data":[[1,"x"]],"operation":"transpose"}"#)
        #expect(badData.map(\.instancePointer) == ["/data/0/1"])
        let extra = try issues(#"{"data":[[1]],"operation":"transpose","extra":1}"#)
        #expect(extra.map(\.instancePointer) == ["/extra"])
        // Not an object: said once, not once per alternative.
        let array = try issues(#"[1]"#)
        #expect(array.map(\.message) == ["expected object, got array", "must match exactly one of the 16 oneOf alternatives, matched none"])
    }

    /// Every `examples` entry of every schema is valid against that schema.
    @Test func everyExampleIsValid() throws {
        var checked = 0
        for file in SchemaBundle.files {
            guard case .array(let examples)? = try JSONParser().parse(file.text)["examples"] else { continue }
            for example in examples {
                let issues = try registry.validate(example, against: SchemaBundle.baseURI + file.path)
                #expect(issues.isEmpty, "\(file.path): \(JSONWriter.string(example)): \(issues)")
                checked += 1
            }
        }
        #expect(checked >= 16 + 16 + 2)
    }

    /// Request schemas carry examples: every method's params, and every per-operation compute request.
    @Test func everyRequestSchemaHasExamples() throws {
        for file in SchemaBundle.files where file.path.hasSuffix(".params.json") || file.path.hasPrefix("defs/compute-request/") {
            #expect(try JSONParser().parse(file.text)["examples"]?.arrayValue?.isEmpty == false, "\(file.path)")
        }
    }

    /// One per-operation schema for each operation of the catalogue, each in the union and the discriminator mapping.
    @Test func oneAlternativePerOperation() throws {
        let compute = try JSONParser().parse(try #require(SchemaBundle.files.first { $0.path == "methods/compute.params.json" }).text)
        let refs = (compute["oneOf"]?.arrayValue ?? []).compactMap { $0["$ref"]?.stringValue }
        #expect(refs == OperationCatalogue.operationNames.map { "../defs/compute-request/\($0).json" })
        #expect(compute["discriminator"]?["propertyName"] == "operation")
        for operation in OperationCatalogue.operationNames {
            #expect(compute["discriminator"]?["mapping"]?[operation] == .string("../defs/compute-request/\(operation).json"))
        }
        let stream = try JSONParser().parse(try #require(SchemaBundle.files.first { $0.path == "methods/stream.params.json" }).text)
        #expect(stream["$ref"] == "compute.params.json")
    }
}
