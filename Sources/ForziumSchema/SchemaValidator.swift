import ForziumJSON

/// A compiled schema: validate many instances against it, from any thread.
public struct SchemaValidator: Sendable {
    let root: SchemaNode
    /// Whether any `unevaluatedItems` / `unevaluatedProperties` is reachable (else annotations are not collected).
    let tracksAnnotations: Bool

    /// How deep `$ref` chains and nesting may go before evaluation stops (guards against schema loops).
    public static let maximumDepth = 400

    /// The reasons `instance` is invalid, in instance order, at most `maxIssues` of them; empty when valid.
    /// (The verdict never depends on the cap: a 512×512 matrix of strings still costs two passes — the verdict, then
    /// the messages up to the cap — not 262,144 messages.)
    public func validate(_ instance: JSONValue, maxIssues: Int = 100) -> [ValidationIssue] {
        // Most instances are valid: a verdict-only pass (no locations kept) settles them; an invalid one is evaluated
        // again for its messages and locations.
        if isValid(instance) { return [] }
        var context = Evaluation(tracksAnnotations: tracksAnnotations, tracksLocations: true)
        context.issueLimit = max(1, maxIssues)
        var annotations = Annotations()
        _ = context.evaluate(root, instance, &annotations)
        return context.issues
    }

    /// Whether `instance` is valid (stops collecting messages; same verdict as `validate(_:).isEmpty`).
    public func isValid(_ instance: JSONValue) -> Bool {
        var context = Evaluation(tracksAnnotations: tracksAnnotations, tracksLocations: false)
        var annotations = Annotations()
        return context.evaluate(root, instance, &annotations)
    }
}

/// What the evaluated subschemas covered of an array or object (for `unevaluated*`).
/// Plain values until a set is needed, so the common case (no `unevaluated*` anywhere) costs nothing.
struct Annotations {
    var allItems = false
    var itemPrefix = 0
    /// Item indices matched by `contains`, and property names evaluated; nil while both are empty.
    private var sets: AnnotationSets?

    final class AnnotationSets {
        var itemIndices: Set<Int> = []
        var properties: Set<String> = []
    }

    private mutating func ownSets() -> AnnotationSets {
        if let sets, isKnownUniquelyReferenced(&self.sets) { return sets }
        let fresh = AnnotationSets()
        if let sets {
            fresh.itemIndices = sets.itemIndices
            fresh.properties = sets.properties
        }
        sets = fresh
        return fresh
    }

    mutating func insertItem(_ index: Int) { ownSets().itemIndices.insert(index) }
    mutating func insertProperty(_ name: String) { ownSets().properties.insert(name) }
    func hasProperty(_ name: String) -> Bool { sets?.properties.contains(name) ?? false }

    mutating func merge(_ other: Annotations) {
        allItems = allItems || other.allItems
        itemPrefix = max(itemPrefix, other.itemPrefix)
        guard let theirs = other.sets else { return }
        let mine = ownSets()
        if !theirs.itemIndices.isEmpty { mine.itemIndices.formUnion(theirs.itemIndices) }
        if !theirs.properties.isEmpty { mine.properties.formUnion(theirs.properties) }
    }

    func covers(item index: Int) -> Bool { allItems || index < itemPrefix || (sets?.itemIndices.contains(index) ?? false) }
}

/// One step of a keyword location, formatted only when an issue is reported.
enum KeywordStep {
    /// Already in pointer form, e.g. `/properties`.
    case path(String)
    /// A property name or pattern, escaped when formatted.
    case token(String)
    case index(Int)
}

enum InstanceStep {
    case key(String)
    case index(Int)
}

/// The state of one validation run.
struct Evaluation {
    /// Collect which items / properties were evaluated (only `unevaluated*` needs it).
    let tracksAnnotations: Bool
    /// Keep the instance and keyword locations (`instancePath`, `keywordPath`) for messages; off for a verdict-only
    /// pass, which reports nothing (it must run muted).
    let tracksLocations: Bool
    var issues: [ValidationIssue] = []
    /// > 0 while inside `not`, `if`, `contains`...: only the verdict matters, no messages are made.
    var muted = 0
    var instancePath: [InstanceStep] = []
    var keywordPath: [KeywordStep] = []
    /// Resources entered so far, outermost first (`$dynamicRef` searches it).
    var dynamicScope: [Int] = []
    var depth = 0
    /// Issues beyond this many are not recorded (the verdict is unaffected).
    var issueLimit = Int.max

