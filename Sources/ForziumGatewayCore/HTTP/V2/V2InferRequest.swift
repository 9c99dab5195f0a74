import ForziumJSON
import NIOCore

/// A v2 inference request turned into an engine call: the params text (every input tensor in the engine boundary's
/// binary matrix form — a shared-memory segment, or base64 for a small one — never decimal text), and what the
/// response needs. The segments belong to the request: `release(engineAnswered:)` gives them back.
struct V2PreparedCall: Sendable {
    var params: ByteBuffer
    /// Input segments from the gateway's pool.
    var pooled: [SharedSegmentPool.Segment] = []
    var pool: SharedSegmentPool?
    /// Input segments made for this call alone (removed on release).
    var created: [String] = []
    /// The pooled segment the engine is asked to write a matrix result into (`"$result":{"shm":name}`).
    var result: SharedSegmentPool.Segment?
    /// The request's `id`, echoed on the response.
    var id: String?
    /// The output goes back in the binary part of the response.
    var binaryOutput: Bool

    /// The names of every input segment the params refer to.
    var segments: [String] { pooled.map(\.name) + created }

    /// Gives the segments back: to the pool once the engine has answered (it reads and writes them no more), removed
    /// otherwise (a timed-out or cancelled request's engine may still be at them). The result segment stays out of
    /// this when the response took it (`resultTaken`).
    func release(engineAnswered: Bool, resultTaken: Bool = false) {
        var giveBack = pooled
        if let result, !resultTaken { giveBack.append(result) }
        for segment in giveBack {
            if engineAnswered { pool?.release(segment) } else { pool?.discard(segment) }
        }
        for name in created { SharedMatrixSegment.unlink(name) }
    }
}

/// Reads the body of `POST /v2/models/{model}/infer`: the JSON inference request (validated against
/// `schemas/v2/infer-request.json`), then each input tensor — JSON `data`, or raw bytes from the binary part when the
/// input has `parameters.binary_data_size` (binary tensor data extension: `Inference-Header-Content-Length` gives the
/// JSON's length; the inputs' bytes follow in input order, little-endian, row-major, no padding).
///
/// The two parts are read in two steps so the binary part never has to be held whole: `header` reads and checks the
/// JSON part, then a `V2TensorAssembler` takes the binary bytes as they arrive, straight into each input's segment.
///
/// Tensors: FP64, or FP32 (widened exactly). Shape `[rows, cols]`, or `[n]` taken as one row (1×n); no zero
/// dimension. Every client mistake is a `GatewayError` with code `.validation` (400 on v2 routes).
enum V2InferRequest {
    /// `$id` of the request's JSON schema.
    static let schemaURI = RouteTable.schemaBaseURI + "v2/infer-request.json"

    /// Request parameters of the protocol itself, not params of an operation (`binary_data_output` is read; the others
    /// are accepted and ignored: every request is independent and has the gateway's deadline).
    static let protocolParameters: Set<String> = ["binary_data_output", "priority", "timeout", "sequence_id", "sequence_start", "sequence_end"]

    static func invalid(_ message: String, at pointer: String? = nil) -> GatewayError {
        if let pointer {
            return GatewayError(.validation, "invalid inference request", errors: [PointerIssue(pointer: pointer, message: message)])
        }
        return GatewayError(.validation, message)
    }

    /// The JSON part, checked: each input's shape and where its elements come from, the operation's scalar params,
    /// the requested output form.
    struct Header {
        struct Input {
            var name: String
            var rows: Int
            var cols: Int
            /// 8 (FP64) or 4 (FP32).
            var itemSize: Int
            /// The elements from JSON `data`; nil for an input in the binary part.
            var values: [Double]?
            /// `/inputs/<index>`.
            var pointer: String
            var count: Int { rows * cols }
            /// Bytes of the binary part this input takes (0 for a JSON input).
            var binaryBytes: Int { values == nil ? count * itemSize : 0 }
        }
        var inputs: [Input]
        var scalars: [(key: String, value: JSONValue)]
        var id: String?
        var binaryOutput: Bool
        /// Bytes the binary part must have: the binary inputs' sizes added up.
        var binaryBytes: Int { inputs.reduce(0) { $0 + $1.binaryBytes } }
    }

