/// The binary form of a matrix inside a JSON document: the doubles themselves (IEEE 754 binary64, little-endian,
/// row-major, no padding) with their shape, either in base64 or in a shared-memory object (`SharedMatrixSegment`)
/// named in the document:
///
///     {"dtype":"float64","shape":[2,3],"base64":"AAAAAAAA8D8AAAAAAAAAQA..."}
///     {"dtype":"float64","shape":[2,3],"shm":"/forzium-4242-17"}
///
/// Both ends of the engine pipe use it: the gateway sends matrices this way (no decimal text between two programs of
/// ours, and every bit survives, NaN and ±Infinity included), and an engine accepts it wherever a matrix goes and
/// answers with it when asked. `shape` `[]` is a scalar (one value). The writer always emits the members in this order,
/// so `scan` can read a reply without parsing it as JSON; a reader of other input uses `init(_:at:)`.
public struct BinaryMatrix: Sendable, Equatable {
    /// Rows (`0` with `cols` `0` for a scalar, see `isScalar`).
    public var rows: Int
    public var cols: Int
    /// `true` for shape `[]`: one value, no rows or columns.
    public var isScalar: Bool
    /// Row-major elements (`rows * cols` of them, or one for a scalar).
    public var storage: [Double]
    /// The shared-memory object the elements were read from, if any (its reader may remove it).
    public var sharedName: String?

    public init(rows: Int, cols: Int, storage: [Double]) {
        precondition(storage.count == rows * cols, "binary matrix storage does not match its shape")
        self.rows = rows
        self.cols = cols
        self.isScalar = false
        self.storage = storage
    }

    public init(scalar: Double) {
        rows = 0
        cols = 0
        isScalar = true
        storage = [scalar]
    }

    /// The only element type of the wire form.
    public static let dtype = "float64"

    // MARK: Writing

