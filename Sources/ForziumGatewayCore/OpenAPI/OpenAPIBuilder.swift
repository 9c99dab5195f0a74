import ForziumJSON
import Foundation

/// Builds the OpenAPI 3.1 document from the route table and the schema documents of `schemas/`.
///
/// Every schema file becomes one entry of `components/schemas`, named after its path so generated code reads well
/// (`methods/matmul.params.json` → `MatmulParams`, `defs/matrix.json` → `Matrix`, `defs/parameters/matmul.json` →
/// `MatmulParameters`), `$id`/`$schema` are dropped, and every relative `$ref` (and `discriminator` mapping) is
/// rewritten to `#/components/schemas/<name>` (keeping a JSON Pointer fragment), so the document has no external refs.
public struct OpenAPIBuilder {
    public var routes: RouteTable
    /// Schema documents as (path relative to `schemas/`, JSON text).
    public var files: [(path: String, text: String)]

    public init(routes: RouteTable, files: [(path: String, text: String)]) {
        self.routes = routes
        self.files = files.filter { $0.path.hasSuffix(".json") && $0.path != "openapi.json" }.sorted { $0.path < $1.path }
    }

    /// Component name of a schema file path: without `.json` and the leading `methods/` or `defs/`, the file name then
    /// the folders inward-out, each word (split at `.`, `_`, `-`) capitalised: `methods/engine.info.result.json` →
    /// `EngineInfoResult`, `defs/compute-request/elementwise_add.json` → `ElementwiseAddComputeRequest`.
    public static func componentName(_ path: String) -> String {
        var name = path
        if name.hasSuffix(".json") { name.removeLast(5) }
        if name.hasPrefix("methods/") { name.removeFirst(8) } else if name.hasPrefix("defs/") { name.removeFirst(5) }
        return name.split(separator: "/").reversed().map { segment in
            segment.split(whereSeparator: { $0 == "." || $0 == "_" || $0 == "-" }).map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
        }.joined()
    }

    /// The document, pretty-printed (the form committed as `schemas/openapi.json`).
    public func prettyBytes() throws -> [UInt8] { JSONWriter.bytes(try build(), options: .pretty) }

    public func build() throws -> JSONValue {
        let paths = Set(files.map(\.path))
        var components: [(key: String, value: JSONValue)] = []
        var owners: [String: String] = [:]
        for file in files {
            let document = try JSONParser().parse(file.text)
            let name = Self.componentName(file.path)
            if let other = owners.updateValue(file.path, forKey: name) {
                throw OpenAPIBuilderError(message: "schemas \(other) and \(file.path) would both be the component \(name)")
            }
            components.append((name, rewrite(document, base: file.path, known: paths, topLevel: true)))
        }
        components.sort { $0.key < $1.key }

        var pathItems: [(key: String, value: JSONValue)] = []
        var order: [String] = []
        var byPath: [String: [(key: String, value: JSONValue)]] = [:]
        for route in routes.routes {
            if byPath[route.path] == nil { order.append(route.path) }
            byPath[route.path, default: []].append((route.method.lowercased(), operation(for: route, known: paths)))
        }
        for path in order { pathItems.append((path, .object(JSONObject(byPath[path]!)))) }

        var tags: [String] = []
        for route in routes.routes where !tags.contains(route.tag) { tags.append(route.tag) }
        return .object(JSONObject([
            ("openapi", .string("3.1.0")),
            ("jsonSchemaDialect", .string("https://json-schema.org/draft/2020-12/schema")),
            ("info", .object(JSONObject([
                ("title", .string(routes.title)),
                ("version", .string(routes.version)),
                ("description", .string(routes.description)),
            ]))),
            ("servers", .array([.object(JSONObject([("url", .string("/")), ("description", .string("the gateway that serves this document"))]))])),
            // Keys are optional (only with --api-keys): no key, a bearer token or X-API-Key. Stated once here, so that
            // operations carry no `security` of their own (public routes override it with `[]`) and generators do not
            // take every operation for one that needs credentials.
            ("security", Self.optionalKeySecurity),
            ("tags", .array(tags.map { .object(JSONObject([("name", .string($0))])) })),
            ("paths", .object(JSONObject(pathItems))),
            ("components", .object(JSONObject([
                ("schemas", .object(JSONObject(components))),
                ("securitySchemes", .object(JSONObject([
                    ("bearer", .object(JSONObject([("type", .string("http")), ("scheme", .string("bearer")),
                                                   ("description", .string("API key as a bearer token (only when the gateway runs with --api-keys)"))]))),
                    ("apiKey", .object(JSONObject([("type", .string("apiKey")), ("in", .string("header")), ("name", .string("X-API-Key"))]))),
                ]))),
            ]))),
        ]))
    }

    // MARK: Operations