    /// Builds the engine call for `model` from the whole request `body`; `headerLength` is the
    /// `Inference-Header-Content-Length` header (nil: the body is all JSON).
    static func prepare(body: ByteBuffer, headerLength: Int?, model: V2Model, validator: any BodyValidator,
                        pool: SharedSegmentPool? = nil) throws -> V2PreparedCall {
        try body.withUnsafeReadableBytes { raw in
            try prepare(raw: raw, headerLength: headerLength, model: model, validator: validator, pool: pool)
        }
    }

    static func prepare(raw: UnsafeRawBufferPointer, headerLength: Int?, model: V2Model, validator: any BodyValidator,
                        pool: SharedSegmentPool? = nil) throws -> V2PreparedCall {
        let jsonLength = headerLength ?? raw.count
        guard jsonLength <= raw.count else { throw shortHeader(jsonLength, bodyBytes: raw.count) }
        let parsed = try header(UnsafeRawBufferPointer(rebasing: raw[0..<jsonLength]), binary: headerLength != nil,
                                model: model, validator: validator)
        let assembler = V2TensorAssembler(parsed, pool: pool)
        try assembler.feed(UnsafeRawBufferPointer(rebasing: raw[jsonLength...]))
        return try assembler.finish()
    }

    static func shortHeader(_ jsonLength: Int, bodyBytes: Int) -> GatewayError {
        invalid("Inference-Header-Content-Length is \(jsonLength) but the body has only \(bodyBytes) bytes")
    }

    /// Reads and checks the JSON part (`binary`: an `Inference-Header-Content-Length` header was sent, so inputs may
    /// be in the binary part).
    static func header(_ json: UnsafeRawBufferPointer, binary: Bool, model: V2Model, validator: any BodyValidator) throws -> Header {
        let header: JSONValue
        do {
            header = try JSONParser().parse(json)
        } catch {
            let hint = !binary && error.message.contains("after the JSON value")
                ? " (binary tensors need the Inference-Header-Content-Length header)" : ""
            throw GatewayError(.malformedJSON, "malformed JSON in the inference request: \(error.message) at line \(error.line), column \(error.column)" + hint)
        }
        let issues: [PointerIssue]
        do {
            issues = try validator.validate(header, schemaURI: schemaURI)
        } catch {
            throw GatewayError(.engineInternal, "the inference request schema could not be applied")
        }
        if !issues.isEmpty { throw GatewayError(.validation, "the inference request does not match its schema", errors: issues) }

        // Inputs, in request order; binary ones will take the binary part in that order.
        var inputs: [Header.Input] = []
        var seen: Set<String> = []
        for (index, input) in (header["inputs"]?.arrayValue ?? []).enumerated() {
            let pointer = "/inputs/\(index)"
            let name = input["name"]?.stringValue ?? ""
            guard model.inputs.contains(name) else {
                throw invalid("\"\(name)\" is not an input of model \"\(model.name)\" (inputs: \(model.inputs.joined(separator: ", ")))", at: pointer + "/name")
            }
            guard seen.insert(name).inserted else { throw invalid("input \"\(name)\" appears twice", at: pointer + "/name") }
            let datatype = input["datatype"]?.stringValue ?? ""
            guard datatype == "FP64" || datatype == "FP32" else {
                throw invalid("datatype \"\(datatype)\" is not supported; use FP64 (or FP32)", at: pointer + "/datatype")
            }
            let (rows, cols) = try matrixShape(input["shape"]?.arrayValue ?? [], at: pointer + "/shape")
            let count = rows * cols
            let itemSize = datatype == "FP64" ? 8 : 4
            if let size = input["parameters"]?["binary_data_size"] {
                guard input["data"] == nil else { throw invalid("an input has either data or binary_data_size, not both", at: pointer) }
                guard binary else {
                    throw invalid("binary_data_size needs the Inference-Header-Content-Length header", at: pointer + "/parameters/binary_data_size")
                }
                let byteCount = count.multipliedReportingOverflow(by: itemSize)
                guard let size = size.intValue, !byteCount.overflow, size == byteCount.partialValue else {
                    throw invalid("binary_data_size must be \(count) × \(itemSize) bytes for shape [\(rows), \(cols)] \(datatype)",
                                  at: pointer + "/parameters/binary_data_size")
                }
                inputs.append(Header.Input(name: name, rows: rows, cols: cols, itemSize: itemSize, values: nil, pointer: pointer))
            } else {
                guard let data = input["data"] else { throw invalid("an input needs data or parameters.binary_data_size", at: pointer) }
                var values: [Double] = []
                // Reserved up to what the JSON can hold (a number takes at least 2 bytes with its comma), so a huge
                // declared shape with little data allocates nothing large.
                values.reserveCapacity(min(count, json.count / 2 + 1))
                guard flatten(data, into: &values, limit: count) else {
                    throw invalid("data must hold numbers only (flat, row-major)", at: pointer + "/data")
                }
                guard values.count == count else {
                    throw invalid("data has \(values.count) elements; shape [\(rows), \(cols)] needs \(count)", at: pointer + "/data")
                }
                if itemSize == 4 { values = values.map { Double(Float($0)) } }
                inputs.append(Header.Input(name: name, rows: rows, cols: cols, itemSize: itemSize, values: values, pointer: pointer))
            }
        }
        for name in model.inputs where model.requiredInputs.contains(name) && !seen.contains(name) {
            throw invalid("model \"\(model.name)\" needs input \"\(name)\"", at: "/inputs")
        }

        // The operation's scalar params, checked against its params schema (matrices stand in as [[0]]).
        var binaryOutput = false
        var scalars: [(key: String, value: JSONValue)] = []
        for member in header["parameters"]?.objectValue?.members ?? [] {
            if member.key == "binary_data_output" {
                binaryOutput = member.value.boolValue ?? false
            } else if !protocolParameters.contains(member.key) {
                guard model.parameters.contains(where: { $0.name == member.key }) else {
                    let known = model.parameters.map(\.name)
                    throw invalid("model \"\(model.name)\" has no parameter \"\(member.key)\""
                                  + (known.isEmpty ? "" : " (parameters: \(known.joined(separator: ", ")))"), at: "/parameters/\(member.key)")
                }
                scalars.append(member)
            }
        }
        let stand = seen.map { (key: $0, value: JSONValue.array([.numbers([0])])) }
        let paramIssues: [PointerIssue]
        do {
            paramIssues = try validator.validate(.object(JSONObject(stand + scalars)), schemaURI: model.paramsSchemaURI)
        } catch {
            throw GatewayError(.engineInternal, "the \(model.name) params schema could not be applied")
        }
        if !paramIssues.isEmpty {
            throw GatewayError(.validation, "the parameters do not fit model \"\(model.name)\"",
                               errors: paramIssues.map { PointerIssue(pointer: "/parameters" + $0.pointer, message: $0.message) })
        }

        // The requested output: `result` only; binary when that output or the request asks.
        for (index, output) in (header["outputs"]?.arrayValue ?? []).enumerated() {
            guard output["name"]?.stringValue == "result" else {
                throw invalid("model \"\(model.name)\" has one output, \"result\"", at: "/outputs/\(index)/name")
            }
            if let binary = output["parameters"]?["binary_data"]?.boolValue { binaryOutput = binary }
        }
        return Header(inputs: inputs, scalars: scalars, id: header["id"]?.stringValue, binaryOutput: binaryOutput)
    }