    init(tracksAnnotations: Bool, tracksLocations: Bool) {
        self.tracksAnnotations = tracksAnnotations
        self.tracksLocations = tracksLocations
        if tracksLocations {
            instancePath.reserveCapacity(16)
            keywordPath.reserveCapacity(32)
        } else {
            muted = 1
        }
        dynamicScope.reserveCapacity(8)
    }

    @inline(__always)
    mutating func pushKeyword(_ step: @autoclosure () -> KeywordStep) {
        if tracksLocations { keywordPath.append(step()) }
    }

    @inline(__always)
    mutating func popKeyword() {
        if tracksLocations { keywordPath.removeLast() }
    }

    @inline(__always)
    mutating func pushInstance(_ step: InstanceStep) {
        if tracksLocations { instancePath.append(step) }
    }

    @inline(__always)
    mutating func popInstance() {
        if tracksLocations { instancePath.removeLast() }
    }

    /// No more messages wanted: a failing keyword may stop its siblings early.
    var quiet: Bool { muted > 0 || issues.count >= issueLimit }

    var instancePointer: String {
        var out = ""
        for step in instancePath {
            switch step {
            case .key(let key): out += "/" + JSONPointer.escape(key)
            case .index(let i): out += "/\(i)"
            }
        }
        return out
    }

    var keywordLocation: String {
        var out = ""
        for step in keywordPath {
            switch step {
            case .path(let text): out += text
            case .token(let token): out += "/" + JSONPointer.escape(token)
            case .index(let i): out += "/\(i)"
            }
        }
        return out
    }

    mutating func report(_ message: @autoclosure () -> String, keyword: String = "", at step: InstanceStep? = nil) {
        guard muted == 0, issues.count < issueLimit else { return }
        var pointer = instancePointer
        if let step {
            switch step {
            case .key(let key): pointer += "/" + JSONPointer.escape(key)
            case .index(let i): pointer += "/\(i)"
            }
        }
        issues.append(ValidationIssue(instancePointer: pointer, keywordLocation: keywordLocation + keyword, message: message()))
    }

    /// Reports against a keyword next to the one being applied (`minContains` beside `contains`).
    mutating func reportSibling(_ keyword: String, _ message: String) {
        guard tracksLocations else { return }
        let current = keywordPath.removeLast()
        keywordPath.append(.path("/" + keyword))
        report(message)
        keywordPath.removeLast()
        keywordPath.append(current)
    }

    /// Evaluates `node` on `value`; on success its annotations are merged into `annotations`.
    mutating func evaluate(_ node: SchemaNode, _ value: JSONValue, _ annotations: inout Annotations) -> Bool {
        if let constant = node.constant {
            if !constant { report("no value is allowed here (the schema is false)") }
            return constant
        }
        if let conditional = node.soleConditional, !tracksAnnotations {
            // A discriminator that selects no subschema here: valid, nothing to annotate.
            let holds = conditional.quick!.holds(for: value)
            if (holds ? conditional.then : conditional.otherwise) == nil { return true }
        }
        depth += 1
        defer { depth -= 1 }
        guard depth <= SchemaValidator.maximumDepth else {
            report("schema nesting exceeds \(SchemaValidator.maximumDepth) levels (a reference loop?)")
            return false
        }
        let entered = dynamicScope.last != node.resource
        if entered { dynamicScope.append(node.resource) }
        defer { if entered { dynamicScope.removeLast() } }

        var valid = true
        var local = Annotations()
        // By index: each keyword is passed on borrowed from the array, where iterating would copy every element
        // (retaining its payload) and release it again.
        let keywords = node.keywords
        for index in keywords.indices {
            pushKeyword(.path(keywords[index].path))
            if !apply(keywords[index].keyword, value, &local) {
                valid = false
                if quiet { popKeyword(); return false }
            }
            popKeyword()
        }
        if valid { annotations.merge(local) }
        return valid
    }

