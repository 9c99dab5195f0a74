import ForziumJSON

/// Checks a parsed request body against the JSON Schema with `$id` `schemaURI`.
/// Returns the problems found (empty = valid), pointers into the body.
public protocol BodyValidator: Sendable {
    func validate(_ body: JSONValue, schemaURI: String) throws -> [PointerIssue]
}