    /// `[rows, cols]`, or `[n]` as one row.
    static func matrixShape(_ dims: [JSONValue], at pointer: String) throws -> (Int, Int) {
        let values = dims.compactMap(\.intValue)
        guard values.count == dims.count, values.count == 1 || values.count == 2 else {
            throw invalid("shape must be [rows, cols], or [n] for one row; got \(dims.count) dimensions", at: pointer)
        }
        let (rows, cols) = values.count == 1 ? (1, values[0]) : (values[0], values[1])
        guard rows > 0, cols > 0 else { throw invalid("a tensor needs at least one element in each dimension", at: pointer) }
        guard !rows.multipliedReportingOverflow(by: cols).overflow, rows * cols <= Int.max / 8 else {
            throw invalid("shape [\(rows), \(cols)] is too large", at: pointer)
        }
        return (rows, cols)
    }

    /// Appends the numbers of `value` (the schema allows a flat array; nested arrays would be flattened row-major) to `out`; false on a
    /// non-number or past `limit` + 1 elements (so a huge wrong-sized array is not copied whole).
    static func flatten(_ value: JSONValue, into out: inout [Double], limit: Int) -> Bool {
        switch value {
        case .numbers(let numbers):
            out.append(contentsOf: numbers.prefix(limit + 1 - min(out.count, limit + 1)))
            return true
        case .number(let number):
            if out.count <= limit { out.append(number.value) }
            return true
        case .array(let items):
            for item in items {
                guard flatten(item, into: &out, limit: limit) else { return false }
                if out.count > limit { return true }
            }
            return true
        default:
            return false
        }
    }
}