    /// Evaluates a subschema at the same instance location (in-place applicator); merges annotations if valid.
    private mutating func inPlace(_ node: SchemaNode, _ value: JSONValue, _ annotations: inout Annotations, path: KeywordStep? = nil) -> Bool {
        if let path { pushKeyword(path) }
        defer { if path != nil { popKeyword() } }
        return evaluate(node, value, &annotations)
    }

    /// Evaluates a subschema on a child of the instance.
    private mutating func onChild(_ node: SchemaNode, _ value: JSONValue, step: InstanceStep, path: KeywordStep? = nil) -> Bool {
        pushInstance(step)
        if let path { pushKeyword(path) }
        var ignored = Annotations()
        let result = evaluate(node, value, &ignored)
        if path != nil { popKeyword() }
        popInstance()
        return result
    }

    /// Verdict only, issues discarded.
    private mutating func silently(_ node: SchemaNode, _ value: JSONValue, _ annotations: inout Annotations) -> Bool {
        muted += 1
        defer { muted -= 1 }
        return evaluate(node, value, &annotations)
    }

    private static func typeName(_ value: JSONValue) -> String {
        if case .number(let n) = value, n.value.isFinite, n.value == n.value.rounded() { return "integer" }
        return value.schemaKind.rawValue
    }

    private static func matches(_ types: TypeSet, _ value: JSONValue) -> Bool {
        switch value {
        case .null: return types.contains(.null)
        case .bool: return types.contains(.boolean)
        case .string: return types.contains(.string)
        case .array, .numbers, .rows: return types.contains(.array)
        case .object: return types.contains(.object)
        case .number(let n):
            if types.contains(.number) { return true }
            return types.contains(.integer) && n.value.isFinite && n.value == n.value.rounded()
        }
    }

