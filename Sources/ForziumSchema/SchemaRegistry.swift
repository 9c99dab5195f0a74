import ForziumJSON
import Foundation

/// One reason an instance failed validation.
public struct ValidationIssue: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// JSON Pointer into the instance (`""` is the whole instance, `/data/1/0` an element).
    public var instancePointer: String
    /// JSON Pointer of the failing keyword, following `$ref`s by name from the schema validated against
    /// (e.g. `/properties/data/$ref/items/type`).
    public var keywordLocation: String
    /// What is wrong, in plain words (e.g. `expected number, got string`).
    public var message: String

    public init(instancePointer: String, keywordLocation: String, message: String) {
        self.instancePointer = instancePointer
        self.keywordLocation = keywordLocation
        self.message = message
    }

    public var description: String {
        "\(instancePointer.isEmpty ? "(root)" : instancePointer): \(message) [\(keywordLocation)]"
    }
}

/// A schema that cannot be used: malformed keyword values, references that lead nowhere, unknown URIs.
public struct SchemaError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// A keyword has a value the specification does not allow (e.g. `"minLength": -1`, a bad regex).
        case invalidSchema
        /// A `$ref` / `$dynamicRef` names a URI or fragment that is not in the registry.
        case unresolvableReference
        /// `validate(_:against:)` / `validator(for:)` was given a URI the registry does not know.
        case unknownSchema
    }

    public var kind: Kind
    /// Absolute location of the offending schema (`uri#/json/pointer`) or the URI asked for.
    public var location: String
    public var message: String

    public init(kind: Kind, location: String, message: String) {
        self.kind = kind
        self.location = location
        self.message = message
    }

    public var description: String { "\(message) (at \(location))" }
}

/// A set of JSON Schema 2020-12 documents that may refer to one another by URI.
///
/// Add every document (with the URI it is retrieved from; an `$id` inside it is honoured too), then
/// validate against any of their URIs. `validator(for:)` compiles once and gives a reusable, thread-safe
/// validator; `validate(_:against:)` does the same through a per-registry cache.
public struct SchemaRegistry: Sendable {
    var index = SchemaIndex()
    private var cache = ValidatorCache()

    /// A registry holding only the 2020-12 metaschema (`https://json-schema.org/draft/2020-12/schema`).
    public init() {
        index.addDocument(Metaschema.document, uri: Metaschema.uri)
    }

    /// The URI of the built-in 2020-12 metaschema; validate a schema against it to check its shape.
    public static let metaschemaURI = Metaschema.uri

    /// Registers `document` under `uri` (and under every `$id`, `$anchor` and `$dynamicAnchor` in it).
    /// - Throws: `SchemaError.invalidSchema` when the URI is not absolute or the document is not a schema.
    public mutating func add(_ document: JSONValue, uri: String) throws {
        let (base, fragment) = URIText.splitFragment(uri)
        guard fragment == nil || fragment == "" else {
            throw SchemaError(kind: .invalidSchema, location: uri, message: "a document URI must not have a fragment")
        }
        guard URIReference(parsing: base).scheme != nil else {
            throw SchemaError(kind: .invalidSchema, location: uri, message: "a document URI must be absolute (have a scheme)")
        }
        switch document {
        case .object, .bool: break
        default:
            throw SchemaError(kind: .invalidSchema, location: uri, message: "a schema must be an object or a boolean, got \(document.schemaKind.rawValue)")
        }
        index.addDocument(document, uri: base)
        cache = ValidatorCache()
    }

    /// Parses `text` with ForziumJSON's parser and registers it under `uri`.
    /// - Throws: `SchemaError.invalidSchema` for malformed JSON (with line and column) or a non-schema value.
    public mutating func add(jsonText text: String, uri: String) throws {
        let document: JSONValue
        do {
            document = try JSONParser().parse(text)
        } catch {
            throw SchemaError(kind: .invalidSchema, location: uri, message: "schema is not valid JSON: \(error)")
        }
        try add(document, uri: uri)
    }

    /// URIs of the documents added so far (the built-in metaschema first).
    public var documentURIs: [String] { index.order }

    /// True when a document or embedded resource is registered under `uri`.
    public func contains(_ uri: String) -> Bool {
        index.resources[URIText.splitFragment(uri).base] != nil
    }

    /// Compiles the schema at `uri` (a document URI, optionally with a `#/pointer` or `#anchor` fragment).
    /// - Throws: `SchemaError` for an unknown URI, an invalid schema, or an unresolvable reference.
    public func validator(for uri: String) throws -> SchemaValidator {
        if let cached = cache.lookup(uri) { return cached }
        var compiler = SchemaCompiler(index: index)
        let root = try compiler.compile(reference: uri)
        let validator = SchemaValidator(root: root, tracksAnnotations: compiler.usesUnevaluated)
        cache.store(validator, for: uri)
        return validator
    }

    /// Validates `instance` against the schema at `uri`; an empty result means valid.
    /// At most `maxIssues` issues are returned (see `SchemaValidator.validate(_:maxIssues:)`).
    public func validate(_ instance: JSONValue, against uri: String, maxIssues: Int = 100) throws -> [ValidationIssue] {
        try validator(for: uri).validate(instance, maxIssues: maxIssues)
    }
}

