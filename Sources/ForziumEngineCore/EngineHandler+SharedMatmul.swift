import ForziumJSON
import ForziumKernels
import ForziumRPC

extension EngineHandler {
    /// `matmul` with both matrices in shared-memory segments and the result asked for in one (`"$result":"shm"` or
    /// `{"shm": name}`, what the gateway sends for binary tensors): computed from the mapped input segments into the
    /// mapped result segment, with no copy of either into or out of the heap. The inputs' pages are already resident
    /// (the gateway wrote them), so mapping them costs page-table entries, not page faults; the result segment's pages
    /// are allocated once and, in a reused segment, already exist. A caller's reused segments stay mapped between
    /// requests (`SegmentMappingCache`).
    ///
    /// Only for a request the ordinary path would accept unchanged (exactly `data` and `matrix_b`, both in the
    /// shared-memory form, shapes that agree and fit the limits, segments of the stated sizes, a result at or above
    /// the shared-memory threshold); nil sends anything else down the ordinary path, which answers it (and reports
    /// any problem) as before. Same bits, same cancellation points.
    func sharedMatmul(_ params: JSONValue?, into target: String?, context: RPCContext) throws -> RPCResult? {
        #if _endian(little)
        guard case .object(let object)? = params, object.count == 2,
              let a = BinaryMatrix.sharedReference(object["data"]), let b = BinaryMatrix.sharedReference(object["matrix_b"]),
              a.cols == b.rows, catalogue.acceptsMatmul(m: a.rows, k: a.cols, n: b.cols),
              a.rows * b.cols >= BinaryMatrix.sharedMemoryThreshold else { return nil }
        let (m, k, n) = (a.rows, a.cols, b.cols)
        let size = MemoryLayout<Double>.size
        // A caller that names its own result segment reuses its segments (the gateway's pool): keep them mapped.
        let keep = target != nil
        guard let left = MappedMatrixSegment.open(a.name, byteCount: m * k * size, keep: keep),
              let right = MappedMatrixSegment.open(b.name, byteCount: k * n * size, keep: keep) else { return nil }
        guard let result = target.flatMap({ MappedMatrixSegment.openForResult($0, byteCount: m * n * size) })
                ?? MappedMatrixSegment.createForResult(byteCount: m * n * size) else { return nil }
        do {
            try catalogue.matmul(m: m, n: n, k: k, a: left.doubles, b: right.doubles, into: result.doubles,
                                 isCancelled: { context.isCancelled })
        } catch {
            if result.created { SharedMatrixSegment.unlink(result.name) }
            throw RPCError(error)
        }
        let name = result.name
        return .text { line, _ in BinaryMatrix.appendShared(rows: m, cols: n, name: name, into: &line) }
        #else
        return nil
        #endif
    }
}