    // swiftlint:disable:next cyclomatic_complexity function_body_length
    private mutating func apply(_ keyword: Keyword, _ value: JSONValue, _ annotations: inout Annotations) -> Bool {
        switch keyword {
        case .type(let types):
            if Self.matches(types, value) { return true }
            let expected = types.names
            report(expected.count == 1
                   ? "expected \(expected[0]), got \(Self.typeName(value))"
                   : "expected one of \(expected.joined(separator: ", ")), got \(Self.typeName(value))")
            return false

        case .enumeration(let options):
            if options.contains(where: { $0.schemaEquals(value) }) { return true }
            report("\(value.briefDescription(limit: 40)) is not one of the allowed values: \(options.map { $0.briefDescription(limit: 40) }.joined(separator: ", "))")
            return false

        case .constant(let expected):
            if expected.schemaEquals(value) { return true }
            report("expected exactly \(expected.briefDescription()), got \(value.briefDescription(limit: 40))")
            return false

        case .multipleOf(let divisor):
            guard case .number(let n) = value else { return true }
            if isMultiple(n.value, of: divisor) { return true }
            report("\(formatNumber(n.value)) is not a multiple of \(formatNumber(divisor))")
            return false

        case .maximum(let limit):
            guard case .number(let n) = value else { return true }
            if n.value <= limit { return true }
            report("must be at most \(formatNumber(limit)), got \(formatNumber(n.value))")
            return false

        case .exclusiveMaximum(let limit):
            guard case .number(let n) = value else { return true }
            if n.value < limit { return true }
            report("must be less than \(formatNumber(limit)), got \(formatNumber(n.value))")
            return false

        case .minimum(let limit):
            guard case .number(let n) = value else { return true }
            if n.value >= limit { return true }
            report("must be at least \(formatNumber(limit)), got \(formatNumber(n.value))")
            return false

        case .exclusiveMinimum(let limit):
            guard case .number(let n) = value else { return true }
            if n.value > limit { return true }
            report("must be greater than \(formatNumber(limit)), got \(formatNumber(n.value))")
            return false

        case .maxLength(let limit):
            guard case .string(let s) = value else { return true }
            let length = s.unicodeScalars.count
            if length <= limit { return true }
            report("must be at most \(limit) characters long, got \(length)")
            return false

        case .minLength(let limit):
            guard case .string(let s) = value else { return true }
            let length = s.unicodeScalars.count
            if length >= limit { return true }
            report("must be at least \(limit) characters long, got \(length)")
            return false

        case .pattern(let pattern):
            guard case .string(let s) = value else { return true }
            if pattern.matches(s) { return true }
            report("\(quoted(String(s.prefix(40)))) does not match the pattern \(quoted(pattern.source))")
            return false

        case .maxItems(let limit):
            guard let items = ArrayView(value) else { return true }
            if items.count <= limit { return true }
            report("must have at most \(limit) item\(limit == 1 ? "" : "s"), got \(items.count)")
            return false

        case .minItems(let limit):
            guard let items = ArrayView(value) else { return true }
            if items.count >= limit { return true }
            report("must have at least \(limit) item\(limit == 1 ? "" : "s"), got \(items.count)")
            return false

        case .uniqueItems:
            guard let items = ArrayView(value) else { return true }
            if let (first, second) = Self.firstDuplicate(items) {
                report("items must be unique, but items \(first) and \(second) are equal")
                return false
            }
            return true

        case .contains(let node, let minimum, let maximum):
            guard let items = ArrayView(value) else { return true }
            var matched = 0
            for i in 0..<items.count {
                var ignored = Annotations()
                pushInstance(.index(i))
                let ok = silently(node, items[i], &ignored)
                popInstance()
                if ok {
                    matched += 1
                    if tracksAnnotations { annotations.insertItem(i) }
                }
            }
            if matched < minimum {
                if minimum == 1 {
                    report("must contain an item matching the contains schema, found none")
                } else {
                    reportSibling("minContains", "must contain at least \(minimum) items matching the contains schema, found \(matched)")
                }
                return false
            }
            if let maximum, matched > maximum {
                reportSibling("maxContains", "must contain at most \(maximum) items matching the contains schema, found \(matched)")
                return false
            }
            return true

        case .maxProperties(let limit):
            guard case .object(let object) = value else { return true }
            let count = object.uniqueMembers.count
            if count <= limit { return true }
            report("must have at most \(limit) propert\(limit == 1 ? "y" : "ies"), got \(count)")
            return false

        case .minProperties(let limit):
            guard case .object(let object) = value else { return true }
            let count = object.uniqueMembers.count
            if count >= limit { return true }
            report("must have at least \(limit) propert\(limit == 1 ? "y" : "ies"), got \(count)")
            return false

        case .required(let names):
            guard case .object(let object) = value else { return true }
            var valid = true
            for name in names where !object.hasMember(name) {
                report("missing required property \(quoted(name))")
                valid = false
                if quiet { return false }
            }
            return valid

        case .dependentRequired(let pairs):
            guard case .object(let object) = value else { return true }
            var valid = true
            for (trigger, names) in pairs where object.hasMember(trigger) {
                for name in names where !object.hasMember(name) {
                    report("property \(quoted(name)) is required when \(quoted(trigger)) is present", keyword: "/" + JSONPointer.escape(trigger))
                    valid = false
                    if quiet { return false }
                }
            }
            return valid

        case .allOf(let nodes):
            var valid = true
            for (i, node) in nodes.enumerated() where !inPlace(node, value, &annotations, path: .index(i)) {
                valid = false
                if quiet { return false }
            }
            return valid

        case .anyOf(let nodes):
            let mark = issues.count
            var matched = false
            for (i, node) in nodes.enumerated() where inPlace(node, value, &annotations, path: .index(i)) {
                matched = true
            }
            if matched {
                issues.removeSubrange(mark...)
                return true
            }
            report("must match at least one of the \(nodes.count) anyOf alternatives")
            return false

        case .oneOf(let group):
            let nodes = group.nodes
            if let selector = group.selector, case .object(let object) = value {
                // A discriminated union: only the selected alternative can match (see OneOfSelector).
                switch selector.choose(object) {
                case .alternative(let i):
                    var branch = Annotations()
                    guard inPlace(nodes[i], value, &branch, path: .index(i)) else { return false }
                    annotations.merge(branch)
                    return true
                case .missing:
                    report("missing required property \(quoted(selector.property)), which selects one of the \(nodes.count) oneOf alternatives")
                    return false
                case .unknown(let found):
                    report("\(found.briefDescription(limit: 40)) is not one of the allowed values: \(selector.values.map { $0.briefDescription(limit: 40) }.joined(separator: ", "))",
                           at: .key(selector.property))
                    return false
                }
            }
            let mark = issues.count
            var matches: [Int] = []
            var collected = Annotations()
            for (i, node) in nodes.enumerated() {
                var branch = Annotations()
                if inPlace(node, value, &branch, path: .index(i)) {
                    matches.append(i)
                    collected.merge(branch)
                }
            }
            if matches.count == 1 {
                issues.removeSubrange(mark...)
                annotations.merge(collected)
                return true
            }
            if matches.isEmpty {
                if group.selector != nil, issues.count > mark {
                    // A non-object given to a discriminated union: every alternative says the same ("expected object").
                    var seen: [(String, String)] = []
                    var kept: [ValidationIssue] = []
                    for issue in issues[mark...] where !seen.contains(where: { $0 == (issue.instancePointer, issue.message) }) {
                        seen.append((issue.instancePointer, issue.message))
                        kept.append(issue)
                    }
                    issues.replaceSubrange(mark..., with: kept)
                }
                report("must match exactly one of the \(nodes.count) oneOf alternatives, matched none")
            } else {
                issues.removeSubrange(mark...)
                report("must match exactly one of the oneOf alternatives, matched \(matches.count) (\(matches.map(String.init).joined(separator: ", ")))")
            }
            return false

        case .not(let node):
            var ignored = Annotations()
            if silently(node, value, &ignored) {
                report("must not match the schema in not")
                return false
            }
            return true

        case .conditional(let conditional):
            var conditionAnnotations = Annotations()
            let holds: Bool
            if let quick = conditional.quick, !tracksAnnotations {
                holds = quick.holds(for: value)
            } else {
                pushKeyword(.path("/if"))
                holds = silently(conditional.condition, value, &conditionAnnotations)
                popKeyword()
            }
            let then = conditional.then, otherwise = conditional.otherwise
            if holds {
                annotations.merge(conditionAnnotations)
                guard let then else { return true }
                return inPlace(then, value, &annotations, path: .path("/then"))
            }
            guard let otherwise else { return true }
            return inPlace(otherwise, value, &annotations, path: .path("/else"))

        case .dependentSchemas(let pairs):
            guard case .object(let object) = value else { return true }
            var valid = true
            for (trigger, node) in pairs where object.hasMember(trigger) {
                if !inPlace(node, value, &annotations, path: .token(trigger)) {
                    valid = false
                    if quiet { return false }
                }
            }
            return valid

        case .prefixItems(let nodes):
            guard let items = ArrayView(value) else { return true }
            var valid = true
            let n = min(nodes.count, items.count)
            for i in 0..<n where !onChild(nodes[i], items[i], step: .index(i), path: .index(i)) {
                valid = false
                if quiet { return false }
            }
            annotations.itemPrefix = max(annotations.itemPrefix, n)
            return valid

        case .items(let node, let start):
            guard let items = ArrayView(value) else { return true }
            annotations.allItems = true
            if let numbers = items.numbers, let check = node.numberCheck {
                // Fast path: a matrix row checked without building a value per element.
                if check.acceptsAll { return true }
                var i = start
                while i < numbers.count, check.accepts(numbers[i]) { i += 1 }
                if i >= numbers.count { return true }
                if quiet { return false }
                // Something failed: let the general evaluator explain it, element by element.
                var valid = true
                for j in i..<numbers.count where !check.accepts(numbers[j]) {
                    if !onChild(node, .number(JSONNumber(numbers[j])), step: .index(j)) {
                        valid = false
                        if quiet { return false }
                    }
                }
                return valid
            }
            var valid = true
            var i = start
            let check = node.numberCheck
            while i < items.count {
                let item = items[i]
                if let check, case .number(let n) = item, check.accepts(n.value) { i += 1; continue }
                if !onChild(node, item, step: .index(i)) {
                    valid = false
                    if quiet { return false }
                }
                i += 1
            }
            return valid

        case .properties(let children):
            guard case .object(let object) = value else { return true }
            var valid = true
            for member in object.members {
                guard let node = children.lookup(member.key) else { continue }
                if tracksAnnotations { annotations.insertProperty(member.key) }
                if !onChild(node, member.value, step: .key(member.key), path: .token(member.key)) {
                    valid = false
                    if quiet { return false }
                }
            }
            return valid

        case .patternProperties(let pairs):
            guard case .object(let object) = value else { return true }
            var valid = true
            for member in object.members {
                for (pattern, node) in pairs where pattern.matches(member.key) {
                    if tracksAnnotations { annotations.insertProperty(member.key) }
                    if !onChild(node, member.value, step: .key(member.key), path: .token(pattern.source)) {
                        valid = false
                        if quiet { return false }
                    }
                }
            }
            return valid

        case .additionalProperties(let node, let known, let patterns):
            guard case .object(let object) = value else { return true }
            var valid = true
            for member in object.members where known?.lookup(member.key) == nil && !patterns.contains(where: { $0.matches(member.key) }) {
                if tracksAnnotations { annotations.insertProperty(member.key) }
                if node.constant == false {
                    report("property \(quoted(member.key)) is not allowed", at: .key(member.key))
                    valid = false
                    if quiet { return false }
                } else if !onChild(node, member.value, step: .key(member.key)) {
                    valid = false
                    if quiet { return false }
                }
            }
            return valid

        case .propertyNames(let node):
            guard case .object(let object) = value else { return true }
            var valid = true
            for member in object.members {
                if node.constant == false {
                    report("property \(quoted(member.key)) is not allowed (propertyNames is false)", at: .key(member.key))
                    valid = false
                } else if !onChild(node, .string(member.key), step: .key(member.key)) {
                    valid = false
                }
                if !valid && quiet { return false }
            }
            return valid

        case .unevaluatedItems(let node):
            guard let items = ArrayView(value) else { return true }
            var valid = true
            for i in 0..<items.count where !annotations.covers(item: i) {
                if node.constant == false {
                    report("item \(i) is not allowed (not covered by prefixItems, items or contains)", at: .index(i))
                    valid = false
                } else if !onChild(node, items[i], step: .index(i)) {
                    valid = false
                }
                if !valid && quiet { return false }
            }
            annotations.allItems = true
            return valid

        case .unevaluatedProperties(let node):
            guard case .object(let object) = value else { return true }
            var valid = true
            for member in object.members where !annotations.hasProperty(member.key) {
                if node.constant == false {
                    report("property \(quoted(member.key)) is not allowed", at: .key(member.key))
                    valid = false
                } else if !onChild(node, member.value, step: .key(member.key)) {
                    valid = false
                }
                if !valid && quiet { return false }
            }
            if tracksAnnotations { for member in object.members { annotations.insertProperty(member.key) } }
            return valid

        case .ref(let box):
            return evaluate(box.node, value, &annotations)

        case .dynamicRef(let box, let dynamic):
            var target: SchemaNode = box.node
            if let dynamic {
                for resource in dynamicScope {
                    if let candidate = dynamic.byResource[resource] { target = candidate; break }
                }
            }
            return evaluate(target, value, &annotations)
        }
    }

    private static func firstDuplicate(_ items: ArrayView) -> (Int, Int)? {
        if let numbers = items.numbers {
            var seen: [Double: Int] = [:]
            for (i, x) in numbers.enumerated() {
                if let first = seen[x] { return (first, i) }
                seen[x] = i
            }
            return nil
        }
        let count = items.count
        guard count > 1 else { return nil }
        for i in 0..<count - 1 {
            let a = items[i]
            for j in i + 1..<count where a.schemaEquals(items[j]) { return (i, j) }
        }
        return nil
    }
}