    private static let head = Array(#"{"dtype":"float64","shape":["#.utf8)
    private static let base64Key = Array(#"],"base64":""#.utf8)
    private static let shmKey = Array(#"],"shm":""#.utf8)

    /// Matrices with fewer elements than this are written as base64 even where shared memory is asked for: below it,
    /// creating, mapping, unmapping and removing a segment (system calls on both sides, and a TLB shootdown on every
    /// core per unmap) cost more than encoding the bytes into the line.
    public static let sharedMemoryThreshold = 16_384

    /// Appends the shared-memory form of a `rows`×`cols` matrix and returns the segment's name: the segment `reusing`
    /// names when it is given and can be overwritten (the caller's own segment, which it keeps), else a new segment
    /// holding a copy of `storage`, which the caller removes when the reader is done. For a matrix under
    /// `sharedMemoryThreshold` elements, or when no segment can be made, appends the base64 form and returns nil.
    public static func writeShared(rows: Int, cols: Int, _ storage: UnsafeBufferPointer<Double>, into buffer: inout [UInt8],
                                   reusing target: String? = nil) -> String? {
        guard storage.count >= sharedMemoryThreshold else {
            write(rows: rows, cols: cols, storage, into: &buffer)
            return nil
        }
        if let target, SharedMatrixSegment.overwrite(target, copying: storage) {
            appendShared(rows: rows, cols: cols, name: target, into: &buffer)
            return target
        }
        guard let name = SharedMatrixSegment.create(copying: storage) else {
            write(rows: rows, cols: cols, storage, into: &buffer)
            return nil
        }
        appendShared(rows: rows, cols: cols, name: name, into: &buffer)
        return name
    }

    /// The shape and segment of `value` when it is exactly the shared-memory form of a matrix (`dtype` float64, `shape`
    /// `[rows, cols]` of positive integers, a Forzium `shm` name, nothing else); nil for anything else, which the
    /// ordinary reader (`init(_:at:)`) then accepts or reports.
    public static func sharedReference(_ value: JSONValue?) -> (rows: Int, cols: Int, name: String)? {
        guard case .object(let object)? = value, object.count == 3, object["dtype"] == .string(dtype),
              case .string(let name)? = object["shm"], SharedMatrixSegment.isValidName(name),
              let dims = object["shape"]?.arrayValue, dims.count == 2,
              let rows = dims[0].intValue, let cols = dims[1].intValue, rows > 0, cols > 0 else { return nil }
        return (rows, cols, name)
    }

    /// Appends the shared-memory form naming segment `name`, which holds a `rows`×`cols` matrix.
    public static func appendShared(rows: Int, cols: Int, name: String, into buffer: inout [UInt8]) {
        buffer.append(contentsOf: head)
        buffer.append(contentsOf: String(rows).utf8)
        buffer.append(UInt8(ascii: ","))
        buffer.append(contentsOf: String(cols).utf8)
        buffer.append(contentsOf: shmKey)
        buffer.append(contentsOf: name.utf8)
        buffer.append(contentsOf: "\"}".utf8)
    }

    /// Appends the object form of a `rows`×`cols` matrix held in `storage` (row-major).
    public static func write(rows: Int, cols: Int, _ storage: UnsafeBufferPointer<Double>, into buffer: inout [UInt8]) {
        buffer.append(contentsOf: head)
        buffer.append(contentsOf: String(rows).utf8)
        buffer.append(UInt8(ascii: ","))
        buffer.append(contentsOf: String(cols).utf8)
        buffer.append(contentsOf: base64Key)
        Base64.encode(UnsafeRawBufferPointer(storage), into: &buffer)
        buffer.append(contentsOf: "\"}".utf8)
    }

    /// Appends the object form of a scalar (shape `[]`).
    public static func write(scalar: Double, into buffer: inout [UInt8]) {
        buffer.append(contentsOf: head)
        buffer.append(contentsOf: base64Key)
        withUnsafeBytes(of: scalar.bitPattern.littleEndian) { Base64.encode($0, into: &buffer) }
        buffer.append(contentsOf: "\"}".utf8)
    }

    /// Appends this value's object form.
    public func write(into buffer: inout [UInt8]) {
        if isScalar {
            Self.write(scalar: storage[0], into: &buffer)
        } else {
            storage.withUnsafeBufferPointer { Self.write(rows: rows, cols: cols, $0, into: &buffer) }
        }
    }

    // MARK: Reading

    /// Reads the object form from raw JSON text exactly as `write` produces it (member order, no whitespace); `nil`
    /// for anything else (the caller then parses the text as JSON and uses `init(_:at:)`).
    public static func scan(_ text: UnsafeRawBufferPointer) -> BinaryMatrix? {
        switch scanParts(text) {
        case .base64(let dims, let payload)?: return try? decode(payload: payload, dims: dims)
        case .shared(let rows, let cols, let name)?: return try? shared(name: name, rows: rows, cols: cols)
        case nil: return nil
        }
    }

    /// What `scan` finds in text written by `write`/`writeShared`, before any element is decoded.
    public enum ScannedForm {
        /// Shape (`[]` or `[rows, cols]`) and the base64 payload.
        case base64(shape: [Int], payload: UnsafeRawBufferPointer)
        /// A shared-memory object holding a `rows`×`cols` matrix.
        case shared(rows: Int, cols: Int, name: String)
    }

    /// The form of the object in `text` when it is exactly as this type writes it; nil otherwise.
    public static func scanForm(_ text: UnsafeRawBufferPointer) -> ScannedForm? {
        switch scanParts(text) {
        case .base64(let dims, let payload)?: .base64(shape: dims.map { [$0.rows, $0.cols] } ?? [], payload: payload)
        case .shared(let rows, let cols, let name)?: .shared(rows: rows, cols: cols, name: name)
        case nil: nil
        }
    }

    /// `ScannedForm` without an array for the shape (`dims` nil for a scalar): what a reply costs to read matters
    /// on the gateway's hot path.
    private enum ScannedParts {
        case base64(dims: (rows: Int, cols: Int)?, payload: UnsafeRawBufferPointer)
        case shared(rows: Int, cols: Int, name: String)
    }

    private static func scanParts(_ text: UnsafeRawBufferPointer) -> ScannedParts? {
        guard text.count > head.count + base64Key.count + 2,
              text.starts(with: head) else { return nil }
        var i = head.count
        var dims = (0, 0), count = 0
        while i < text.count, text[i] != UInt8(ascii: "]") {
            var value = 0, digits = 0
            while i < text.count, text[i] >= 0x30, text[i] <= 0x39, digits < 18 {
                value = value * 10 + Int(text[i] - 0x30)
                i += 1
                digits += 1
            }
            guard digits > 0, count < 2 else { return nil }
            if count == 0 { dims.0 = value } else { dims.1 = value }
            count += 1
            if i < text.count, text[i] == UInt8(ascii: ",") { i += 1 }
        }
        guard count == 0 || count == 2,
              text[text.count - 2] == UInt8(ascii: "\""), text[text.count - 1] == UInt8(ascii: "}") else { return nil }
        if text.count >= i + base64Key.count + 2,
           UnsafeRawBufferPointer(rebasing: text[i..<(i + base64Key.count)]).elementsEqual(base64Key) {
            return .base64(dims: count == 2 ? (dims.0, dims.1) : nil,
                           payload: UnsafeRawBufferPointer(rebasing: text[(i + base64Key.count)..<(text.count - 2)]))
        }
        if count == 2, text.count >= i + shmKey.count + 2,
           UnsafeRawBufferPointer(rebasing: text[i..<(i + shmKey.count)]).elementsEqual(shmKey) {
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: text[(i + shmKey.count)..<(text.count - 2)]), as: UTF8.self)
            return .shared(rows: dims.0, cols: dims.1, name: name)
        }
        return nil
    }

    /// Reads the object form from a parsed JSON value; the problem, located below `pointer`, when it is malformed.
    /// Accepts exactly the members `dtype` (`"float64"`), `shape` (`[rows, cols]` of positive integers, or `[]`) and
    /// `base64` (standard alphabet, padded, exactly `8 × rows × cols` bytes once decoded).
    public init(_ value: JSONValue, at pointer: String) throws(PointerIssue) {
        guard case .object(let object) = value else {
            throw PointerIssue(pointer: pointer, message: "expected a binary matrix object, got \(value.typeName)")
        }
        for (key, _) in object.members where key != "dtype" && key != "shape" && key != "base64" && key != "shm" {
            throw PointerIssue(pointer: pointer + "/" + JSONPointerToken.escape(key),
                               message: "unknown member \"\(key)\" in a binary matrix (members: dtype, shape, and base64 or shm)")
        }
        guard case .string(let dtype)? = object["dtype"] else {
            throw PointerIssue(pointer: pointer + "/dtype", message: "a binary matrix needs \"dtype\": \"float64\"")
        }
        guard dtype == Self.dtype else {
            throw PointerIssue(pointer: pointer + "/dtype", message: "unsupported dtype \"\(dtype)\"; only \"float64\" is accepted")
        }
        var shape: [Int] = []
        switch object["shape"] {
        case .numbers(let dims)?:
            for (index, dim) in dims.enumerated() {
                guard dim >= 1, dim <= 1e15, dim == dim.rounded() else {
                    throw PointerIssue(pointer: pointer + "/shape/\(index)", message: "a dimension must be a positive integer")
                }
                shape.append(Int(dim))
            }
            guard shape.count == 2 else {
                throw PointerIssue(pointer: pointer + "/shape", message: "shape must be [rows, cols] (or [] for a scalar)")
            }
        case .array(let items)? where items.isEmpty:
            break
        default:
            throw PointerIssue(pointer: pointer + "/shape", message: "shape must be [rows, cols] (or [] for a scalar)")
        }
        if let shm = object["shm"] {
            guard object["base64"] == nil else {
                throw PointerIssue(pointer: pointer + "/shm", message: "a binary matrix has either base64 or shm, not both")
            }
            guard case .string(let name) = shm, shape.count == 2 else {
                throw PointerIssue(pointer: pointer + "/shm", message: "shm must name a shared-memory object and shape must be [rows, cols]")
            }
            do throws(PointerIssue) {
                self = try Self.shared(name: name, rows: shape[0], cols: shape[1])
            } catch {
                throw PointerIssue(pointer: pointer + "/shm", message: error.message)
            }
            return
        }
        guard case .string(let text)? = object["base64"] else {
            throw PointerIssue(pointer: pointer + "/base64", message: "a binary matrix needs \"base64\": the little-endian doubles, base64-encoded")
        }
        var utf8Text = text
        let decoded = utf8Text.withUTF8 { utf8 -> Result<BinaryMatrix, PointerIssue> in
            do throws(PointerIssue) {
                return .success(try Self.decode(payload: UnsafeRawBufferPointer(utf8), shape: shape))
            } catch {
                return .failure(PointerIssue(pointer: pointer + "/base64", message: error.message))
            }
        }
        self = try decoded.get()
    }

    /// Reads the doubles of the shared-memory object `name` (it stays in place; see `sharedName`).
    static func shared(name: String, rows: Int, cols: Int) throws(PointerIssue) -> BinaryMatrix {
        let (count, overflow) = rows.multipliedReportingOverflow(by: cols)
        guard !overflow, count <= Int.max / 8 else { throw PointerIssue(pointer: "", message: "shape is too large") }
        var matrix = BinaryMatrix(rows: rows, cols: cols, storage: try SharedMatrixSegment.read(name, count: count))
        matrix.sharedName = name
        return matrix
    }

    /// Decodes `payload` (base64) for `shape` (`[]` or `[rows, cols]`).
    static func decode(payload: UnsafeRawBufferPointer, shape: [Int]) throws(PointerIssue) -> BinaryMatrix {
        try decode(payload: payload, dims: shape.isEmpty ? nil : (shape[0], shape[1]))
    }

    /// `dims` nil for a scalar (shape `[]`).
    static func decode(payload: UnsafeRawBufferPointer, dims: (rows: Int, cols: Int)?) throws(PointerIssue) -> BinaryMatrix {
        let product = dims.map { $0.rows.multipliedReportingOverflow(by: $0.cols) } ?? (partialValue: 1, overflow: false)
        let count = product.partialValue
        if product.overflow || count > Int.max / 8 {
            throw PointerIssue(pointer: "", message: "shape is too large")
        }
        let expected = Base64.encodedLength(byteCount: count * 8)
        guard payload.count == expected else {
            let shape = dims.map { "[\($0.rows), \($0.cols)]" } ?? "[]"
            throw PointerIssue(pointer: "", message: "base64 payload has \(payload.count) characters; shape \(shape) needs \(expected) (\(count * 8) bytes)")
        }
        var storage = [Double](repeating: 0, count: count)
        let ok = storage.withUnsafeMutableBytes { Base64.decode(payload, into: $0) }
        guard ok else { throw PointerIssue(pointer: "", message: "invalid base64 (standard alphabet with = padding expected)") }
        #if _endian(big)
        for index in storage.indices { storage[index] = Double(bitPattern: UInt64(littleEndian: storage[index].bitPattern)) }
        #endif
        guard let dims else { return BinaryMatrix(scalar: storage[0]) }
        return BinaryMatrix(rows: dims.rows, cols: dims.cols, storage: storage)
    }
}

/// Base64 (RFC 4648 §4, standard alphabet, `=` padding), straight between byte buffers.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    /// 0xFF for bytes outside the alphabet.
    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()

