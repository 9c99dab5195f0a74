import ForziumJSON

/// JSON types a `type` keyword can name, as bits.
struct TypeSet: OptionSet, Sendable {
    let rawValue: UInt8
    static let null = TypeSet(rawValue: 1)
    static let boolean = TypeSet(rawValue: 2)
    static let object = TypeSet(rawValue: 4)
    static let array = TypeSet(rawValue: 8)
    static let number = TypeSet(rawValue: 16)
    static let string = TypeSet(rawValue: 32)
    static let integer = TypeSet(rawValue: 64)

    static let names: [(String, TypeSet)] = [
        ("null", .null), ("boolean", .boolean), ("object", .object), ("array", .array),
        ("number", .number), ("string", .string), ("integer", .integer),
    ]

    var names: [String] { Self.names.filter { contains($0.1) }.map(\.0) }
}

/// A compiled pattern (`pattern`, `patternProperties`).
final class Pattern: @unchecked Sendable {
    let source: String
    let regex: Regex<AnyRegexOutput>

    init(_ source: String) throws {
        self.source = source
        self.regex = try Regex(Pattern.translate(source))
    }

    func matches(_ text: String) -> Bool {
        (try? regex.firstMatch(in: text)) != nil
    }

    /// Bridges the ECMA-262 spellings Swift's regex syntax reads differently: `\d` and `\w` are ASCII-only,
    /// `\s` includes U+FEFF, `\cX` is a control character.
    static func translate(_ source: String) -> String {
        var out = ""
        var characters = Array(source)[...]
        var inClass = false
        while let ch = characters.popFirst() {
            if ch == "\\" {
                guard let next = characters.popFirst() else { out.append(ch); break }
                switch next {
                case "d": out += inClass ? "0-9" : "[0-9]"
                case "D": out += inClass ? "\\D" : "[^0-9]"
                case "w": out += inClass ? "a-zA-Z0-9_" : "[a-zA-Z0-9_]"
                case "W": out += inClass ? "\\W" : "[^a-zA-Z0-9_]"
                case "s": out += inClass ? "\\s\\x{FEFF}" : "[\\s\\x{FEFF}]"
                case "S": out += inClass ? "\\S" : "[^\\s\\x{FEFF}]"
                case "c":
                    if let letter = characters.first, letter.isASCII, letter.isLetter, let ascii = letter.asciiValue {
                        characters.removeFirst()
                        out += "\\x{" + String(ascii & 0x1F, radix: 16) + "}"
                    } else {
                        out += "\\c"
                    }
                default: out.append(ch); out.append(next)
                }
                continue
            }
            if ch == "[" { inClass = true } else if ch == "]" { inClass = false }
            out.append(ch)
        }
        return out
    }
}

/// A `$ref` / `$dynamicRef` target, filled in after compilation so cycles work.
final class NodeReference: @unchecked Sendable {
    @exclusivity(unchecked) var node: SchemaNode!
}

/// Bounds a number must satisfy, for checking `.numbers` arrays without building values.
/// Gives the same verdict as the general evaluator for every double, NaN and infinities included.
struct NumberCheck: Sendable {
    var allowed = true       // type allows numbers at all
    var integerOnly = false
    var minimum: Double?
    var maximum: Double?
    var exclusiveMinimum: Double?
    var exclusiveMaximum: Double?
    var multipleOf: Double?

    /// Accepts every number: `{"type": "number"}` and the like need no per-element work.
    var acceptsAll: Bool {
        allowed && !integerOnly && minimum == nil && maximum == nil && exclusiveMinimum == nil
            && exclusiveMaximum == nil && multipleOf == nil
    }

    @inline(__always)
    func accepts(_ x: Double) -> Bool {
        guard allowed else { return false }
        if integerOnly && !(x.isFinite && x.rounded() == x) { return false }
        if let minimum, !(x >= minimum) { return false }
        if let maximum, !(x <= maximum) { return false }
        if let exclusiveMinimum, !(x > exclusiveMinimum) { return false }
        if let exclusiveMaximum, !(x < exclusiveMaximum) { return false }
        if let multipleOf, !isMultiple(x, of: multipleOf) { return false }
        return true
    }
}

@inline(__always)
func isMultiple(_ x: Double, of divisor: Double) -> Bool {
    let quotient = x / divisor
    // An overflowing quotient: the remainder is exact, so ask it instead.
    guard quotient.isFinite else { return x.isFinite && x.truncatingRemainder(dividingBy: divisor) == 0 }
    if quotient == quotient.rounded() { return true }
    return abs(quotient - quotient.rounded()) <= 1e-9 * max(1, abs(quotient))
}

