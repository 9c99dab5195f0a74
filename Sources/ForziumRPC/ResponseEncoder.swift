import ForziumJSON

/// Builds protocol lines straight into byte buffers (no trailing LF; callers add it).
///
/// A success response is always `{"jsonrpc":"2.0","id":<id>,"result":<value>}` in exactly that member order, so a
/// reader may find the result by its prefix without parsing the whole line.
public enum ResponseEncoder {
    private static let head: [UInt8] = Array(#"{"jsonrpc":"2.0","id":"#.utf8)
    private static let resultKey: [UInt8] = Array(#","result":"#.utf8)
    private static let errorKey: [UInt8] = Array(#","error":{"code":"#.utf8)
    private static let messageKey: [UInt8] = Array(#","message":"#.utf8)
    private static let dataKey: [UInt8] = Array(#","data":"#.utf8)
    private static let notificationHead: [UInt8] = Array(#"{"jsonrpc":"2.0","method":"#.utf8)
    private static let paramsKey: [UInt8] = Array(#","params":"#.utf8)

    /// Writes an id exactly as it was sent: a number's literal token, a string, or null.
    public static func writeID(_ id: JSONValue, into buffer: inout [UInt8]) {
        switch id {
        case .number(let number):
            if let literal = number.literal {
                buffer.append(contentsOf: literal.utf8)
            } else {
                JSONWriter.writeDouble(number.value, into: &buffer)
            }
        case .string:
            JSONWriter.write(id, into: &buffer)
        default:
            buffer.append(contentsOf: "null".utf8)
        }
    }

    /// - Parameter threads: how many threads may format a large matrix result (same bytes for any count).
    public static func result(id: JSONValue, result: JSONValue, into buffer: inout [UInt8], threads: Int = 1) {
        buffer.append(contentsOf: head)
        writeID(id, into: &buffer)
        buffer.append(contentsOf: resultKey)
        if case .object = result {
            // Small structured results (engine.info, stream summaries): keep integer literals as integers.
            writeData(result, into: &buffer)
        } else {
            // Matrices and scalars: straight to the codec's writer (its fast paths stay in play).
            JSONWriter.write(result, into: &buffer, threads: threads)
        }
        buffer.append(UInt8(ascii: "}"))
    }

    /// A success response whose result is already-encoded JSON.
    public static func result(id: JSONValue, encodedResult: [UInt8], into buffer: inout [UInt8]) {
        buffer.append(contentsOf: head)
        writeID(id, into: &buffer)
        buffer.append(contentsOf: resultKey)
        buffer.append(contentsOf: encodedResult)
        buffer.append(UInt8(ascii: "}"))
    }

    public static func error(id: JSONValue, error: RPCError, into buffer: inout [UInt8]) {
        buffer.append(contentsOf: head)
        writeID(id, into: &buffer)
        buffer.append(contentsOf: errorKey)
        buffer.append(contentsOf: String(error.code).utf8)
        buffer.append(contentsOf: messageKey)
        JSONWriter.write(.string(error.message), into: &buffer)
        if let data = error.data {
            buffer.append(contentsOf: dataKey)
            writeData(data, into: &buffer)
        }
        buffer.append(contentsOf: "}}".utf8)
    }

    public static func notification(method: String, params: JSONValue, into buffer: inout [UInt8]) {
        buffer.append(contentsOf: notificationHead)
        JSONWriter.write(.string(method), into: &buffer)
        buffer.append(contentsOf: paramsKey)
        JSONWriter.write(params, into: &buffer)
        buffer.append(UInt8(ascii: "}"))
    }

    public static func notification(method: String, encodedParams: [UInt8], into buffer: inout [UInt8]) {
        buffer.append(contentsOf: notificationHead)
        JSONWriter.write(.string(method), into: &buffer)
        buffer.append(contentsOf: paramsKey)
        buffer.append(contentsOf: encodedParams)
        buffer.append(UInt8(ascii: "}"))
    }

    /// Writes a value, printing numbers that carry a literal (error positions, limits) by that literal so
    /// integers never gain a `.0`.
    public static func writeData(_ value: JSONValue, into buffer: inout [UInt8]) {
        switch value {
        case .number(let number) where number.literal != nil:
            buffer.append(contentsOf: number.literal!.utf8)
        case .array(let elements):
            buffer.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { buffer.append(UInt8(ascii: ",")) }
                writeData(element, into: &buffer)
            }
            buffer.append(UInt8(ascii: "]"))
        case .object(let object):
            buffer.append(UInt8(ascii: "{"))
            for (index, member) in object.members.enumerated() {
                if index > 0 { buffer.append(UInt8(ascii: ",")) }
                JSONWriter.write(.string(member.key), into: &buffer)
                buffer.append(UInt8(ascii: ":"))
                writeData(member.value, into: &buffer)
            }
            buffer.append(UInt8(ascii: "}"))
        default:
            JSONWriter.write(value, into: &buffer)
        }
    }
}
