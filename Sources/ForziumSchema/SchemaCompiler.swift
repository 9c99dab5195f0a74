import ForziumJSON

/// Turns registered schema JSON into `SchemaNode` graphs, resolving every reference up front.
struct SchemaCompiler {
    let index: SchemaIndex
    private var nodes: [String: SchemaNode] = [:]
    private var resourceIDs: [String: Int] = [:]
    private var pendingReferences: [(NodeReference, String, String)] = []  // (box, target URI, location of $ref)
    private var dynamicTargets: [(DynamicTargets, String)] = []           // (targets, anchor name)
    private var vocabularyCache: [String: Bool] = [:]
    private var oneOfGroups: [OneOfGroup] = []
    /// Set when an `unevaluatedItems` / `unevaluatedProperties` keyword was compiled.
    private(set) var usesUnevaluated = false

    static let validationVocabulary = "https://json-schema.org/draft/2020-12/vocab/validation"

    init(index: SchemaIndex) {
        self.index = index
    }

    /// Compiles the schema at an absolute URI (with optional fragment), then everything it refers to.
    mutating func compile(reference uri: String) throws -> SchemaNode {
        guard let location = index.locate(uri) else {
            throw SchemaError(kind: .unknownSchema, location: uri, message: "no schema is registered under \(uri)")
        }
        let root = try node(at: location)
        try finish()
        return root
    }

    /// Resolves references until none are left (new nodes can add more), then offers every `$dynamicRef`
    /// the matching `$dynamicAnchor` of each resource the graph can enter.
    private mutating func finish() throws {
        var changed = true
        while changed {
            changed = false
            while let (box, target, from) = pendingReferences.popLast() {
                guard let location = index.locate(target) else {
                    throw SchemaError(kind: .unresolvableReference, location: from, message: "cannot resolve reference \(target)")
                }
                box.node = try node(at: location)
            }
            for (targets, name) in dynamicTargets {
                for (resource, id) in resourceIDs where targets.byResource[id] == nil {
                    guard let location = index.dynamicAnchors[resource]?[name] else { continue }
                    targets.byResource[id] = try node(at: location)
                    changed = true
                }
            }
            if !pendingReferences.isEmpty { changed = true }
        }
        for group in oneOfGroups where group.selector == nil { group.selector = OneOfSelector(group.nodes) }
        for node in nodes.values where node.numberCheck == nil {
            var visiting: Set<ObjectIdentifier> = []
            node.numberCheck = Self.numberCheck(for: node, visiting: &visiting)
        }
    }

    private mutating func resourceID(_ uri: String) -> Int {
        if let id = resourceIDs[uri] { return id }
        let id = resourceIDs.count
        resourceIDs[uri] = id
        return id
    }

    private func invalid(_ location: String, _ message: String) -> SchemaError {
        SchemaError(kind: .invalidSchema, location: location, message: message)
    }

    /// Whether the validation vocabulary applies in a resource (its `$schema` may name a metaschema
    /// whose `$vocabulary` leaves it out).
    private mutating func validationEnabled(resourceRoot: JSONObject, base: String) -> Bool {
        guard case .string(let metaURI)? = resourceRoot["$schema"] else { return true }
        if let cached = vocabularyCache[metaURI] { return cached }
        var enabled = true
        if let location = index.locate(URIText.splitFragment(metaURI).base),
           case .object(let meta)? = index.value(at: location),
           case .object(let vocabularies)? = meta["$vocabulary"] {
            enabled = vocabularies[Self.validationVocabulary] != nil
        }
        vocabularyCache[metaURI] = enabled
        return enabled
    }

    mutating func node(at location: String) throws -> SchemaNode {
        if let existing = nodes[location] { return existing }
        guard let value = index.value(at: location) else {
            throw SchemaError(kind: .unresolvableReference, location: location, message: "no value at \(location)")
        }
        let base = index.base(of: location)
        let node = SchemaNode(resource: resourceID(base), location: location)
        nodes[location] = node
        switch value {
        case .bool(let b):
            node.constant = b
        case .object(let object):
            try fill(node, from: object, location: location, base: base)
        default:
            throw invalid(location, "a schema must be an object or a boolean, got \(value.schemaKind.rawValue)")
        }
        return node
    }

    private mutating func child(_ location: String, _ path: String) throws -> SchemaNode {
        try node(at: location + path)
    }

    // MARK: keyword values

    private func nonNegativeInteger(_ value: JSONValue, _ location: String, _ name: String) throws -> Int {
        guard case .number(let n) = value, n.value >= 0, n.value == n.value.rounded(), n.value < 9e15 else {
            throw invalid(location, "\(name) must be a non-negative integer")
        }
        return Int(n.value)
    }

