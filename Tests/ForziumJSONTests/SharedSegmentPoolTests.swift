import ForziumJSON
import Testing

@Suite("Shared-memory segment pool")
struct SharedSegmentPoolTests {
    @Test("a released segment is handed out again, resized, and readers see its exact size and bytes")
    func reuse() throws {
        let pool = SharedSegmentPool(retainedBytes: 1 << 20)
        defer { pool.removeAll() }
        let first = try #require(pool.acquire(byteCount: 4096))
        let values = (0..<512).map { Double($0) * 0.5 }
        #expect(values.withUnsafeBytes { first.write($0, at: 0) })
        #expect(try SharedMatrixSegment.read(first.name, count: 512) == values)
        pool.release(first)
        #expect(pool.heldBytes == 4096)

        // The closest in size comes back, cut to the size asked for; a reader's size check sees the new size.
        let again = try #require(pool.acquire(byteCount: 800))
        #expect(again === first && again.byteCount == 800 && pool.heldBytes == 0)
        #expect(try SharedMatrixSegment.read(again.name, count: 100) == Array(values.prefix(100)))
        #expect(throws: PointerIssue.self) { try SharedMatrixSegment.read(again.name, count: 512) }
        // Writing past the end is refused, not grown.
        #expect(!values.withUnsafeBytes { again.write($0, at: 0) })
        pool.release(again)
    }

    @Test("the smallest large-enough segment is chosen; past the budget a released segment is removed")
    func choiceAndBudget() throws {
        let pool = SharedSegmentPool(retainedBytes: 10_000)
        defer { pool.removeAll() }
        let small = try #require(pool.acquire(byteCount: 1000))
        let large = try #require(pool.acquire(byteCount: 8000))
        let extra = try #require(pool.acquire(byteCount: 4000))
        pool.release(small)
        pool.release(large)
        #expect(pool.heldBytes == 9000)
        pool.release(extra) // 13,000 > 10,000: removed
        #expect(pool.heldBytes == 9000)
        #expect(throws: PointerIssue.self) { try SharedMatrixSegment.read(extra.name, count: 500) }
        let pick = try #require(pool.acquire(byteCount: 900))
        #expect(pick === small)
        let grown = try #require(pool.acquire(byteCount: 9000)) // none is large enough: the largest grows
        #expect(grown === large && grown.byteCount == 9000)
        pool.release(pick)
        pool.release(grown)
    }

    @Test("another process's resize is seen on release; discard and removeAll remove the objects")
    func resizeAndRemoval() throws {
        let pool = SharedSegmentPool(retainedBytes: 1 << 20)
        let segment = try #require(pool.acquire(byteCount: 64))
        // An engine writes a larger result into it (what `"$result":{"shm":name}` does).
        let result = (0..<1000).map(Double.init)
        #expect(result.withUnsafeBufferPointer { SharedMatrixSegment.overwrite(segment.name, copying: $0) })
        #expect(segment.currentByteCount() == 8000)
        pool.release(segment)
        #expect(pool.heldBytes == 8000 && segment.byteCount == 8000)
        let other = try #require(pool.acquire(byteCount: 16))
        pool.discard(other)
        #expect(throws: PointerIssue.self) { try SharedMatrixSegment.read(other.name, count: 2) }
        let kept = try #require(pool.acquire(byteCount: 16))
        pool.release(kept)
        pool.removeAll()
        #expect(pool.heldBytes == 0)
        #expect(throws: PointerIssue.self) { try SharedMatrixSegment.read(kept.name, count: 2) }
        // Overwriting a segment that does not exist, or one that is not a Forzium name, fails (the engine then makes its own).
        #expect(![1.0].withUnsafeBufferPointer { SharedMatrixSegment.overwrite(kept.name, copying: $0) })
        #expect(![1.0].withUnsafeBufferPointer { SharedMatrixSegment.overwrite("/etc-passwd", copying: $0) })
    }
}
