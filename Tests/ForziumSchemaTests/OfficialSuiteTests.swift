import Foundation
import ForziumJSON
import Testing
@testable import ForziumSchema

/// Runs the official JSON-Schema-Test-Suite (draft 2020-12, required tests) read from `../shared/testdata`.
struct OfficialSuiteTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let suiteRoot = packageRoot.appendingPathComponent("../shared/testdata/json-schema-test-suite").standardizedFileURL

    /// Keyword files whose every test must pass: the keywords Forzium's own schemas use.
    static let mustPassFiles: Set<String> = [
        "type.json", "properties.json", "required.json", "additionalProperties.json", "items.json",
        "prefixItems.json", "minItems.json", "maxItems.json", "minimum.json", "maximum.json",
        "exclusiveMinimum.json", "exclusiveMaximum.json", "enum.json", "const.json", "oneOf.json", "anyOf.json",
        "ref.json", "refRemote.json", "defs.json", "default.json", "minLength.json", "maxLength.json", "pattern.json",
        "allOf.json", "boolean_schema.json", "anchor.json", "if-then-else.json", "maxProperties.json", "minProperties.json",
        "contains.json",
    ]

    /// Known failures, each with its reason: "file / group / test".
    static let knownFailures: [String: String] = [:]

    /// A registry with every remote the suite's tests may fetch from http://localhost:1234/.
    static func remotesRegistry() throws -> SchemaRegistry {
        var registry = SchemaRegistry()
        let remotes = suiteRoot.appendingPathComponent("remotes")
        let enumerator = FileManager.default.enumerator(at: remotes, includingPropertiesForKeys: nil)!
        for case let url as URL in enumerator where url.pathExtension == "json" {
            let relative = String(url.standardizedFileURL.path.dropFirst(remotes.standardizedFileURL.path.count + 1))
            if ["draft3/", "draft4/", "draft6/", "draft7/", "draft2019-09/", "v1/"].contains(where: relative.hasPrefix) { continue }
            let document = try JSONParser().parse(Array(Data(contentsOf: url)))
            try registry.add(document, uri: "http://localhost:1234/" + relative)
        }
        return registry
    }

    struct Outcome {
        var passed = 0
        var failed: [String] = []
    }

    static func run(file: URL, registry base: SchemaRegistry) throws -> Outcome {
        var outcome = Outcome()
        let name = file.lastPathComponent
        guard case .array(let groups) = try JSONParser().parse(Array(Data(contentsOf: file))) else { return outcome }
        for (groupIndex, groupValue) in groups.enumerated() {
            guard case .object(let group) = groupValue, let schema = group["schema"],
                  case .array(let tests)? = group["tests"], case .string(let groupName)? = group["description"] else { continue }
            var registry = base
            let uri = "https://forzium.test/suite/\(name)/\(groupIndex).json"
            var validator: SchemaValidator?
            var compileError: String?
            do {
                try registry.add(schema, uri: uri)
                validator = try registry.validator(for: uri)
            } catch {
                compileError = "\(error)"
            }
            for testValue in tests {
                guard case .object(let test) = testValue, let data = test["data"],
                      case .bool(let expected)? = test["valid"], case .string(let testName)? = test["description"] else { continue }
                let id = "\(name) / \(groupName) / \(testName)"
                guard let validator else {
                    outcome.failed.append("\(id): schema did not compile: \(compileError ?? "?")")
                    continue
                }
                // Same verdict whether number arrays arrive as `.numbers` (the parser's form) or as `.array`.
                let issues = validator.validate(data)
                let verdicts = [issues.isEmpty, validator.isValid(data), validator.isValid(Self.generalArrays(data))]
                if verdicts.allSatisfy({ $0 == expected }) {
                    outcome.passed += 1
                } else {
                    outcome.failed.append("\(id): expected \(expected ? "valid" : "invalid"), got \(issues.isEmpty ? "valid" : "\(issues)") (validate/isValid/isValid(.array): \(verdicts))")
                }
            }
        }
        return outcome
    }

    /// The same value with every `.numbers` spelled as a general `.array` of `.number`s.
    static func generalArrays(_ value: JSONValue) -> JSONValue {
        switch value {
        case .numbers(let values): .array(values.map { .number(JSONNumber($0)) })
        case .array(let items): .array(items.map(generalArrays))
        case .object(let object): .object(JSONObject(object.members.map { (key: $0.key, value: generalArrays($0.value)) }))
        default: value
        }
    }

    static func suiteFiles(_ folder: String) throws -> [URL] {
        let directory = suiteRoot.appendingPathComponent(folder)
        return try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    /// The optional tests (not counted toward the targets; format assertion is out of scope since `format`
    /// is an annotation here). Reported for information, with a floor so regressions show.
    @Test func draft2020_12Optional() throws {
        let registry = try Self.remotesRegistry()
        var passed = 0
        var total = 0
        for file in try Self.suiteFiles("tests/draft2020-12/optional") {
            let outcome = try Self.run(file: file, registry: registry)
            passed += outcome.passed
            total += outcome.passed + outcome.failed.count
            for failure in outcome.failed { print("OPTIONAL FAIL \(failure)") }
        }
        print("json-schema-test-suite draft2020-12 optional (excluding format/): \(passed)/\(total) passed")
        #expect(total > 100)
        #expect(Double(passed) >= 0.95 * Double(total))
    }

    @Test func draft2020_12() throws {
        let files = try Self.suiteFiles("tests/draft2020-12")
        #expect(files.count > 40, "the suite was not found at \(Self.suiteRoot.path)")
        let registry = try Self.remotesRegistry()
        var passed = 0
        var total = 0
        var unexpected: [String] = []
        for file in files {
            let outcome = try Self.run(file: file, registry: registry)
            passed += outcome.passed
            total += outcome.passed + outcome.failed.count
            for failure in outcome.failed {
                let key = String(failure.prefix { $0 != ":" })
                if Self.mustPassFiles.contains(file.lastPathComponent) {
                    Issue.record("must-pass keyword file failed: \(failure)")
                }
                if Self.knownFailures[key] == nil { unexpected.append(failure) }
                print("FAIL \(failure)")
            }
        }
        print("json-schema-test-suite draft2020-12: \(passed)/\(total) passed")
        #expect(total > 1200)
        #expect(Double(passed) >= 0.95 * Double(total), "pass rate below 95%: \(passed)/\(total)")
        #expect(unexpected.isEmpty, "failures not in the known list: \(unexpected.count)")
    }
}