    private func number(_ value: JSONValue, _ location: String, _ name: String) throws -> Double {
        guard case .number(let n) = value else { throw invalid(location, "\(name) must be a number") }
        return n.value
    }

    private func stringArray(_ value: JSONValue, _ location: String, _ name: String) throws -> [String] {
        guard let items = ArrayView(value) else { throw invalid(location, "\(name) must be an array of strings") }
        return try (0..<items.count).map { i in
            guard case .string(let s) = items[i] else { throw invalid(location, "\(name) must be an array of strings") }
            return s
        }
    }

    private func typeSet(_ value: JSONValue, _ location: String) throws -> TypeSet {
        func one(_ name: String) throws -> TypeSet {
            guard let entry = TypeSet.names.first(where: { $0.0 == name }) else {
                throw invalid(location, "unknown type \(quoted(name))")
            }
            return entry.1
        }
        switch value {
        case .string(let name): return try one(name)
        case .array(let items):
            var set: TypeSet = []
            for item in items {
                guard case .string(let name) = item else { throw invalid(location, "type must be a string or an array of strings") }
                set.insert(try one(name))
            }
            return set
        default:
            throw invalid(location, "type must be a string or an array of strings")
        }
    }

    private func pattern(_ source: String, _ location: String) throws -> Pattern {
        do {
            return try Pattern(source)
        } catch {
            throw invalid(location, "invalid regular expression \(quoted(source))")
        }
    }

    private mutating func schemaArray(_ value: JSONValue, _ location: String, _ name: String) throws -> [SchemaNode] {
        guard case .array(let items) = value, !items.isEmpty else {
            throw invalid(location, "\(name) must be a non-empty array of schemas")
        }
        return try items.indices.map { try child(location, "/\(name)/\($0)") }
    }

    // MARK: filling a node

