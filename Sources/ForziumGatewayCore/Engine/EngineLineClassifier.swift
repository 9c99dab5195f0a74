import ForziumJSON

/// Sorts one line from an engine without parsing big results.
///
/// Engines write responses as `{"jsonrpc":"2.0","id":N,"result":<value>}` (member order guaranteed by the
/// engine work), so a success is recognised by its prefix and the raw result is the bytes between that
/// prefix and the final `}`. Error responses and anything unusual are small and get fully parsed.
package enum EngineLineClassifier {
    package enum Kind {
        case response(id: Int, EngineResponse)
        case rows(request: Int)
        case otherNotification
        case garbage(String)
    }

    private static let responsePrefix = Array(#"{"jsonrpc":"2.0","id":"#.utf8)
    private static let resultKey = Array(#","result":"#.utf8)
    private static let rowsPrefix = Array(#"{"jsonrpc":"2.0","method":"stream.rows","params":{"request":"#.utf8)
    private static let requestKey = Array(#""request":"#.utf8)

    package static func classify(_ line: [UInt8]) -> Kind {
        if line.starts(with: responsePrefix) {
            var i = responsePrefix.count
            if let id = readInt(line, &i), line.count > i + resultKey.count, line[i..<(i + resultKey.count)].elementsEqual(resultKey) {
                var end = line.count
                while end > 0, line[end - 1] == UInt8(ascii: " ") { end -= 1 }
                if end > i + resultKey.count, line[end - 1] == UInt8(ascii: "}") {
                    return .response(id: id, EngineResponse(line: line, resultRange: (i + resultKey.count)..<(end - 1), error: nil))
                }
            }
        } else if line.starts(with: rowsPrefix) {
            var i = rowsPrefix.count
            if let id = readInt(line, &i) { return .rows(request: id) }
        }
        return classifySlow(line)
    }

    /// Full parse: error responses, other member orders, notifications.
    private static func classifySlow(_ line: [UInt8]) -> Kind {
        let value: JSONValue
        do {
            value = try JSONParser().parse(line)
        } catch {
            return .garbage("not JSON: \(error.description)")
        }
        guard case .object(let object) = value else { return .garbage("not a JSON object") }
        if case .string(let method)? = object["method"] {
            if method == "stream.rows", case .object(let params)? = object["params"],
               case .number(let n)? = params["request"], let id = Int(exactly: n.value) {
                return .rows(request: id)
            }
            return .otherNotification
        }
        guard case .number(let idNumber)? = object["id"], let id = Int(exactly: idNumber.value) else {
            if let error = object["error"] {
                // An error without a usable id (e.g. the engine could not parse a line): nobody to route it to.
                return .garbage("error response without id: \(CompactJSON.string(error).prefix(200))")
            }
            return .garbage("response without a numeric id")
        }
        if let result = object["result"] {
            var bytes: [UInt8] = []
            CompactJSON.write(result, into: &bytes)
            return .response(id: id, EngineResponse(line: bytes, resultRange: 0..<bytes.count, error: nil))
        }
        guard case .object(let error)? = object["error"] else { return .garbage("response with neither result nor error") }
        var code = -32603
        if case .number(let c)? = error["code"], let ci = Int(exactly: c.value) { code = ci }
        var message = "engine error"
        if case .string(let m)? = error["message"] { message = m }
        var issues: [ProblemItem] = []
        if case .object(let data)? = error["data"], let items = data["errors"] {
            for item in arrayElements(items) {
                guard case .object(let o) = item else { continue }
                var pointer = ""
                var text = ""
                if case .string(let p)? = o["pointer"] { pointer = p }
                if case .string(let m)? = o["message"] { text = m }
                issues.append(ProblemItem(pointer: pointer, message: text))
            }
        }
        return .response(id: id, EngineResponse(line: line, resultRange: nil, error: EngineRPCError(code: code, message: message, issues: issues)))
    }

    private static func arrayElements(_ value: JSONValue) -> [JSONValue] {
        switch value {
        case .array(let items): items
        case .numbers(let numbers): numbers.map { .number(JSONNumber($0)) }
        default: []
        }
    }

    /// Reads a non-negative decimal integer at `i` (advancing it).
    private static func readInt(_ line: [UInt8], _ i: inout Int) -> Int? {
        var value = 0
        let start = i
        while i < line.count, line[i] >= UInt8(ascii: "0"), line[i] <= UInt8(ascii: "9"), i - start < 18 {
            value = value * 10 + Int(line[i] - UInt8(ascii: "0"))
            i += 1
        }
        return i > start ? value : nil
    }
}
