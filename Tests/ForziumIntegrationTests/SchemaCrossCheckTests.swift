import ForziumJSON
import ForziumSchema
import ForziumSchemaBundle
import Testing

/// One params document and what must happen to it.
struct CrossCheckCase: Sendable, CustomTestStringConvertible {
    enum Expectation: Sendable {
        /// The schema accepts it and both engines compute a result.
        case valid
        /// The schema rejects it and both engines answer -32602.
        case invalid
        /// A rule JSON Schema cannot express (row lengths, shape agreement, divisibility, constant minmax):
        /// the schema accepts it and both engines answer -32602. Documented in the schema descriptions.
        case semantic
    }

    var method: String
    var params: String
    var expectation: Expectation

    var testDescription: String { "\(method) \(params)" }
}

private func valid(_ method: String, _ params: String) -> CrossCheckCase { .init(method: method, params: params, expectation: .valid) }
private func invalid(_ method: String, _ params: String) -> CrossCheckCase { .init(method: method, params: params, expectation: .invalid) }
private func semantic(_ method: String, _ params: String) -> CrossCheckCase { .init(method: method, params: params, expectation: .semantic) }

/// Valid and invalid params for every method, with the shapes clients get wrong most.
let crossCheckCorpus: [CrossCheckCase] = [
    // The matrix itself (checked through `transpose`, which takes nothing else).
    valid("transpose", #"{"data":[[1]]}"#),
    valid("transpose", #"{"data":[[1.5,-2e300],[0,-0.0]]}"#),
    valid("transpose", #"{"data":[[NaN,Infinity,-Infinity]]}"#),
    invalid("transpose", #"{}"#),
    invalid("transpose", #"{"data":[]}"#),
    invalid("transpose", #"{"data":[[]]}"#),
    invalid("transpose", #"{"data":[[1],[]]}"#),
    invalid("transpose", #"{"data":[1,2]}"#),
    invalid("transpose", #"{"data":[[1,"2"]]}"#),
    invalid("transpose", #"{"data":[[1,null]]}"#),
    invalid("transpose", #"{"data":[[true]]}"#),
    invalid("transpose", #"{"data":"[[1]]"}"#),
    invalid("transpose", #"{"data":{"0":[1]}}"#),
    invalid("transpose", #"{"data":[[1]],"extra":1}"#),
    invalid("transpose", #"[[1]]"#),
    semantic("transpose", #"{"data":[[1,2],[3]]}"#),
    // multiply / add
    valid("multiply", #"{"data":[[1,2]]}"#),
    valid("multiply", #"{"data":[[1,2]],"factor":-2.5}"#),
    invalid("multiply", #"{"data":[[1,2]],"factor":"2"}"#),
    invalid("multiply", #"{"data":[[1,2]],"factor":null}"#),
    invalid("multiply", #"{"data":[[1,2]],"factor":[2]}"#),
    valid("add", #"{"data":[[1,2]],"addend":1e-3}"#),
    invalid("add", #"{"data":[[1,2]],"addend":true}"#),
    invalid("add", #"{"data":[[1,2]],"factor":1}"#),
    // matmul
    valid("matmul", #"{"data":[[1,2]],"matrix_b":[[3],[4]]}"#),
    invalid("matmul", #"{"data":[[1,2]]}"#),
    invalid("matmul", #"{"data":[[1,2]],"matrix_b":[]}"#),
    invalid("matmul", #"{"data":[[1,2]],"matrix_b":[[3],["4"]]}"#),
    semantic("matmul", #"{"data":[[1,2]],"matrix_b":[[3,4]]}"#),
    semantic("matmul", #"{"data":[[1,2]],"matrix_b":[[3],[4,5]]}"#),
    // elementwise
    valid("elementwise_add", #"{"data":[[1,2]],"other":[[3,4]]}"#),
    valid("elementwise_sub", #"{"data":[[1,2]],"other":[[3,4]]}"#),
    valid("elementwise_mul", #"{"data":[[1,2]],"other":[[3,4]]}"#),
    valid("elementwise_div", #"{"data":[[1,2]],"other":[[0,4]]}"#),
    invalid("elementwise_add", #"{"data":[[1,2]]}"#),
    invalid("elementwise_div", #"{"data":[[1,2]],"other":[[0,"4"]]}"#),
    semantic("elementwise_mul", #"{"data":[[1,2]],"other":[[3,4],[5,6]]}"#),
    // conv2d
    valid("conv2d", #"{"data":[[1,2],[3,4]],"kernel":[[1]]}"#),
    invalid("conv2d", #"{"data":[[1,2],[3,4]]}"#),
    invalid("conv2d", #"{"data":[[1,2],[3,4]],"kernel":[[]]}"#),
    semantic("conv2d", #"{"data":[[1,2],[3,4]],"kernel":[[1,2,3]]}"#),
    // max_pool2d
    valid("max_pool2d", #"{"data":[[1,2],[3,4]],"size":2}"#),
    valid("max_pool2d", #"{"data":[[1,2],[3,4]],"size":1.0}"#),
    invalid("max_pool2d", #"{"data":[[1,2],[3,4]]}"#),
    invalid("max_pool2d", #"{"data":[[1,2],[3,4]],"size":0}"#),
    invalid("max_pool2d", #"{"data":[[1,2],[3,4]],"size":-2}"#),
    invalid("max_pool2d", #"{"data":[[1,2],[3,4]],"size":1.5}"#),
    invalid("max_pool2d", #"{"data":[[1,2],[3,4]],"size":"2"}"#),
    semantic("max_pool2d", #"{"data":[[1,2,3],[4,5,6]],"size":2}"#),
    // normalize
    valid("normalize", #"{"data":[[1,2]],"mode":"minmax"}"#),
    valid("normalize", #"{"data":[[0,0]],"mode":"l2"}"#),
    invalid("normalize", #"{"data":[[1,2]],"mode":"max"}"#),
    invalid("normalize", #"{"data":[[1,2]],"mode":1}"#),
    semantic("normalize", #"{"data":[[3,3]],"mode":"minmax"}"#),
    // reshape
    valid("reshape", #"{"data":[[1,2,3,4]],"rows":2,"cols":2}"#),
    invalid("reshape", #"{"data":[[1,2,3,4]],"rows":2}"#),
    invalid("reshape", #"{"data":[[1,2,3,4]],"rows":0,"cols":4}"#),
    invalid("reshape", #"{"data":[[1,2,3,4]],"rows":2.5,"cols":2}"#),
    semantic("reshape", #"{"data":[[1,2,3,4]],"rows":3,"cols":2}"#),
    // reductions
    valid("sum", #"{"data":[[1,2]]}"#),
    valid("mean", #"{"data":[[1,2]],"axis":null}"#),
    valid("min", #"{"data":[[1,2]],"axis":0}"#),
    valid("max", #"{"data":[[1,2]],"axis":1}"#),
    invalid("sum", #"{"data":[[1,2]],"axis":2}"#),
    invalid("mean", #"{"data":[[1,2]],"axis":-1}"#),
    invalid("max", #"{"data":[[1,2]],"axis":"0"}"#),
    // compute (ForziumAPI's shape)
    valid("compute", #"{"data":[[1,2]],"operation":"transpose"}"#),
    valid("compute", #"{"data":[[1,2]],"operation":"multiply","parameters":{"factor":2}}"#),
    valid("compute", #"{"data":[[1,2]],"operation":"matmul","parameters":{"matrix_b":[[1],[1]]}}"#),
    valid("compute", #"{"data":[[1,2]],"operation":"sum","parameters":{}}"#),
    invalid("compute", #"{"data":[[1,2]]}"#),
    invalid("compute", #"{"data":[[1,2]],"operation":"fft"}"#),
    invalid("compute", #"{"data":[[1,2]],"operation":"compute"}"#),
    invalid("compute", #"{"data":[[1,2]],"operation":"matmul"}"#),
    invalid("compute", #"{"data":[[1,2]],"operation":"matmul","parameters":{}}"#),
    invalid("compute", #"{"data":[[1,2]],"operation":"multiply","parameters":{"factor":"x"}}"#),
    invalid("compute", #"{"data":[[1,2]],"operation":"multiply","parameters":{"scale":2}}"#),
    invalid("compute", #"{"data":[[1,2]],"operation":"multiply","parameters":[2]}"#),
    invalid("compute", #"{"data":[[1,2]],"operation":"sum","parameters":{"axis":3}}"#),
    invalid("compute", #"{"data":[[1,2]],"operation":"transpose","extra":true}"#),
    semantic("compute", #"{"data":[[1,2],[3]],"operation":"transpose"}"#),
    // ping (answered by the protocol layer)
    valid("ping", #"{}"#),
    invalid("ping", #"{"verbose":true}"#),
]

/// The registry holding every embedded schema.
private let schemaRegistry: SchemaRegistry = {
    var registry = SchemaRegistry()
    for file in SchemaBundle.files {
        do { try registry.add(jsonText: file.text, uri: SchemaBundle.baseURI + file.path) } catch {
            fatalError("schema \(file.path) does not load: \(error)")
        }
    }
    return registry
}()

@Suite("Schemas and engines agree", .timeLimit(.minutes(3)))
struct SchemaCrossCheckTests {
    @Test("The corpus covers every method that takes params")
    func corpusCoversEveryMethod() {
        let methods = Set(crossCheckCorpus.map(\.method))
        let schemaMethods = Set(SchemaBundle.files.compactMap { file -> String? in
            guard file.path.hasPrefix("methods/"), file.path.hasSuffix(".params.json") else { return nil }
            return String(file.path.dropFirst("methods/".count).dropLast(".params.json".count))
        })
        let uncovered = schemaMethods.subtracting(methods).subtracting(["engine.info", "stream"])
        #expect(uncovered.isEmpty, "methods without cross-check cases: \(uncovered.sorted())")
    }

    @Test("Validator and both engines accept and reject the same params", arguments: EngineBinary.allCases)
    func sameVerdicts(engine: EngineBinary) throws {
        let process = try EngineProcess(engine)
        for (index, item) in crossCheckCorpus.enumerated() {
            let params = json(item.params)
            let issues = try schemaRegistry.validate(params, against: SchemaBundle.baseURI + "methods/\(item.method).params.json")
            let reply = try process.call(request(index, item.method, item.params))
            switch item.expectation {
            case .valid:
                #expect(issues.isEmpty, "schema rejects \(item.testDescription): \(issues)")
                #expect(reply["result"] != nil, "\(engine) rejects \(item.testDescription): \(JSONWriter.string(reply))")
            case .invalid:
                #expect(!issues.isEmpty, "schema accepts \(item.testDescription)")
                #expect(reply.errorCode == -32602, "\(engine) answers \(JSONWriter.string(reply)) to \(item.testDescription)")
            case .semantic:
                #expect(issues.isEmpty, "schema rejects \(item.testDescription): \(issues)")
                #expect(reply.errorCode == -32602, "\(engine) answers \(JSONWriter.string(reply)) to \(item.testDescription)")
            }
        }
    }

    @Test("Every successful result matches its method's result schema", arguments: EngineBinary.allCases)
    func resultsMatchResultSchemas(engine: EngineBinary) throws {
        let process = try EngineProcess(engine)
        for (index, item) in crossCheckCorpus.enumerated() where item.expectation == .valid {
            let reply = try process.call(request(index, item.method, item.params))
            guard let result = reply["result"] else {
                Issue.record("\(engine) gave no result for \(item.testDescription)")
                continue
            }
            let issues = try schemaRegistry.validate(result, against: SchemaBundle.baseURI + "methods/\(item.method).result.json")
            #expect(issues.isEmpty, "result of \(item.testDescription) breaks its schema: \(issues)")
        }
        let info = try process.call(request(9_999, "engine.info"))
        let infoIssues = try schemaRegistry.validate(info["result"] ?? .null, against: SchemaBundle.baseURI + "methods/engine.info.result.json")
        #expect(infoIssues.isEmpty, "engine.info breaks its schema: \(infoIssues)")
        #expect(info["result"]?["schema_digest"]?.stringValue == SchemaBundle.digest)
    }
}