/// One keyword of a compiled schema.
enum Keyword: @unchecked Sendable {
    case type(TypeSet)
    case enumeration([JSONValue])
    case constant(JSONValue)
    case multipleOf(Double)
    case maximum(Double)
    case exclusiveMaximum(Double)
    case minimum(Double)
    case exclusiveMinimum(Double)
    case maxLength(Int)
    case minLength(Int)
    case pattern(Pattern)
    case maxItems(Int)
    case minItems(Int)
    case uniqueItems
    case contains(SchemaNode, min: Int, max: Int?)
    case maxProperties(Int)
    case minProperties(Int)
    case required([String])
    case dependentRequired([(String, [String])])
    case allOf([SchemaNode])
    case anyOf([SchemaNode])
    case oneOf(OneOfGroup)
    case not(SchemaNode)
    case conditional(Conditional)
    case dependentSchemas([(String, SchemaNode)])
    case prefixItems([SchemaNode])
    case items(SchemaNode, start: Int)
    case properties(PropertyTable)
    case patternProperties([(Pattern, SchemaNode)])
    case additionalProperties(SchemaNode, known: PropertyTable?, patterns: [Pattern])
    case propertyNames(SchemaNode)
    case unevaluatedItems(SchemaNode)
    case unevaluatedProperties(SchemaNode)
    case ref(NodeReference)
    /// `$dynamicRef`: the statically resolved target, and when it is a `$dynamicAnchor` bookend, the anchor's
    /// name with the schema each resource (by index) offers for it.
    case dynamicRef(NodeReference, dynamic: DynamicTargets?)
}

/// The subschemas of `properties` by name: a linear scan for the usual handful of names (small strings compare
/// in a few instructions, no hashing), a dictionary beyond that.
final class PropertyTable: @unchecked Sendable {
    let names: [String]
    let nodes: [SchemaNode]
    private let index: [String: Int]?

    /// - Parameter pairs: names with their subschemas; a repeated name keeps its last subschema.
    init(_ pairs: [(String, SchemaNode)]) {
        var names: [String] = []
        var nodes: [SchemaNode] = []
        for (name, node) in pairs {
            if let existing = names.firstIndex(of: name) {
                nodes[existing] = node
            } else {
                names.append(name)
                nodes.append(node)
            }
        }
        self.names = names
        self.nodes = nodes
        index = names.count > 8 ? Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) }) : nil
    }

    /// Names match by code points (Swift's `==` alone would also match canonically equivalent spellings).
    @inline(__always)
    func lookup(_ name: String) -> SchemaNode? {
        if let index {
            guard let i = index[name], sameCodePoints(names[i], name) else { return nil }
            return nodes[i]
        }
        for i in names.indices where sameCodePoints(names[i], name) { return nodes[i] }
        return nil
    }
}

/// The subschemas of a `oneOf`, and when they form a discriminated union, what selects the alternative.
final class OneOfGroup: @unchecked Sendable {
    let nodes: [SchemaNode]
    /// Set after references are resolved (see `OneOfSelector.init`).
    @exclusivity(unchecked) var selector: OneOfSelector?

    init(_ nodes: [SchemaNode]) { self.nodes = nodes }
}

/// A `oneOf` whose every alternative requires the same property with a `const` value, all different (the shape an
/// OpenAPI `discriminator` describes, found from the keywords alone: `discriminator` itself is an annotation).
/// For an object that has the property, every alternative but the one with its value fails on that `const`, so the
/// verdict of the `oneOf` is that alternative's verdict, and its issues are the useful ones to report. Exactly the
/// general verdict.
struct OneOfSelector: Sendable {
    let property: String
    /// The `const` of each alternative, in `oneOf` order.
    let values: [JSONValue]

    init?(_ nodes: [SchemaNode]) {
        guard nodes.count >= 2 else { return nil }
        var constraints: [[(name: String, value: JSONValue)]] = []
        for node in nodes {
            var required: [String] = []
            var constants: [(name: String, value: JSONValue)] = []
            var visiting: Set<ObjectIdentifier> = []
            Self.collect(node, required: &required, constants: &constants, visiting: &visiting)
            constraints.append(constants.filter { pair in required.contains { sameCodePoints($0, pair.name) } })
        }
        for candidate in constraints[0] {
            var values: [JSONValue] = []
            for branch in constraints {
                guard let value = branch.first(where: { sameCodePoints($0.name, candidate.name) })?.value,
                      !values.contains(where: { $0.schemaEquals(value) }) else { break }
                values.append(value)
            }
            if values.count == nodes.count {
                property = candidate.name
                self.values = values
                return
            }
        }
        return nil
    }