    /// Characters needed for `byteCount` bytes.
    public static func encodedLength(byteCount: Int) -> Int { (byteCount + 2) / 3 * 4 }

    /// Appends the encoding of `bytes`.
    public static func encode(_ bytes: UnsafeRawBufferPointer, into buffer: inout [UInt8]) {
        let length = encodedLength(byteCount: bytes.count)
        guard length > 0 else { return }
        let start = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: length))
        alphabet.withUnsafeBufferPointer { table in
            buffer.withUnsafeMutableBufferPointer { out in
                var o = start
                var i = 0
                let n = bytes.count
                while i + 3 <= n {
                    let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
                    out[o] = table[Int(v >> 18)]
                    out[o + 1] = table[Int((v >> 12) & 63)]
                    out[o + 2] = table[Int((v >> 6) & 63)]
                    out[o + 3] = table[Int(v & 63)]
                    i += 3
                    o += 4
                }
                if n - i == 1 {
                    let v = UInt32(bytes[i]) << 16
                    out[o] = table[Int(v >> 18)]
                    out[o + 1] = table[Int((v >> 12) & 63)]
                    out[o + 2] = UInt8(ascii: "=")
                    out[o + 3] = UInt8(ascii: "=")
                } else if n - i == 2 {
                    let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
                    out[o] = table[Int(v >> 18)]
                    out[o + 1] = table[Int((v >> 12) & 63)]
                    out[o + 2] = table[Int((v >> 6) & 63)]
                    out[o + 3] = UInt8(ascii: "=")
                }
            }
        }
    }

    /// Decodes `text` into `out`, which must hold exactly the decoded length; false on any character outside the
    /// alphabet, misplaced padding, or a length that does not match.
    public static func decode(_ text: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Bool {
        let n = text.count
        guard n % 4 == 0 else { return false }
        if n == 0 { return out.count == 0 }
        var padding = 0
        if text[n - 1] == UInt8(ascii: "=") { padding += 1 }
        if text[n - 2] == UInt8(ascii: "=") { padding += 1 }
        guard out.count == n / 4 * 3 - padding else { return false }
        return reverse.withUnsafeBufferPointer { table -> Bool in
            var bad: UInt8 = 0
            var o = 0
            var i = 0
            let whole = padding == 0 ? n : n - 4
            while i < whole {
                let a = table[Int(text[i])], b = table[Int(text[i + 1])], c = table[Int(text[i + 2])], d = table[Int(text[i + 3])]
                bad |= a | b | c | d
                let v = UInt32(a & 63) << 18 | UInt32(b & 63) << 12 | UInt32(c & 63) << 6 | UInt32(d & 63)
                out[o] = UInt8(truncatingIfNeeded: v >> 16)
                out[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
                out[o + 2] = UInt8(truncatingIfNeeded: v)
                i += 4
                o += 3
            }
            if bad & 0xC0 != 0 { return false }
            if padding > 0 {
                let a = table[Int(text[i])], b = table[Int(text[i + 1])]
                let c = padding == 1 ? table[Int(text[i + 2])] : 0
                if (a | b | c) & 0xC0 != 0 { return false }
                let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6
                out[o] = UInt8(truncatingIfNeeded: v >> 16)
                if padding == 1 { out[o + 1] = UInt8(truncatingIfNeeded: v >> 8) }
                // Non-canonical trailing bits are refused, so one matrix has exactly one encoding.
                if padding == 2, v & 0xFFFF != 0 { return false }
                if padding == 1, v & 0xFF != 0 { return false }
            }
            return true
        }
    }
}
