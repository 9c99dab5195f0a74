import ForziumJSON

extension Matrix {
    /// The JSON form of a matrix: an array of rows, each a `.numbers` array.
    public var jsonValue: JSONValue {
        var rowsJSON: [JSONValue] = []
        rowsJSON.reserveCapacity(rows)
        storage.withUnsafeBufferPointer { p in
            for i in 0..<rows {
                rowsJSON.append(.numbers(Array(p[(i * cols)..<((i + 1) * cols)])))
            }
        }
        return .array(rowsJSON)
    }

    /// Reads a matrix from JSON: a non-empty array of non-empty rows of numbers, all rows the same length.
    /// On failure the issue points (below `pointer`) at the first bad place, e.g. `/data/1` or `/data/0/2`.
    public static func decode(_ value: JSONValue, at pointer: String) -> Result<Matrix, PointerIssue> {
        switch MatrixShape.scan(value, at: pointer) {
        case .success(let shape): .success(shape.build(value))
        case .failure(let issue): .failure(issue)
        }
    }

    /// Rows `range` as a matrix of their own.
    func rowSlice(_ range: Range<Int>) -> Matrix {
        Matrix(rows: range.count, cols: cols, storage: Array(storage[(range.lowerBound * cols)..<(range.upperBound * cols)]))
    }
}

/// A matrix param whose form and shape have been checked: JSON rows (copied out with `build()` once every check has
/// passed, or shared as they are when the parser read them into one buffer) or the binary form (`BinaryMatrix`), decoded straight into matrix storage while it was checked.
enum MatrixArgument {
    case json(MatrixShape, JSONValue)
    case binary(Matrix)

    /// Reads a matrix param: an object is the binary form, anything else must be JSON rows (see `Matrix.decode`).
    /// On failure the issue points below `pointer` (e.g. `/data/1`, `/matrix_b/base64`).
    static func read(_ value: JSONValue, at pointer: String) -> Result<MatrixArgument, PointerIssue> {
        guard case .object = value else {
            return MatrixShape.scan(value, at: pointer).map { .json($0, value) }
        }
        let binary: BinaryMatrix
        do {
            binary = try BinaryMatrix(value, at: pointer)
        } catch {
            return .failure(error)
        }
        guard !binary.isScalar else {
            return .failure(PointerIssue(pointer: pointer + "/shape", message: "a matrix needs shape [rows, cols]; [] is a scalar"))
        }
        return .success(.binary(Matrix(rows: binary.rows, cols: binary.cols, storage: binary.storage)))
    }

    var shape: MatrixShape {
        switch self {
        case .json(let shape, _): shape
        case .binary(let matrix): MatrixShape(rows: matrix.rows, cols: matrix.cols)
        }
    }

    /// The matrix itself.
    func build() -> Matrix {
        switch self {
        case .json(let shape, let value): shape.build(value)
        case .binary(let matrix): matrix
        }
    }
}

/// The shape of a JSON matrix, checked without copying any numbers.
struct MatrixShape {
    var rows: Int
    var cols: Int
    var count: Int { rows * cols }

    /// Checks that `value` is a well-formed matrix (see `Matrix.decode`); O(rows) for rows held as `.numbers`.
    static func scan(_ value: JSONValue, at pointer: String) -> Result<MatrixShape, PointerIssue> {
        let rowValues: [JSONValue]
        switch value {
        case .rows(let rows):
            // Parsed straight into one row-major buffer: already a well-formed matrix.
            return .success(MatrixShape(rows: rows.rows, cols: rows.cols))
        case .array(let items):
            rowValues = items
        case .numbers(let numbers):
            if numbers.isEmpty { return .failure(PointerIssue(pointer: pointer, message: "matrix must have at least one row")) }
            return .failure(PointerIssue(pointer: pointer + "/0", message: "expected an array (a matrix row), got number"))
        default:
            return .failure(PointerIssue(pointer: pointer, message: "expected a matrix (an array of rows of numbers), got \(value.typeName)"))
        }
        if rowValues.isEmpty {
            return .failure(PointerIssue(pointer: pointer, message: "matrix must have at least one row"))
        }
        var cols = -1
        for (r, row) in rowValues.enumerated() {
            let count: Int
            switch row {
            case .numbers(let numbers):
                count = numbers.count
            case .array(let items):
                count = items.count
            default:
                return .failure(PointerIssue(pointer: "\(pointer)/\(r)", message: "expected an array (a matrix row), got \(row.typeName)"))
            }
            if count == 0 {
                return .failure(PointerIssue(pointer: "\(pointer)/\(r)", message: "row \(r) is empty; a matrix row needs at least one number"))
            }
            if cols < 0 {
                cols = count
            } else if count != cols {
                return .failure(PointerIssue(pointer: "\(pointer)/\(r)", message: "row \(r) has \(count) elements, expected \(cols)"))
            }
            if case .array(let items) = row {
                for (c, item) in items.enumerated() {
                    guard case .number = item else {
                        return .failure(PointerIssue(pointer: "\(pointer)/\(r)/\(c)", message: "expected a number, got \(item.typeName)"))
                    }
                }
            }
        }
        return .success(MatrixShape(rows: rowValues.count, cols: cols))
    }

    /// Copies the numbers of a matrix `scan` accepted into contiguous row-major storage.
    /// Rows parsed into one buffer (`JSONValue.rows`) are taken as they are: the matrix shares their storage.
    func build(_ value: JSONValue) -> Matrix {
        if case .rows(let rows) = value { return Matrix(rows: rows.rows, cols: rows.cols, storage: rows.storage) }
        guard case .array(let rowValues) = value else { preconditionFailure("build without a successful scan") }
        var storage: [Double] = []
        storage.reserveCapacity(count)
        for row in rowValues {
            switch row {
            case .numbers(let numbers):
                storage.append(contentsOf: numbers)
            case .array(let items):
                for item in items {
                    if case .number(let number) = item { storage.append(number.value) }
                }
            default:
                preconditionFailure("build without a successful scan")
            }
        }
        return Matrix(rows: rows, cols: cols, storage: storage)
    }
}

/// JSON Pointer (RFC 6901) helpers.
enum JSONPointer {
    /// `base` extended by one reference token, escaped (`~` → `~0`, `/` → `~1`).
    static func appending(_ base: String, _ token: String) -> String {
        base + "/" + JSONPointerToken.escape(token)
    }
}
