import ForziumJSON

/// The `stream.rows` notification, both ends: `{"jsonrpc":"2.0","method":"stream.rows","params":{"request":<id>,
/// "start":<row>,"rows":<block>}}`, the block being JSON rows or a `BinaryMatrix`. Engines write it with `params`
/// (members in this order); clients read it with `read`.
public enum StreamRows {
    public static let method = "stream.rows"

    /// Everything before the request id, as engines write it.
    static let prefix = Array(#"{"jsonrpc":"2.0","method":"stream.rows","params":{"request":"#.utf8)
    private static let startKey = Array(#","start":"#.utf8)
    private static let rowsKey = Array(#","rows":"#.utf8)

    /// The notification's params for request `id`: rows from `start` on, the block appended by `writeRows`.
    public static func params(request id: JSONValue, start: Int, writeRows: (inout [UInt8]) -> Void) -> [UInt8] {
        var params: [UInt8] = []
        params.append(contentsOf: #"{"request":"#.utf8)
        RPCEncoder.writeID(id, into: &params)
        params.append(contentsOf: startKey)
        params.append(contentsOf: String(start).utf8)
        params.append(contentsOf: rowsKey)
        writeRows(&params)
        params.append(UInt8(ascii: "}"))
        return params
    }

    /// A block of rows as the engine sent it.
    public enum Block {
        /// A `BinaryMatrix` (read into doubles).
        case binary(BinaryMatrix)
        /// JSON rows `[[…],…]`, as written.
        case json(ArraySlice<UInt8>)
    }

    /// The first row's index and the block of a `stream.rows` line; nil when the line is not one.
    public static func read(_ line: [UInt8]) -> (start: Int, rows: Block)? {
        if let fast = readAsWritten(line) { return fast }
        guard let value = try? JSONParser().parse(line), case .object(let envelope) = value,
              case .string(method)? = envelope["method"], case .object(let params)? = envelope["params"],
              case .number(let start)? = params["start"], let first = Int(exactly: start.value), let rows = params["rows"] else {
            return nil
        }
        if case .object = rows {
            guard let matrix = try? BinaryMatrix(rows, at: "") else { return nil }
            return (first, .binary(matrix))
        }
        var text: [UInt8] = []
        RPCEncoder.writeData(rows, into: &text)
        return (first, .json(text[...]))
    }

    /// The members in the order `params` writes them, without parsing the block as JSON.
    private static func readAsWritten(_ line: [UInt8]) -> (start: Int, rows: Block)? {
        guard line.starts(with: prefix), line.count >= 2, line[line.count - 2] == UInt8(ascii: "}"),
              line[line.count - 1] == UInt8(ascii: "}") else { return nil }
        var i = prefix.count
        guard RPCReplyReader.readInt(line, &i) != nil, line[i...].starts(with: startKey) else { return nil }
        i += startKey.count
        guard let start = RPCReplyReader.readInt(line, &i), line[i...].starts(with: rowsKey) else { return nil }
        i += rowsKey.count
        let block = line[i..<(line.count - 2)]
        switch block.first {
        case UInt8(ascii: "{")?:
            let matrix = block.withUnsafeBytes { BinaryMatrix.scan($0) }
            return matrix.map { (start, .binary($0)) }
        case UInt8(ascii: "[")?:
            return (start, .json(block))
        default:
            return nil
        }
    }
}
