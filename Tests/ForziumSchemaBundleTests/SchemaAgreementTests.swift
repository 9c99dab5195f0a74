import Testing
import ForziumJSON
import ForziumKernels
import ForziumSchema
import ForziumSchemaBundle

/// The schemas and the catalogue must accept and reject the same params, except for the checks JSON Schema
/// cannot express (ragged rows, shape agreement between matrices, element limits, constant minmax), which
/// only the catalogue makes.
@Suite("Schemas agree with the catalogue")
struct SchemaAgreementTests {
    let registry: SchemaRegistry
    let catalogue = OperationCatalogue(kernels: FallbackKernels(), limits: OperationLimits(maxElements: 1000))

    init() throws { registry = try bundleRegistry() }

    /// Messages of the catalogue's checks that JSON Schema cannot make.
    static let semanticMarkers = [
        "elements, expected", "rows but data has", "equal shapes", "larger than data", "does not divide",
        "does not equal the", "constant matrix",
    ]

    static func isSemantic(_ error: OperationError) -> Bool {
        error.kind == .tooLarge
            || (error.kind == .invalidParams && !error.issues.isEmpty
                && error.issues.allSatisfy { issue in semanticMarkers.contains { issue.message.contains($0) } })
    }

    static let palette: [JSONValue] = [
        .null, .bool(true), .bool(false), .string("text"), .string("minmax"), .string("l2"), .string("zscore"),
        .number(JSONNumber(0)), .number(JSONNumber(1)), .number(JSONNumber(2)), .number(JSONNumber(2, literal: "2.0")),
        .number(JSONNumber(1.5)), .number(JSONNumber(-1)), .number(JSONNumber(1e300)), .number(JSONNumber(.nan)),
        .number(JSONNumber(.infinity)), .number(JSONNumber(-0.0)),
        .array([]), .object(JSONObject()), .numbers([1, 2]),
        [[1, 2], [3, 4]], [[1]], [[5, 6, 7, 8]], .array([.array([])]), [[1, "a"]], [[1], [2, 3]], [["x"]], [[nil]],
        [[1, 2, 3], [4, 5, 6]], .array([.numbers([1, 2]), .array([.number(JSONNumber(3)), .number(JSONNumber(4))])]),
        [[[1]]], ["a": 1],
    ]

    /// Valid params (besides data) for each operation.
    static func baseParameters(_ operation: String) -> [(key: String, value: JSONValue)] {
        switch operation {
        case "multiply": [("factor", 2)]
        case "add": [("addend", 1)]
        case "matmul": [("matrix_b", [[1, 0], [0, 1]])]
        case "elementwise_add", "elementwise_sub", "elementwise_mul", "elementwise_div": [("other", [[2, 2], [2, 2]])]
        case "conv2d": [("kernel", [[1]])]
        case "max_pool2d": [("size", 2)]
        case "normalize": [("mode", "l2")]
        case "reshape": [("rows", 4), ("cols", 1)]
        case "sum", "mean", "min", "max": [("axis", 0)]
        default: []
        }
    }

    static let baseData: JSONValue = [[1, 2], [3, 4]]

    enum Outcome { case accepted(JSONValue), rejected(OperationError) }

    func outcome(_ method: String, _ params: JSONValue) -> Outcome {
        do { return .accepted(try catalogue.call(method: method, params: params)) } catch { return .rejected(error) }
    }

    /// Checks one case; returns true when schema and catalogue agree.
    @discardableResult
    func check(_ method: String, _ params: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) throws -> Bool {
        let issues = try registry.validate(params, against: SchemaBundle.baseURI + "methods/\(method).params.json")
        let schemaAccepts = issues.isEmpty
        let text = JSONWriter.string(params)
        switch outcome(method, params) {
        case .accepted(let result):
            #expect(schemaAccepts, "\(method) \(text): catalogue accepts, schema rejects: \(issues)", sourceLocation: sourceLocation)
            // The result, as it goes over the wire (non-finite → null), satisfies the result schema.
            let wire = try JSONParser().parse(JSONWriter.string(result))
            let resultIssues = try registry.validate(wire, against: SchemaBundle.baseURI + "methods/\(method).result.json")
            #expect(resultIssues.isEmpty, "\(method) \(text) → \(JSONWriter.string(result)): \(resultIssues)", sourceLocation: sourceLocation)
            return schemaAccepts && resultIssues.isEmpty
        case .rejected(let error):
            if Self.isSemantic(error) {
                #expect(schemaAccepts, "\(method) \(text): semantic rejection \(error.message), but schema rejects: \(issues)", sourceLocation: sourceLocation)
                return schemaAccepts
            }
            #expect(!schemaAccepts, "\(method) \(text): catalogue rejects (\(error.message)), schema accepts", sourceLocation: sourceLocation)
            #expect(error.kind == .invalidParams, sourceLocation: sourceLocation)
            return !schemaAccepts
        }
    }

