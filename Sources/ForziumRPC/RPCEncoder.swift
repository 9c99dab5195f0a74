import ForziumJSON

/// Builds every JSON-RPC envelope on the wire — requests, responses, errors, notifications — straight into byte buffers
/// (no trailing LF; callers add it). Both ends of the engine pipe use it: the engines for replies, the gateway for
/// requests and `$/cancelRequest`.
///
/// A success response is always `{"jsonrpc":"2.0","id":<id>,"result":<value>}` in exactly that member order, so a
/// reader may find the result by its prefix without parsing the whole line.
public enum RPCEncoder {
    private static let head: [UInt8] = Array(#"{"jsonrpc":"2.0","id":"#.utf8)
    private static let resultKey: [UInt8] = Array(#","result":"#.utf8)
    private static let errorKey: [UInt8] = Array(#","error":{"code":"#.utf8)
    private static let messageKey: [UInt8] = Array(#","message":"#.utf8)
    private static let dataKey: [UInt8] = Array(#","data":"#.utf8)
    private static let notificationHead: [UInt8] = Array(#"{"jsonrpc":"2.0","method":"#.utf8)
    private static let paramsKey: [UInt8] = Array(#","params":"#.utf8)

    private static let methodKey: [UInt8] = Array(#","method":"#.utf8)

    /// The part of a request line before its params value: `{"jsonrpc":"2.0","id":<id>,"method":<method>,"params":`.
    /// Append the params (one JSON value with no raw CR or LF) and `requestTail` to complete the line.
    public static func requestHead(id: Int, method: String, into buffer: inout [UInt8]) {
        writeRequestHead(id: id, method: method) { buffer.append(contentsOf: $0) }
    }

    /// `requestHead`'s bytes, lent to `write` piece by piece in order: for a caller that writes them into its own kind
    /// of buffer, with no array between.
    public static func writeRequestHead(id: Int, method: String, _ write: (UnsafeRawBufferPointer) -> Void) {
        head.withUnsafeBytes(write)
        JSONWriter.withDecimal(id, write)
        methodKey.withUnsafeBytes(write)
        var method = method
        method.withUTF8 { utf8 in
            if utf8.contains(where: JSONWriter.needsEscape) {
                var quoted: [UInt8] = []
                JSONWriter.write(.string(String(decoding: utf8, as: UTF8.self)), into: &quoted)
                quoted.withUnsafeBytes(write)
            } else {
                withUnsafeBytes(of: UInt8(ascii: "\"")) { write($0) }
                write(UnsafeRawBufferPointer(utf8))
                withUnsafeBytes(of: UInt8(ascii: "\"")) { write($0) }
            }
        }
        paramsKey.withUnsafeBytes(write)
    }

    /// What ends a request line started by `requestHead`: `}` and LF.
    public static let requestTail: [UInt8] = Array("}\n".utf8)

    /// A whole request line (with LF); `params` nil leaves the member out.
    public static func requestLine(id: Int, method: String, params: JSONValue?) -> [UInt8] {
        var line: [UInt8] = []
        if let params {
            requestHead(id: id, method: method, into: &line)
            writeData(params, into: &line)
        } else {
            line.append(contentsOf: head)
            line.append(contentsOf: String(id).utf8)
            line.append(contentsOf: methodKey)
            JSONWriter.write(.string(method), into: &line)
        }
        line.append(contentsOf: requestTail)
        return line
    }

    /// The cancellation method (a notification, as in LSP): `{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":N}}`.
    public static let cancelMethod = "$/cancelRequest"

    /// The liveness check: `{"jsonrpc":"2.0","id":N,"method":"ping"}` is answered `{"in_flight":K}` at once, even while
    /// requests compute (K: requests read and not yet answered). Build the line with `requestLine(id:method:params:)`.
    public static let pingMethod = "ping"

    /// A whole `$/cancelRequest` notification line (with LF) for request `id`.
    public static func cancelLine(id: Int) -> [UInt8] {
        var line: [UInt8] = []
        notification(method: cancelMethod, encodedParams: Array(#"{"id":\#(id)}"#.utf8), into: &line)
        line.append(0x0A)
        return line
    }

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

    /// A success response whose result `writeResult` appends itself (exactly one JSON value), e.g. a matrix written
    /// straight from its storage.
    public static func result(id: JSONValue, into buffer: inout [UInt8], writeResult: (inout [UInt8]) -> Void) {
        buffer.append(contentsOf: head)
        writeID(id, into: &buffer)
        buffer.append(contentsOf: resultKey)
        writeResult(&buffer)
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
