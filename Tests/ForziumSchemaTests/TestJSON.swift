import Foundation
import ForziumJSON

/// TEMPORARY: reads JSON through Foundation until ForziumJSON's parser lands on main; then this file goes.
enum TestJSON {
    static func parse(_ text: String) throws -> JSONValue {
        try parse(data: Data(text.utf8))
    }

    static func parse(data: Data) throws -> JSONValue {
        convert(try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]))
    }

    private static func convert(_ any: Any) -> JSONValue {
        switch any {
        case is NSNull:
            return .null
        case let number as NSNumber:
            if String(cString: number.objCType) == "c" { return .bool(number.boolValue) }
            return .number(JSONNumber(number.doubleValue, literal: number.stringValue))
        case let string as String:
            return .string(string)
        case let array as [Any]:
            let items = array.map(convert)
            if !items.isEmpty, items.allSatisfy({ if case .number = $0 { true } else { false } }) {
                return .numbers(items.map { if case .number(let n) = $0 { n.value } else { 0 } })
            }
            return .array(items)
        case let dictionary as [String: Any]:
            return .object(JSONObject(dictionary.sorted { $0.key < $1.key }.map { ($0.key, convert($0.value)) }))
        default:
            fatalError("unexpected JSON value \(any)")
        }
    }
}