    private func operation(for route: Route, known: Set<String>) -> JSONValue {
        if route.handler == .v2 { return v2Operation(for: route) }
        var op: [(key: String, value: JSONValue)] = [
            ("operationId", .string(Self.operationID(route))),
            ("tags", .array([.string(route.tag)])),
            ("summary", .string(route.summary)),
            ("description", .string(route.description)),
        ]
        var responses: [(key: String, value: JSONValue)] = []
        if route.isPublic { op.append(("security", .array([]))) }
        switch route.handler {
        case .compute, .operation, .stream:
            let paramsRef = route.params.map { ref(Self.componentName($0)) } ?? .object(JSONObject())
            op.append(("parameters", .array([
                .object(JSONObject([
                    ("name", .string("X-Forzium-Timeout-Ms")), ("in", .string("header")), ("required", .bool(false)),
                    ("description", .string("Deadline in milliseconds (lowers the gateway's --timeout); past it the answer is 504.")),
                    ("schema", .object(JSONObject([("type", .string("integer")), ("minimum", int(1))]))),
                ])),
                .object(JSONObject([
                    ("name", .string("X-Request-ID")), ("in", .string("header")), ("required", .bool(false)),
                    ("description", .string("Echoed on the response; generated when absent.")),
                    ("schema", .object(JSONObject([("type", .string("string"))]))),
                ])),
            ])))
            op.append(("requestBody", .object(JSONObject([
                ("required", .bool(true)),
                ("content", .object(JSONObject([("application/json", .object(JSONObject([("schema", paramsRef)])))]))),
            ]))))
            if route.handler == .stream {
                responses.append(("200", .object(JSONObject([
                    ("description", .string("NDJSON: one `{\"row\", \"values\"}` line per result row, then a `{\"done\": true, ...}` line")),
                    // In OpenAPI 3.1 the schema describes the whole body, which is text; each line is a StreamLine, stated
                    // in the extension `x-item-schema` (OpenAPI 3.2 calls it itemSchema).
                    ("content", .object(JSONObject([("application/x-ndjson", .object(JSONObject([
                        ("schema", .object(JSONObject([
                            ("type", .string("string")),
                            ("description", .string("Newline-delimited JSON: each line one StreamLine (#/components/schemas/StreamLine)")),
                        ]))),
                        ("x-item-schema", ref("StreamLine")),
                    ])))]))),
                ]))))
            } else {
                let resultSchema: JSONValue = route.result.flatMap { known.contains($0) ? ref(Self.componentName($0)) : nil } ?? .object(JSONObject())
                responses.append(("200", .object(JSONObject([
                    ("description", .string("The result, the operation, the engine that ran it and the time taken")),
                    ("headers", .object(JSONObject([("X-Forzium-Engine", .object(JSONObject([
                        ("description", .string("Engine kind that served the request (simd or fallback)")),
                        ("schema", .object(JSONObject([("type", .string("string"))]))),
                    ])))]))),
                    ("content", .object(JSONObject([("application/json", .object(JSONObject([("schema", .object(JSONObject([
                        ("type", .string("object")),
                        ("required", .array(["result", "operation", "engine", "execution_time_ms"].map { .string($0) })),
                        ("properties", .object(JSONObject([
                            ("result", resultSchema),
                            ("operation", .object(JSONObject([("type", .string("string"))]))),
                            ("engine", .object(JSONObject([("type", .string("string"))]))),
                            ("execution_time_ms", .object(JSONObject([("type", .string("number"))]))),
                        ]))),
                    ])))])))]))),
                ]))))
            }
            for (code, text) in [
                ("400", "Malformed JSON (the detail gives line and column)"),
                ("401", "Missing or invalid API key (only with --api-keys)"),
                ("413", "Body over --max-body-bytes, or more elements than the engine accepts"),
                ("415", "Content-Type is not JSON"),
                ("422", "The body does not match the schema, or the engine rejected the params"),
                ("500", "The engine reported an internal error"),
                ("502", "The engine crashed or broke the protocol"),
                ("503", "No engine available, queue full, or breaker open (see Retry-After)"),
                ("504", "The request passed its deadline"),
            ] {
                responses.append((code, problemResponse(text)))
            }
        case .health:
            responses.append(("200", jsonResponse("`{\"status\":\"ok\"}`", schema: ref("Health"))))
        case .ready:
            responses.append(("200", jsonResponse("An engine is ready; body names the engine kind and per-engine state", schema: ref("Readiness"))))
            responses.append(("503", jsonResponse("No engine is ready (starting, crash-looping, or shutting down)", schema: ref("Readiness"))))
        case .info:
            responses.append(("200", jsonResponse("Service name, version, engine and routes", schema: ref("ServiceInfo"))))
        case .metrics:
            responses.append(("200", .object(JSONObject([
                ("description", .string("Prometheus text exposition")),
                ("content", .object(JSONObject([("text/plain", .object(JSONObject([("schema", .object(JSONObject([("type", .string("string"))])))])))]))),
            ]))))
        case .openapi:
            responses.append(("200", jsonResponse("This document", schema: .object(JSONObject([("type", .string("object"))])))))
        case .v2:
            break
        case .docs:
            responses.append(("200", .object(JSONObject([
                ("description", .string("HTML page")),
                ("content", .object(JSONObject([("text/html", .object(JSONObject([("schema", .object(JSONObject([("type", .string("string"))])))])))]))),
            ]))))
        }
        if !route.isPublic, route.handler != .compute, route.handler != .operation, route.handler != .stream {
            responses.append(("401", problemResponse("Missing or invalid API key (only with --api-keys)")))
        }
        op.append(("responses", .object(JSONObject(responses))))
        return .object(JSONObject(op))
    }