/// Compiled validators by URI, shared by copies of a registry until it changes.
final class ValidatorCache: @unchecked Sendable {
    private let lock = NSLock()
    private var validators: [String: SchemaValidator] = [:]

    func lookup(_ uri: String) -> SchemaValidator? {
        lock.lock(); defer { lock.unlock() }
        return validators[uri]
    }

    func store(_ validator: SchemaValidator, for uri: String) {
        lock.lock(); defer { lock.unlock() }
        validators[uri] = validator
    }
}

/// Where every schema resource, anchor and subschema of the registered documents lives.
///
/// A location is written `documentURI#jsonPointer` (the pointer escaped per RFC 6901, not percent-encoded).
struct SchemaIndex: Sendable {
    /// Document URI → its root value.
    var documents: [String: JSONValue] = [:]
    /// Absolute URI (no fragment) of a document or an `$id` resource → location of its root.
    var resources: [String: String] = [:]
    /// `resourceURI#name` → location, for `$anchor` and `$dynamicAnchor`.
    var anchors: [String: String] = [:]
    /// Resource URI → names of its `$dynamicAnchor`s → location.
    var dynamicAnchors: [String: [String: String]] = [:]
    /// Location of each known subschema → the base URI in effect there (its resource).
    var bases: [String: String] = [:]

    /// Keywords whose value is one subschema.
    static let singleSchemaKeywords: Set<String> = [
        "additionalProperties", "propertyNames", "items", "contains", "not", "if", "then", "else",
        "unevaluatedItems", "unevaluatedProperties", "contentSchema",
    ]
    /// Keywords whose value is an array of subschemas.
    static let arraySchemaKeywords: Set<String> = ["allOf", "anyOf", "oneOf", "prefixItems"]
    /// Keywords whose value is an object of subschemas.
    static let mapSchemaKeywords: Set<String> = ["properties", "patternProperties", "$defs", "dependentSchemas", "dependencies"]

    /// Document URIs in the order they were added (re-adding one replaces it in place).
    var order: [String] = []

    mutating func addDocument(_ document: JSONValue, uri: String) {
        if documents[uri] != nil {
            // Replacing a document: rebuild so none of the old version's ids and anchors linger.
            var rebuilt = SchemaIndex()
            for other in order {
                rebuilt.addDocument(other == uri ? document : documents[other]!, uri: other)
            }
            self = rebuilt
            return
        }
        order.append(uri)
        documents[uri] = document
        resources[uri] = uri + "#"
        walk(document, document: uri, pointer: "", base: uri)
    }

    private mutating func walk(_ schema: JSONValue, document: String, pointer: String, base: String) {
        let location = document + "#" + pointer
        guard case .object(let object) = schema else {
            bases[location] = base
            return
        }
        var base = base
        if case .string(let id)? = object["$id"] {
            let resolved = URIText.splitFragment(URIText.resolve(id, against: base)).base
            base = resolved
            resources[resolved] = location
        }
        bases[location] = base
        if case .string(let name)? = object["$anchor"] {
            anchors[base + "#" + name] = location
        }
        if case .string(let name)? = object["$dynamicAnchor"] {
            anchors[base + "#" + name] = anchors[base + "#" + name] ?? location
            dynamicAnchors[base, default: [:]][name] = location
        }
        for (key, value) in object.members {
            let child = pointer + "/" + JSONPointer.escape(key)
            if Self.singleSchemaKeywords.contains(key) {
                walk(value, document: document, pointer: child, base: base)
            } else if Self.arraySchemaKeywords.contains(key), case .array(let items) = value {
                for (i, item) in items.enumerated() {
                    walk(item, document: document, pointer: child + "/\(i)", base: base)
                }
            } else if Self.mapSchemaKeywords.contains(key), case .object(let map) = value {
                for member in map.members {
                    walk(member.value, document: document, pointer: child + "/" + JSONPointer.escape(member.key), base: base)
                }
            }
        }
    }

    /// The value at a location.
    func value(at location: String) -> JSONValue? {
        let (document, pointer) = URIText.splitFragment(location)
        guard let root = documents[document] else { return nil }
        return JSONPointer.resolve(pointer ?? "", in: root)
    }

    /// The base URI in effect at a location (falls back to the nearest indexed ancestor).
    func base(of location: String) -> String {
        if let base = bases[location] { return base }
        let (document, pointer) = URIText.splitFragment(location)
        var tokens = Array((pointer ?? "").split(separator: "/", omittingEmptySubsequences: false))
        while !tokens.isEmpty {
            tokens.removeLast()
            if let base = bases[document + "#" + tokens.joined(separator: "/")] { return base }
        }
        return document
    }

    /// Location a (resolved, absolute) URI with optional fragment designates.
    func locate(_ uri: String) -> String? {
        let (base, fragment) = URIText.splitFragment(uri)
        guard let root = resources[base] else { return nil }
        guard let fragment, !fragment.isEmpty else { return root }
        guard let decoded = URIText.percentDecode(fragment) else { return nil }
        if decoded.hasPrefix("/") {
            let location = root + decoded
            return value(at: location) == nil ? nil : location
        }
        return anchors[base + "#" + decoded]
    }
}