    private mutating func fill(_ node: SchemaNode, from object: JSONObject, location: String, base: String) throws {
        let keys = object.uniqueMembers
        var keywords: [(String, Keyword)] = []
        var resourceRoot = object
        if let rootLocation = index.resources[base], case .object(let root)? = index.value(at: rootLocation) {
            resourceRoot = root
        }
        let validation = validationEnabled(resourceRoot: resourceRoot, base: base)
        func escaped(_ key: String) -> String { "/" + JSONPointer.escape(key) }

        // Core: references.
        if let ref = keys["$ref"] {
            guard case .string(let text) = ref else { throw invalid(location, "$ref must be a string") }
            let box = NodeReference()
            pendingReferences.append((box, URIText.resolve(text, against: base), location))
            keywords.append(("/$ref", .ref(box)))
        }
        if let ref = keys["$dynamicRef"] {
            guard case .string(let text) = ref else { throw invalid(location, "$dynamicRef must be a string") }
            let target = URIText.resolve(text, against: base)
            let box = NodeReference()
            pendingReferences.append((box, target, location))
            var dynamic: DynamicTargets?
            if let fragment = URIText.splitFragment(target).fragment, !fragment.isEmpty, !fragment.hasPrefix("/"),
               let staticLocation = index.locate(target),
               index.dynamicAnchors[index.base(of: staticLocation)]?[fragment] == staticLocation {
                let targets = DynamicTargets()
                dynamicTargets.append((targets, fragment))
                dynamic = targets
            }
            keywords.append(("/$dynamicRef", .dynamicRef(box, dynamic: dynamic)))
        }

        if validation {
            if let value = keys["type"] { keywords.append(("/type", .type(try typeSet(value, location)))) }
            if let value = keys["enum"] {
                guard let items = ArrayView(value) else { throw invalid(location, "enum must be an array") }
                keywords.append(("/enum", .enumeration((0..<items.count).map { items[$0] })))
            }
            if let value = keys["const"] { keywords.append(("/const", .constant(value))) }
            if let value = keys["multipleOf"] {
                let divisor = try number(value, location, "multipleOf")
                guard divisor > 0 else { throw invalid(location, "multipleOf must be greater than 0") }
                keywords.append(("/multipleOf", .multipleOf(divisor)))
            }
            if let value = keys["maximum"] { keywords.append(("/maximum", .maximum(try number(value, location, "maximum")))) }
            if let value = keys["exclusiveMaximum"] { keywords.append(("/exclusiveMaximum", .exclusiveMaximum(try number(value, location, "exclusiveMaximum")))) }
            if let value = keys["minimum"] { keywords.append(("/minimum", .minimum(try number(value, location, "minimum")))) }
            if let value = keys["exclusiveMinimum"] { keywords.append(("/exclusiveMinimum", .exclusiveMinimum(try number(value, location, "exclusiveMinimum")))) }
            if let value = keys["maxLength"] { keywords.append(("/maxLength", .maxLength(try nonNegativeInteger(value, location, "maxLength")))) }
            if let value = keys["minLength"] { keywords.append(("/minLength", .minLength(try nonNegativeInteger(value, location, "minLength")))) }
            if let value = keys["pattern"] {
                guard case .string(let source) = value else { throw invalid(location, "pattern must be a string") }
                keywords.append(("/pattern", .pattern(try pattern(source, location))))
            }
            if let value = keys["maxItems"] { keywords.append(("/maxItems", .maxItems(try nonNegativeInteger(value, location, "maxItems")))) }
            if let value = keys["minItems"] { keywords.append(("/minItems", .minItems(try nonNegativeInteger(value, location, "minItems")))) }
            if case .bool(true)? = keys["uniqueItems"] { keywords.append(("/uniqueItems", .uniqueItems)) }
            if let value = keys["maxProperties"] { keywords.append(("/maxProperties", .maxProperties(try nonNegativeInteger(value, location, "maxProperties")))) }
            if let value = keys["minProperties"] { keywords.append(("/minProperties", .minProperties(try nonNegativeInteger(value, location, "minProperties")))) }
            if let value = keys["required"] { keywords.append(("/required", .required(try stringArray(value, location, "required")))) }
            if let value = keys["dependentRequired"] {
                guard case .object(let map) = value else { throw invalid(location, "dependentRequired must be an object") }
                let pairs = try map.members.map { ($0.key, try stringArray($0.value, location, "dependentRequired")) }
                keywords.append(("/dependentRequired", .dependentRequired(pairs)))
            }
        }

        // Applicators.
        if let value = keys["allOf"] { keywords.append(("/allOf", .allOf(try schemaArray(value, location, "allOf")))) }
        if let value = keys["anyOf"] { keywords.append(("/anyOf", .anyOf(try schemaArray(value, location, "anyOf")))) }
        if let value = keys["oneOf"] {
            let group = OneOfGroup(try schemaArray(value, location, "oneOf"))
            oneOfGroups.append(group)
            keywords.append(("/oneOf", .oneOf(group)))
        }
        if keys["not"] != nil { keywords.append(("/not", .not(try child(location, "/not")))) }
        if keys["if"] != nil {
            let condition = try child(location, "/if")
            let then = keys["then"] == nil ? nil : try child(location, "/then")
            let otherwise = keys["else"] == nil ? nil : try child(location, "/else")
            keywords.append(("", .conditional(Conditional(condition: condition, then: then, otherwise: otherwise))))
        }
        if let value = keys["dependentSchemas"] {
            guard case .object(let map) = value else { throw invalid(location, "dependentSchemas must be an object") }
            let pairs = try map.members.map { ($0.key, try child(location, "/dependentSchemas" + escaped($0.key))) }
            keywords.append(("/dependentSchemas", .dependentSchemas(pairs)))
        }
        if let value = keys["dependencies"] {
            // The pre-2019 spelling of dependentRequired (array values) and dependentSchemas (schema values).
            guard case .object(let map) = value else { throw invalid(location, "dependencies must be an object") }
            var required: [(String, [String])] = []
            var schemas: [(String, SchemaNode)] = []
            for member in map.members {
                switch member.value {
                case .array: required.append((member.key, try stringArray(member.value, location, "dependencies")))
                default: schemas.append((member.key, try child(location, "/dependencies" + escaped(member.key))))
                }
            }
            if !required.isEmpty && validation { keywords.append(("/dependencies", .dependentRequired(required))) }
            if !schemas.isEmpty { keywords.append(("/dependencies", .dependentSchemas(schemas))) }
        }
        var prefixCount = 0
        if let value = keys["prefixItems"] {
            let nodes = try schemaArray(value, location, "prefixItems")
            prefixCount = nodes.count
            keywords.append(("/prefixItems", .prefixItems(nodes)))
        }
        if keys["items"] != nil { keywords.append(("/items", .items(try child(location, "/items"), start: prefixCount))) }
        if keys["contains"] != nil {
            let minimum = try keys["minContains"].map { try nonNegativeInteger($0, location, "minContains") } ?? 1
            let maximum = try keys["maxContains"].map { try nonNegativeInteger($0, location, "maxContains") }
            keywords.append(("/contains", .contains(try child(location, "/contains"), min: validation ? minimum : 1, max: validation ? maximum : nil)))
        }
        var known: PropertyTable?
        if let value = keys["properties"] {
            guard case .object(let map) = value else { throw invalid(location, "properties must be an object") }
            let table = PropertyTable(try map.members.map { ($0.key, try child(location, "/properties" + escaped($0.key))) })
            known = table
            keywords.append(("/properties", .properties(table)))
        }
        var patterns: [Pattern] = []
        if let value = keys["patternProperties"] {
            guard case .object(let map) = value else { throw invalid(location, "patternProperties must be an object") }
            var pairs: [(Pattern, SchemaNode)] = []
            for member in map.members {
                let compiled = try pattern(member.key, location)
                patterns.append(compiled)
                pairs.append((compiled, try child(location, "/patternProperties" + escaped(member.key))))
            }
            keywords.append(("/patternProperties", .patternProperties(pairs)))
        }
        if keys["additionalProperties"] != nil {
            keywords.append(("/additionalProperties", .additionalProperties(try child(location, "/additionalProperties"), known: known, patterns: patterns)))
        }
        if keys["propertyNames"] != nil { keywords.append(("/propertyNames", .propertyNames(try child(location, "/propertyNames")))) }
        // Compile $defs too, so a bad definition is reported even when unused.
        if case .object(let defs)? = keys["$defs"] {
            for member in defs.members { _ = try child(location, "/$defs" + escaped(member.key)) }
        } else if let defs = keys["$defs"] {
            throw invalid(location, "$defs must be an object, got \(defs.schemaKind.rawValue)")
        }
        // Unevaluated: after everything else.
        if keys["unevaluatedItems"] != nil || keys["unevaluatedProperties"] != nil { usesUnevaluated = true }
        if keys["unevaluatedItems"] != nil { keywords.append(("/unevaluatedItems", .unevaluatedItems(try child(location, "/unevaluatedItems")))) }
        if keys["unevaluatedProperties"] != nil { keywords.append(("/unevaluatedProperties", .unevaluatedProperties(try child(location, "/unevaluatedProperties")))) }
        node.keywords = keywords
        if keywords.count == 1, case .conditional(let conditional) = keywords[0].1, conditional.quick != nil {
            node.soleConditional = conditional
        }
    }