    private static func operationID(_ route: Route) -> String {
        let cleaned = route.path.split(separator: "/").joined(separator: "_").replacingOccurrences(of: ".", with: "_")
        return route.method.lowercased() + "_" + (cleaned.isEmpty ? "root" : cleaned)
    }

    private func ref(_ name: String) -> JSONValue { .object(JSONObject([("$ref", .string("#/components/schemas/" + name))])) }
    private func int(_ v: Int) -> JSONValue { .number(JSONNumber(Double(v), literal: String(v))) }

    private func jsonResponse(_ description: String, schema: JSONValue) -> JSONValue {
        .object(JSONObject([
            ("description", .string(description)),
            ("content", .object(JSONObject([("application/json", .object(JSONObject([("schema", schema)])))]))),
        ]))
    }

    private func problemResponse(_ description: String) -> JSONValue {
        .object(JSONObject([
            ("description", .string(description)),
            ("content", .object(JSONObject([("application/problem+json", .object(JSONObject([("schema", ref("Problem"))])))]))),
        ]))
    }

    // MARK: $ref rewriting

    private func rewrite(_ value: JSONValue, base: String, known: Set<String>, topLevel: Bool) -> JSONValue {
        switch value {
        case .object(let object):
            var members: [(key: String, value: JSONValue)] = []
            for member in object.members {
                if topLevel, member.key == "$id" || member.key == "$schema" { continue }
                if member.key == "$ref", case .string(let target) = member.value {
                    members.append(("$ref", .string(rewriteRef(target, base: base))))
                } else if member.key == "discriminator", case .object(let discriminator) = member.value {
                    // OpenAPI's discriminator: its mapping values are references too.
                    members.append(("discriminator", .object(JSONObject(discriminator.members.map { entry in
                        guard entry.key == "mapping", case .object(let mapping) = entry.value else { return entry }
                        return ("mapping", .object(JSONObject(mapping.members.map { target in
                            guard case .string(let reference) = target.value else { return target }
                            return (target.key, .string(rewriteRef(reference, base: base)))
                        })))
                    }))))
                } else {
                    members.append((member.key, rewrite(member.value, base: base, known: known, topLevel: false)))
                }
            }
            return .object(JSONObject(members))
        case .array(let items):
            return .array(items.map { rewrite($0, base: base, known: known, topLevel: false) })
        default:
            return value
        }
    }

    /// `../defs/matrix.json#/x` relative to `methods/matmul.params.json` → `#/components/schemas/matrix/x`.
    func rewriteRef(_ target: String, base: String) -> String {
        var reference = target
        var fragment = ""
        if let hash = reference.firstIndex(of: "#") {
            fragment = String(reference[reference.index(after: hash)...])
            reference = String(reference[..<hash])
        }
        let path: String
        if reference.isEmpty {
            path = base
        } else if reference.hasPrefix(RouteTable.schemaBaseURI) {
            path = String(reference.dropFirst(RouteTable.schemaBaseURI.count))
        } else {
            var parts = base.split(separator: "/").map(String.init)
            parts.removeLast()
            for piece in reference.split(separator: "/").map(String.init) {
                if piece == ".." { if !parts.isEmpty { parts.removeLast() } } else if piece != "." { parts.append(piece) }
            }
            path = parts.joined(separator: "/")
        }
        return "#/components/schemas/" + Self.componentName(path) + fragment
    }

    // MARK: Fixed parts

    /// Requirement alternatives: none, a bearer token, or an `X-API-Key` header.
    static let optionalKeySecurity: JSONValue = .array([
        .object(JSONObject()), .object(JSONObject([("bearer", .array([]))])), .object(JSONObject([("apiKey", .array([]))])),
    ])
}

/// Schema files that cannot become one document (two paths with the same component name).
public struct OpenAPIBuilderError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