    @Test func directMethodsAgreeOnEverySubstitution() throws {
        var cases = 0
        for operation in OperationCatalogue.operationNames {
            let base: [(key: String, value: JSONValue)] = [("data", Self.baseData)] + Self.baseParameters(operation)
            try check(operation, .object(JSONObject(base)))
            // Each slot replaced by each palette value, or removed; plus an unknown member.
            let slots = base.map(\.key) + ["extra", "a/b~c"]
            for slot in slots {
                var removed = base
                removed.removeAll { $0.key == slot }
                try check(operation, .object(JSONObject(removed)))
                for value in Self.palette {
                    var members = removed
                    members.append((slot, value))
                    try check(operation, .object(JSONObject(members)))
                    cases += 1
                }
            }
            // Non-object params.
            for value: JSONValue in [.array([]), .numbers([1]), .string("x"), .null] {
                #expect(try !registry.validate(value, against: SchemaBundle.baseURI + "methods/\(operation).params.json").isEmpty)
                if case .rejected(let error) = outcome(operation, value) { #expect(error.kind == .invalidParams) } else { Issue.record("accepted \(value)") }
            }
        }
        #expect(cases > 1000)
    }

    @Test func computeAndStreamAgreeOnEverySubstitution() throws {
        for method in ["compute", "stream"] {
            for operation in OperationCatalogue.operationNames {
                let parameters = Self.baseParameters(operation)
                let top: [(key: String, value: JSONValue)] = [
                    ("data", Self.baseData), ("operation", .string(operation)), ("parameters", .object(JSONObject(parameters))),
                ]
                if method == "stream" {
                    // stream has the same params schema as compute; the catalogue's call() does not stream, so
                    // compare the stream schema with compute's behaviour.
                    try checkStream(.object(JSONObject(top)))
                    continue
                }
                try check(method, .object(JSONObject(top)))
                // Top-level slots.
                for slot in ["data", "operation", "parameters", "extra"] {
                    var removed = top
                    removed.removeAll { $0.key == slot }
                    try check(method, .object(JSONObject(removed)))
                    for value in Self.palette + OperationCatalogue.operationNames.map({ JSONValue.string($0) }) {
                        var members = removed
                        members.append((slot, value))
                        try check(method, .object(JSONObject(members)))
                    }
                }
                // Slots inside parameters.
                for slot in parameters.map(\.key) + ["data", "extra"] {
                    var inner = parameters
                    inner.removeAll { $0.key == slot }
                    let without: [(key: String, value: JSONValue)] = [("data", Self.baseData), ("operation", .string(operation)), ("parameters", .object(JSONObject(inner)))]
                    try check(method, .object(JSONObject(without)))
                    for value in Self.palette {
                        var members = inner
                        members.append((slot, value))
                        try check(method, .object(JSONObject([("data", Self.baseData), ("operation", .string(operation)), ("parameters", .object(JSONObject(members)))])))
                    }
                }
            }
        }
    }

    /// stream params must be accepted exactly when compute's are (the catalogue streams with the same decoding).
    func checkStream(_ params: JSONValue) throws {
        let streamIssues = try registry.validate(params, against: SchemaBundle.baseURI + "methods/stream.params.json")
        let computeIssues = try registry.validate(params, against: SchemaBundle.baseURI + "methods/compute.params.json")
        #expect(streamIssues.isEmpty == computeIssues.isEmpty)
        var streamed: Result<(rows: Int, cols: Int), OperationError>
        do { streamed = .success(try catalogue.stream(method: "stream", params: params, rowBlock: 1) { _, _ in }) } catch { streamed = .failure(error) }
        switch (streamed, outcome("compute", params)) {
        case (.success, .accepted), (.failure, .rejected): break
        default: Issue.record("stream and compute disagree on \(JSONWriter.string(params))")
        }
        let shape = try registry.validate(["rows": 2, "cols": 1], against: SchemaBundle.baseURI + "methods/stream.result.json")
        #expect(shape.isEmpty)
    }

    @Test func resultSchemasAllowNullForNonFiniteValues() throws {
        // 1/0 → Infinity, written as null.
        try check("elementwise_div", ["data": [[1, 0]], "other": [[0, 0]]])
        try check("max", ["data": .array([.numbers([1, .nan])])])
        try check("max", ["data": .array([.numbers([1, .nan])]), "axis": 0])
        try check("compute", ["data": [[1, 0]], "operation": "multiply", "parameters": ["factor": .number(JSONNumber(.infinity))]])
    }

    @Test func engineInfoSchemas() throws {
        let params = SchemaBundle.baseURI + "methods/engine.info.params.json"
        #expect(try registry.validate([:], against: params).isEmpty)
        #expect(try !registry.validate(["x": 1], against: params).isEmpty)
        let result = SchemaBundle.baseURI + "methods/engine.info.result.json"
        let info: JSONValue = [
            "name": "forzium-engine", "kind": "fallback", "version": "0.1.0", "threads": 1, "simd_width": 1, "isa": "scalar",
            "methods": .array((OperationCatalogue.methodNames + ["stream", "engine.info", "ping"]).map { .string($0) }),
            "schema_digest": .string(SchemaBundle.digest), "max_line_bytes": 268_435_456, "max_elements": 50_000_000,
            "max_in_flight": 4,
        ]
        #expect(try registry.validate(info, against: result).isEmpty)
        var missing = info.objectValue!
        missing["schema_digest"] = nil
        #expect(try !registry.validate(.object(missing), against: result).isEmpty)
        var badKind = info.objectValue!
        badKind["kind"] = "gpu"
        #expect(try !registry.validate(.object(badKind), against: result).isEmpty)
    }

    @Test func pingSchemas() throws {
        let params = SchemaBundle.baseURI + "methods/ping.params.json"
        #expect(try registry.validate([:], against: params).isEmpty)
        #expect(try !registry.validate(["x": 1], against: params).isEmpty)
        let result = SchemaBundle.baseURI + "methods/ping.result.json"
        #expect(try registry.validate(["in_flight": 0], against: result).isEmpty)
        #expect(try !registry.validate(["in_flight": -1], against: result).isEmpty)
        #expect(try !registry.validate([:], against: result).isEmpty)
    }

    @Test func streamRowsNotificationSchema() throws {
        let uri = SchemaBundle.baseURI + "defs/stream-rows.json"
        #expect(try registry.validate(["request": 7, "start": 0, "rows": [[1, 2], [nil, 3]]], against: uri).isEmpty)
        #expect(try !registry.validate(["request": 7, "start": -1, "rows": [[1]]], against: uri).isEmpty)
    }
}
