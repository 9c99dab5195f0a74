import ForziumJSON

/// One operation seen as an Open Inference Protocol (v2) model: its matrix params are the model's input tensors and
/// its other params are read from the inference request's `parameters`.
struct V2Model: Sendable {
    /// The operation (also the engine method).
    var name: String
    /// `$id` of the operation's params schema.
    var paramsSchemaURI: String
    /// Matrix params, in schema order (`data`, `matrix_b`, `other`, `kernel`).
    var inputs: [String]
    /// Matrix params the operation requires.
    var requiredInputs: Set<String>
    /// Scalar params and their descriptions, in schema order.
    var parameters: [(name: String, description: String)]
}

/// The v2 models, derived from the route table (`POST /v1/{operation}` routes) and their params schemas in
/// `schemas/`: a property whose schema refers to `defs/matrix.json` is an input tensor; the others are parameters.
struct V2Catalogue: Sendable {
    let models: [String: V2Model]
    /// Model names in route-table order.
    let names: [String]

    init(routes: RouteTable, files: [(path: String, text: String)]) {
        var models: [String: V2Model] = [:]
        var names: [String] = []
        let texts = Dictionary(files.map { ($0.path, $0.text) }, uniquingKeysWith: { first, _ in first })
        for route in routes.routes where route.handler == .operation {
            guard let method = route.engineMethod, let params = route.params, let uri = route.paramsSchemaURI,
                  let text = texts[params], let schema = try? JSONParser().parse(text),
                  case .object(let properties)? = schema["properties"] else { continue }
            let required = Set((schema["required"]?.arrayValue ?? []).compactMap(\.stringValue))
            var inputs: [String] = []
            var parameters: [(String, String)] = []
            for member in properties.members {
                if let ref = member.value["$ref"]?.stringValue, ref.hasSuffix("defs/matrix.json") {
                    inputs.append(member.key)
                } else {
                    parameters.append((member.key, member.value["description"]?.stringValue ?? ""))
                }
            }
            guard !inputs.isEmpty, models[method] == nil else { continue }
            models[method] = V2Model(name: method, paramsSchemaURI: uri, inputs: inputs,
                                     requiredInputs: required.intersection(inputs), parameters: parameters)
            names.append(method)
        }
        self.models = models
        self.names = names
    }

    /// `GET /v2/models/{model}`.
    func metadata(_ model: V2Model) -> JSONValue {
        func tensor(_ name: String, optional: Bool) -> JSONValue {
            var members: [(key: String, value: JSONValue)] = [
                ("name", .string(name)), ("datatype", .string("FP64")),
                ("shape", .array([JSONValue(-1), JSONValue(-1)])),
            ]
            if optional { members.append(("optional", .bool(true))) }
            return .object(JSONObject(members))
        }
        return .object(JSONObject([
            ("name", .string(model.name)),
            ("versions", .array([.string(V2Catalogue.version)])),
            ("platform", .string("forzium")),
            ("inputs", .array(model.inputs.map { tensor($0, optional: !model.requiredInputs.contains($0)) })),
            ("outputs", .array([tensor("result", optional: false)])),
            ("parameters", .object(JSONObject(model.parameters.map { ($0.name, .string($0.description)) }))),
        ]))
    }

    /// The one version of every model.
    static let version = "1"
}