    /// The `required` names and `properties` `const`s a node imposes through keywords that must all hold
    /// (its own, those of `$ref` targets and of `allOf` members).
    private static func collect(_ node: SchemaNode, required: inout [String], constants: inout [(name: String, value: JSONValue)],
                                visiting: inout Set<ObjectIdentifier>) {
        guard node.constant == nil, visiting.insert(ObjectIdentifier(node)).inserted else { return }
        for (_, keyword) in node.keywords {
            switch keyword {
            case .required(let names):
                required += names
            case .properties(let table):
                for (name, child) in zip(table.names, table.nodes) where child.constant == nil {
                    for (_, inner) in child.keywords {
                        if case .constant(let value) = inner { constants.append((name, value)) }
                    }
                }
            case .ref(let box):
                if let target = box.node { collect(target, required: &required, constants: &constants, visiting: &visiting) }
            case .allOf(let members):
                for member in members { collect(member, required: &required, constants: &constants, visiting: &visiting) }
            default:
                continue
            }
        }
    }

    /// The alternative an object selects: `.alternative(i)`, `.missing` when it lacks the property, or
    /// `.unknown` when its value is no alternative's.
    enum Choice { case alternative(Int), missing, unknown(JSONValue) }

    func choose(_ object: JSONObject) -> Choice {
        guard let value = object.member(named: property) else { return .missing }
        guard let index = values.firstIndex(where: { $0.schemaEquals(value) }) else { return .unknown(value) }
        return .alternative(index)
    }
}

/// `if` / `then` / `else` (one reference, so walking a node's keywords copies one pointer, not four).
final class Conditional: @unchecked Sendable {
    let condition: SchemaNode
    let then: SchemaNode?
    let otherwise: SchemaNode?
    /// Set when `condition` has the discriminator shape (see `QuickCondition`).
    let quick: QuickCondition?

    init(condition: SchemaNode, then: SchemaNode?, otherwise: SchemaNode?) {
        self.condition = condition
        self.then = then
        self.otherwise = otherwise
        self.quick = QuickCondition(condition)
    }
}

/// An `if` of the discriminator shape `{"properties": {"op": {"const": "x"}}, "required": ["op"]}` (`const` or
/// `enum` members only, plus `required`), decided by direct lookups instead of a full evaluation.
/// Exactly the general verdict: non-objects satisfy it, absent members are not checked, required ones must exist.
final class QuickCondition: @unchecked Sendable {
    let allowed: [(name: String, values: [JSONValue])]
    let required: [String]

    init?(_ node: SchemaNode) {
        guard node.constant == nil else { return nil }
        var allowed: [(String, [JSONValue])] = []
        var required: [String] = []
        for (_, keyword) in node.keywords {
            switch keyword {
            case .properties(let table):
                for (name, child) in zip(table.names, table.nodes) {
                    guard child.constant == nil, child.keywords.count == 1 else { return nil }
                    switch child.keywords[0].keyword {
                    case .constant(let value): allowed.append((name, [value]))
                    case .enumeration(let values): allowed.append((name, values))
                    default: return nil
                    }
                }
            case .required(let names):
                required += names
            default:
                return nil
            }
        }
        self.allowed = allowed
        self.required = required
    }

    func holds(for value: JSONValue) -> Bool {
        guard case .object(let object) = value else { return true }
        for name in required where !object.hasMember(name) { return false }
        for i in allowed.indices {
            guard let member = object.member(named: allowed[i].name) else { continue }
            if !allowed[i].values.contains(where: { $0.schemaEquals(member) }) { return false }
        }
        return true
    }
}

final class DynamicTargets: @unchecked Sendable {
    var byResource: [Int: SchemaNode] = [:]
}

/// A compiled schema (object or boolean).
///
/// Its `var`s are set while the compiler builds the graph (cycles through `$ref` need the nodes before their
/// contents), then only read, by any number of validations at once: they are exempt from dynamic exclusivity checks
/// (`@exclusivity(unchecked)`), which otherwise cost a quarter of a small body's validation. The same holds for
/// `NodeReference.node` and `OneOfGroup.selector`.
final class SchemaNode: @unchecked Sendable {
    /// Index of the schema resource it belongs to (for the dynamic scope).
    let resource: Int
    /// Absolute location, for diagnostics.
    let location: String
    /// `true`/`false` schemas; nil for object schemas.
    @exclusivity(unchecked) var constant: Bool?
    /// Keywords with the JSON Pointer segment(s) naming them, unevaluated* last.
    @exclusivity(unchecked) var keywords: [(path: String, keyword: Keyword)] = []
    /// Set when every keyword can be checked on a bare number: the `.numbers` fast path.
    @exclusivity(unchecked) var numberCheck: NumberCheck?
    /// Set when the node's only keyword is a discriminator `if` (with `then`/`else`): lets a non-matching
    /// branch of a large `allOf` of such conditions be skipped without entering the node.
    @exclusivity(unchecked) var soleConditional: Conditional?

    init(resource: Int, location: String) {
        self.resource = resource
        self.location = location
    }
}