    // MARK: the `.numbers` fast path

    /// The bounds a node imposes on a bare number, or nil when it needs the general evaluator.
    static func numberCheck(for node: SchemaNode, visiting: inout Set<ObjectIdentifier>) -> NumberCheck? {
        if let constant = node.constant { return NumberCheck(allowed: constant) }
        if let cached = node.numberCheck { return cached }
        guard visiting.insert(ObjectIdentifier(node)).inserted else { return nil }
        defer { visiting.remove(ObjectIdentifier(node)) }
        var check = NumberCheck()
        for (_, keyword) in node.keywords {
            switch keyword {
            case .type(let types):
                if !types.contains(.number) {
                    if types.contains(.integer) { check.integerOnly = true } else { check.allowed = false }
                }
            case .multipleOf(let divisor):
                guard check.multipleOf == nil else { return nil }
                check.multipleOf = divisor
            case .maximum(let value): check.maximum = min(check.maximum ?? value, value)
            case .minimum(let value): check.minimum = max(check.minimum ?? value, value)
            case .exclusiveMaximum(let value): check.exclusiveMaximum = min(check.exclusiveMaximum ?? value, value)
            case .exclusiveMinimum(let value): check.exclusiveMinimum = max(check.exclusiveMinimum ?? value, value)
            case .ref(let box):
                guard let inner = numberCheck(for: box.node, visiting: &visiting), check.combine(inner) else { return nil }
            case .allOf(let nodes):
                for inner in nodes {
                    guard let innerCheck = numberCheck(for: inner, visiting: &visiting), check.combine(innerCheck) else { return nil }
                }
            case .enumeration, .constant, .anyOf, .oneOf, .not, .conditional, .dynamicRef:
                return nil
            default:
                continue  // keywords that ignore numbers
            }
        }
        return check
    }
}

extension NumberCheck {
    init(allowed: Bool) {
        self.init()
        self.allowed = allowed
    }

    /// Tightens `self` by `other`; false when the two cannot be expressed as one check.
    mutating func combine(_ other: NumberCheck) -> Bool {
        allowed = allowed && other.allowed
        integerOnly = integerOnly || other.integerOnly
        if let value = other.minimum { minimum = max(minimum ?? value, value) }
        if let value = other.maximum { maximum = min(maximum ?? value, value) }
        if let value = other.exclusiveMinimum { exclusiveMinimum = max(exclusiveMinimum ?? value, value) }
        if let value = other.exclusiveMaximum { exclusiveMaximum = min(exclusiveMaximum ?? value, value) }
        if let value = other.multipleOf {
            if multipleOf != nil { return false }
            multipleOf = value
        }
        return true
    }
}
