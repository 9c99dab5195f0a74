import ForziumJSON
import ForziumKernels
import ForziumRPC

/// How a result goes on the wire, chosen by the reserved params member `"$result"`.
enum ResultForm: Sendable {
    /// `"json"` (the default): a matrix as JSON rows `[[…],…]` (non-finite elements as `null`), a scalar as a number.
    case json
    /// `"binary"`: a matrix as a `BinaryMatrix` object, a scalar as one with shape `[]` — every bit kept.
    case binary
    /// `"shm"`: as `binary`, with a matrix result in a new shared-memory segment (`SharedMatrixSegment`) that the
    /// reader removes; base64 where no segment can be made. `stream.rows` blocks stay base64 (nobody would remove the
    /// segments of rows a client stopped reading). `{"shm": name}`: the same, into the caller's existing segment
    /// `name` (resized to fit; the caller keeps it and reuses it), or a new one where that segment cannot be written.
    case shared(into: String?)

    /// The handler's answer for an operation's result, written straight from the matrix storage.
    func result(_ result: OperationResult) -> RPCResult {
        switch (self, result) {
        case (.json, .scalar(let value)):
            return .value(.number(JSONNumber(value)))
        case (.binary, .scalar(let value)), (.shared, .scalar(let value)):
            return .text { line, _ in BinaryMatrix.write(scalar: value, into: &line) }
        case (.json, .matrix(let matrix)) where matrix.rows * matrix.cols >= Self.partsFromElements:
            // A large result goes out a block of rows at a time as it is printed (never whole in memory).
            return .parts { emit, threads in
                matrix.storage.withUnsafeBufferPointer {
                    JSONWriter.writeMatrix(rows: matrix.rows, cols: matrix.cols, $0, threads: threads, emit: emit)
                }
            }
        case (.json, .matrix(let matrix)):
            return .text { line, threads in
                matrix.storage.withUnsafeBufferPointer {
                    JSONWriter.writeMatrix(rows: matrix.rows, cols: matrix.cols, $0, threads: threads, into: &line)
                }
            }
        case (.binary, .matrix(let matrix)):
            return .text { line, _ in write(matrix, into: &line) }
        case (.shared(let target), .matrix(let matrix)):
            return .text { line, _ in
                _ = matrix.storage.withUnsafeBufferPointer {
                    BinaryMatrix.writeShared(rows: matrix.rows, cols: matrix.cols, $0, into: &line, reusing: target)
                }
            }
        }
    }

    /// Elements from which a JSON matrix result is written in parts (`RPCResult.parts`): ~10 MB of text and up. Below
    /// that the whole text is printed first (by all writer threads at once) and written in one go, which is quicker
    /// (a 512² result: ~2 ms less per round trip) and holds little.
    static let partsFromElements = 1 << 19

    /// Appends `matrix` in this form (a `stream.rows` block, or a result).
    func write(_ matrix: Matrix, into buffer: inout [UInt8]) {
        matrix.storage.withUnsafeBufferPointer { storage in
            switch self {
            case .json: JSONWriter.writeMatrix(rows: matrix.rows, cols: matrix.cols, storage, into: &buffer)
            case .binary, .shared: BinaryMatrix.write(rows: matrix.rows, cols: matrix.cols, storage, into: &buffer)
            }
        }
    }
}

/// The reserved members of params — those whose names start with `$` — read and removed, so the catalogue sees the
/// operation's own params only. The one reserved member is `"$result"`: `"json"` (default), `"binary"`, `"shm"`, or
/// `{"shm": "<segment name>"}`.
struct RequestOptions {
    /// params without the reserved members.
    var params: JSONValue?
    var resultForm = ResultForm.json

    /// Reads the reserved members of `params` (an object; other params pass through untouched).
    /// - Throws: -32602 at the member's pointer for an unknown `$` member or a bad value.
    init(params: JSONValue?) throws(RPCError) {
        guard case .object(var object)? = params, object.members.contains(where: { Self.isReserved($0.key) }) else {
            self.params = params
            return
        }
        var issues: [PointerIssue] = []
        for member in object.members where Self.isReserved(member.key) {
            var pointer: String { "/" + JSONPointerToken.escape(member.key) }
            guard member.key == "$result" else {
                issues.append(PointerIssue(pointer: pointer, message: "unknown reserved member (members starting with $ are reserved; known: $result)"))
                continue
            }
            switch member.value {
            case .string("json"): resultForm = .json
            case .string("binary"): resultForm = .binary
            case .string("shm"): resultForm = .shared(into: nil)
            case .object(let target) where target.count == 1:
                guard case .string(let name)? = target["shm"], SharedMatrixSegment.isValidName(name) else {
                    issues.append(PointerIssue(pointer: pointer + "/shm", message: "expected the name of a Forzium shared-memory segment (/forzium-<pid>-<n>)"))
                    continue
                }
                resultForm = .shared(into: name)
            case .string(let other): issues.append(PointerIssue(pointer: pointer, message: "expected \"json\", \"binary\", \"shm\" or {\"shm\": name}, got \"\(other)\""))
            default: issues.append(PointerIssue(pointer: pointer, message: "expected \"json\", \"binary\", \"shm\" or {\"shm\": name}, got \(member.value.typeName)"))
            }
        }
        if !issues.isEmpty { throw RPCError(OperationError.invalidParams(issues)) }
        object.members.removeAll { Self.isReserved($0.key) }
        self.params = .object(object)
    }

    /// A reserved member name: one starting with `$`.
    @inline(__always)
    static func isReserved(_ key: String) -> Bool { key.utf8.first == UInt8(ascii: "$") }
}
