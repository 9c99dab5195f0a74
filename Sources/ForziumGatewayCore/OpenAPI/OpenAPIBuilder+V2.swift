import ForziumJSON
import Foundation

/// The OpenAPI operations of the `/v2` routes (Open Inference Protocol): their schemas are the documents under
/// `schemas/v2/` (`infer-request`, `infer-response`, `model-metadata`, `server-metadata`, `error`, as components
/// named by `componentName`); `{model}` is one of the operations.
extension OpenAPIBuilder {
    func v2Operation(for route: Route) -> JSONValue {
        func object(_ members: [(key: String, value: JSONValue)]) -> JSONValue { .object(JSONObject(members)) }
        /// A reference to the component of `schemas/v2/<file>.json` (named by `componentName`, whatever its scheme).
        func ref(_ file: String) -> JSONValue {
            object([("$ref", .string("#/components/schemas/" + Self.componentName("v2/\(file).json")))])
        }
        func json(_ description: String, _ schema: JSONValue) -> JSONValue {
            object([("description", .string(description)), ("content", object([("application/json", object([("schema", schema)]))]))])
        }
        /// `{"<key>": true}` (and the model's `name`), as the health routes answer.
        func flag(_ key: String, _ description: String, name: Bool = false) -> JSONValue {
            var properties: [(key: String, value: JSONValue)] = []
            if name { properties.append(("name", object([("type", .string("string")), ("description", .string("The model."))]))) }
            properties.append((key, object([("type", .string("boolean")), ("description", .string(description))])))
            return object([
                ("type", .string("object")),
                ("required", .array((name ? ["name", key] : [key]).map { .string($0) })),
                ("properties", object(properties)),
            ])
        }
        let binary = object([("type", .string("string")), ("format", .string("binary"))])
        let headerLength = object([
            ("description", .string("Length in bytes of the JSON part of the body (binary tensor data extension)")),
            ("schema", object([("type", .string("integer")), ("minimum", JSONValue(0))])),
        ])
        let cleaned = route.path.split(separator: "/").map { $0.replacingOccurrences(of: "{", with: "").replacingOccurrences(of: "}", with: "") }
        var op: [(key: String, value: JSONValue)] = [
            ("operationId", .string(route.method.lowercased() + "_" + cleaned.joined(separator: "_"))),
            ("tags", .array([.string(route.tag)])),
            ("summary", .string(route.summary)),
            ("description", .string(route.description)),
        ]
        // Keyed routes take the document's global security (keys optional: none, bearer or X-API-Key); public ones none.
        if route.isPublic { op.append(("security", .array([]))) }
        var parameters: [JSONValue] = []
        if route.path.contains("{model}") {
            let models = routes.routes.filter { $0.handler == .operation }.compactMap(\.engineMethod)
            parameters.append(object([
                ("name", .string("model")), ("in", .string("path")), ("required", .bool(true)),
                ("description", .string("The operation")),
                ("schema", object([("type", .string("string")), ("enum", .array(models.map { .string($0) }))])),
            ]))
        }
        var responses: [(key: String, value: JSONValue)] = []
        switch route.path {
        case "/v2":
            responses.append(("200", json("Server metadata", ref("server-metadata"))))
        case "/v2/health/live":
            responses.append(("200", json("The server is live", flag("live", "Always true while the gateway serves HTTP."))))
        case "/v2/health/ready":
            responses.append(("200", json("Ready", flag("ready", "true: an engine can take work."))))
        case "/v2/models/{model}/ready":
            responses.append(("200", json("Ready", flag("ready", "true: an engine can run the model.", name: true))))
            responses.append(("503", json("No engine is ready", ref("error"))))
        case "/v2/models/{model}":
            responses.append(("200", json("Model metadata", ref("model-metadata"))))
        default:
            parameters.append(object([
                ("name", .string("Inference-Header-Content-Length")), ("in", .string("header")), ("required", .bool(false)),
                ("description", .string("With binary inputs: the length of the JSON part; the inputs' bytes follow it.")),
                ("schema", object([("type", .string("integer")), ("minimum", JSONValue(0))])),
            ]))
            parameters.append(object([
                ("name", .string("X-Forzium-Timeout-Ms")), ("in", .string("header")), ("required", .bool(false)),
                ("description", .string("Deadline in milliseconds (lowers the gateway's --timeout); past it the answer is 504.")),
                ("schema", object([("type", .string("integer")), ("minimum", JSONValue(1))])),
            ]))
            op.append(("requestBody", object([
                ("required", .bool(true)),
                ("content", object([
                    ("application/json", object([("schema", ref("infer-request"))])),
                    ("application/octet-stream", object([("schema", binary)])),
                ])),
            ])))
            responses.append(("200", object([
                ("description", .string("The result: JSON, or the JSON part then the output's bytes (FP64, little-endian, row-major) when a binary output was asked for")),
                ("headers", object([("Inference-Header-Content-Length", headerLength)])),
                ("content", object([
                    ("application/json", object([("schema", ref("infer-response"))])),
                    ("application/octet-stream", object([("schema", binary)])),
                ])),
            ])))
            for (code, text) in [
                ("400", "A request to fix: malformed JSON, schema, unknown input or parameter, shape, datatype or binary size"),
                ("413", "Body over --max-body-bytes, or more elements than the engine accepts"),
                ("415", "A Content-Encoding other than gzip or deflate"),
                ("500", "The engine reported an internal error"),
                ("502", "The engine crashed or broke the protocol"),
                ("504", "The request passed its deadline"),
            ] {
                responses.append((code, json(text, ref("error"))))
            }
            responses.append(("503", json("No engine available or queue full (see Retry-After)", ref("error"))))
        }
        if route.path.contains("{model}") { responses.append(("404", json("Unknown model", ref("error")))) }
        if !route.isPublic { responses.append(("401", json("Missing or invalid API key (only with --api-keys)", ref("error")))) }
        if !parameters.isEmpty { op.append(("parameters", .array(parameters))) }
        op.append(("responses", object(responses)))
        return .object(JSONObject(op))
    }
}
