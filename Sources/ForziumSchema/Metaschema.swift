import ForziumJSON

/// A compact single-document stand-in for the JSON Schema 2020-12 metaschema, registered in every
/// `SchemaRegistry` under the official URI so schemas can be checked with `"$ref"` to it.
///
/// It describes the same keywords with the same value shapes as the official dialect (which is split into
/// vocabulary documents); subschema positions recurse through `$dynamicRef: "#meta"` so extensions work.
enum Metaschema {
    static let uri = "https://json-schema.org/draft/2020-12/schema"

    static let document: JSONValue = {
        let schema: JSONValue = object(["$dynamicRef": string("#meta")])
        let schemaMap = object(["type": string("object"), "additionalProperties": schema, "default": object([:])])
        let stringType = object(["type": string("string")])
        let uriReference = object(["type": string("string"), "format": string("uri-reference")])
        let anchorName = object(["type": string("string"), "pattern": string("^[A-Za-z_][-A-Za-z0-9._]*$")])
        let boolean = object(["type": string("boolean")])
        let number = object(["type": string("number")])
        let count = ref("#/$defs/nonNegativeInteger")
        let anything = JSONValue.bool(true)

        let properties: [(String, JSONValue)] = [
            // core
            ("$id", object(["type": string("string"), "format": string("uri-reference"), "pattern": string("^[^#]*#?$")])),
            ("$schema", object(["type": string("string"), "format": string("uri")])),
            ("$ref", uriReference),
            ("$anchor", anchorName),
            ("$dynamicRef", uriReference),
            ("$dynamicAnchor", anchorName),
            ("$vocabulary", object(["type": string("object"), "propertyNames": object(["type": string("string"), "format": string("uri")]),
                                    "additionalProperties": boolean])),
            ("$comment", stringType),
            ("$defs", schemaMap),
            // applicators
            ("prefixItems", ref("#/$defs/schemaArray")),
            ("items", schema),
            ("contains", schema),
            ("additionalProperties", schema),
            ("properties", schemaMap),
            ("patternProperties", object(["type": string("object"), "additionalProperties": schema,
                                          "propertyNames": object(["format": string("regex")]), "default": object([:])])),
            ("dependentSchemas", schemaMap),
            ("propertyNames", schema),
            ("if", schema), ("then", schema), ("else", schema),
            ("allOf", ref("#/$defs/schemaArray")),
            ("anyOf", ref("#/$defs/schemaArray")),
            ("oneOf", ref("#/$defs/schemaArray")),
            ("not", schema),
            // unevaluated
            ("unevaluatedItems", schema),
            ("unevaluatedProperties", schema),
            // validation
            ("type", object(["anyOf": .array([
                ref("#/$defs/simpleTypes"),
                object(["type": string("array"), "items": ref("#/$defs/simpleTypes"), "minItems": .number(JSONNumber(1)), "uniqueItems": .bool(true)]),
            ])])),
            ("const", anything),
            ("enum", object(["type": string("array"), "items": anything])),
            ("multipleOf", object(["type": string("number"), "exclusiveMinimum": .number(JSONNumber(0))])),
            ("maximum", number), ("exclusiveMaximum", number), ("minimum", number), ("exclusiveMinimum", number),
            ("maxLength", count), ("minLength", count),
            ("pattern", object(["type": string("string"), "format": string("regex")])),
            ("maxItems", count), ("minItems", count),
            ("uniqueItems", boolean),
            ("maxContains", count), ("minContains", count),
            ("maxProperties", count), ("minProperties", count),
            ("required", ref("#/$defs/stringArray")),
            ("dependentRequired", object(["type": string("object"), "additionalProperties": ref("#/$defs/stringArray")])),
            // meta-data
            ("title", stringType), ("description", stringType), ("default", anything),
            ("deprecated", boolean), ("readOnly", boolean), ("writeOnly", boolean),
            ("examples", object(["type": string("array"), "items": anything])),
            // format annotation and content
            ("format", stringType),
            ("contentEncoding", stringType), ("contentMediaType", stringType), ("contentSchema", schema),
        ]

        let vocabularies = ["core", "applicator", "unevaluated", "validation", "meta-data", "format-annotation", "content"]
        return object([
            "$schema": string(uri),
            "$id": string(uri),
            "$vocabulary": .object(JSONObject(vocabularies.map { ("https://json-schema.org/draft/2020-12/vocab/" + $0, JSONValue.bool(true)) })),
            "$dynamicAnchor": string("meta"),
            "title": string("JSON Schema 2020-12 dialect (compact single-document form)"),
            "type": .array([string("object"), string("boolean")]),
            "properties": .object(JSONObject(properties.map { (key: $0.0, value: $0.1) })),
            "$defs": object([
                "nonNegativeInteger": object(["type": string("integer"), "minimum": .number(JSONNumber(0))]),
                "schemaArray": object(["type": string("array"), "minItems": .number(JSONNumber(1)), "items": schema]),
                "stringArray": object(["type": string("array"), "items": stringType, "uniqueItems": .bool(true), "default": .array([])]),
                "simpleTypes": object(["enum": .array(["array", "boolean", "integer", "null", "number", "object", "string"].map(string))]),
            ]),
        ])
    }()

    private static func string(_ text: String) -> JSONValue { .string(text) }
    private static func ref(_ target: String) -> JSONValue { object(["$ref": .string(target)]) }
    private static func object(_ members: KeyValuePairs<String, JSONValue>) -> JSONValue {
        .object(JSONObject(members.map { (key: $0.key, value: $0.value) }))
    }
}
