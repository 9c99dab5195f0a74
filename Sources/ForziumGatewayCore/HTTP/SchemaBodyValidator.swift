import ForziumJSON
import ForziumSchema

/// `BodyValidator` over a `SchemaRegistry` holding every document of `schemas/`.
public struct SchemaBodyValidator: BodyValidator {
    /// The registry with all schema documents, each under `https://forzium.dev/schemas/<path>`.
    public let registry: SchemaRegistry
    /// Most problems reported for one body.
    public var maxIssues = 32
    /// The method schemas, compiled at start: a request looks its validator up here, with no lock (the registry's
    /// cache of validators is shared and locked).
    private let methods: [String: SchemaValidator]

    /// - Parameters:
    ///   - files: schema documents as (path relative to `schemas/`, JSON text), e.g. `SchemaBundle.files`.
    public init(files: [(path: String, text: String)]) throws {
        var registry = SchemaRegistry()
        for file in files where file.path.hasSuffix(".json") && file.path != "openapi.json" {
            let document = try JSONParser().parse(file.text)
            try registry.add(document, uri: RouteTable.schemaBaseURI + file.path)
        }
        self.registry = registry
        // Compile every method schema now, so a broken schema fails at start-up, not on a request.
        var methods: [String: SchemaValidator] = [:]
        for file in files where file.path.hasPrefix("methods/") {
            let uri = RouteTable.schemaBaseURI + file.path
            methods[uri] = try registry.validator(for: uri)
        }
        self.methods = methods
    }

    public func validate(_ body: JSONValue, schemaURI: String) throws -> [PointerIssue] {
        let issues = try methods[schemaURI]?.validate(body, maxIssues: 100) ?? registry.validate(body, against: schemaURI)
        return issues.prefix(maxIssues).map { PointerIssue(pointer: $0.instancePointer, message: $0.message) }
    }
}
