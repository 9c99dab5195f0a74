#if canImport(Glibc)
import Glibc
#endif
@testable import ForziumJSON
import Testing

/// Segments mapped for computing in place, and the mappings kept between requests (`SegmentMappingCache`).
@Suite("Mapped segments and the mappings kept for reuse", .serialized)
struct MappedSegmentTests {
    /// A segment of `count` doubles 0, 1, 2, ….
    private func segment(_ count: Int) throws -> String {
        let values = (0..<count).map(Double.init)
        return try #require(values.withUnsafeBufferPointer { SharedMatrixSegment.create(copying: $0) })
    }

    @Test("a caller's reused segment is mapped once: the second open and the result form share the first mapping")
    func reused() throws {
        let cache = SegmentMappingCache.shared
        cache.removeAll()
        defer { cache.removeAll() }
        let name = try segment(4096)
        defer { SharedMatrixSegment.unlink(name) }
        let first = try #require(MappedMatrixSegment.open(name, byteCount: 4096 * 8, keep: true))
        #expect(first.doubles[4095] == 4095)
        #expect(cache.kept.count == 1 && cache.kept.bytes == 4096 * 8)
        let second = try #require(MappedMatrixSegment.open(name, byteCount: 4096 * 8, keep: true))
        #expect(second.doubles == first.doubles)
        // The same segment as a result: the same mapping, writable, and writes reach the segment.
        let result = try #require(MappedMatrixSegment.openForResult(name, byteCount: 4096 * 8))
        #expect(result.doubles == first.doubles)
        result.doubles[0] = -1
        #expect(try SharedMatrixSegment.read(name, count: 4096)[0] == -1)
        #expect(cache.kept.count == 1)
    }

    @Test("a segment used once is not kept; one removed or resized is dropped at the next look, never reused")
    func dropped() throws {
        let cache = SegmentMappingCache.shared
        cache.removeAll()
        defer { cache.removeAll() }
        let once = try segment(1024)
        _ = try #require(MappedMatrixSegment.open(once, byteCount: 1024 * 8))
        #expect(cache.kept.count == 0)
        SharedMatrixSegment.unlink(once)

        let removed = try segment(1024)
        let resized = try segment(2048)
        defer { SharedMatrixSegment.unlink(resized) }
        let a = try #require(MappedMatrixSegment.open(removed, byteCount: 1024 * 8, keep: true))
        let b = try #require(MappedMatrixSegment.open(resized, byteCount: 2048 * 8, keep: true))
        #expect(cache.kept.count == 2)
        SharedMatrixSegment.unlink(removed)
        // Cut to half (as the gateway's pool does when it hands a segment out for a smaller matrix).
        let fd = try #require(Optional(shm_open(resized, O_RDWR, 0)).flatMap { $0 >= 0 ? $0 : nil })
        #expect(ftruncate(fd, 1024 * 8) == 0)
        close(fd)
        let smaller = try #require(MappedMatrixSegment.openForResult(resized, byteCount: 1024 * 8))
        #expect(smaller.doubles != b.doubles)
        smaller.doubles[1023] = 7
        #expect(try SharedMatrixSegment.read(resized, count: 1024)[1023] == 7)
        // The removed segment's mapping and the stale full-size one are gone; the new one is kept.
        #expect(cache.kept.count == 1 && cache.kept.bytes == 1024 * 8)
        #expect(a.doubles[1] == 1)  // a holder still reads its own mapping until it lets go
        #expect(MappedMatrixSegment.open(resized, byteCount: 2048 * 8, keep: true) == nil)
    }

    @Test("past the budget the least recently used mapping is dropped")
    func budget() throws {
        let cache = SegmentMappingCache(budget: 3 * 4096 * 8)
        var names: [String] = []
        defer { for name in names { SharedMatrixSegment.unlink(name) } }
        var mappings: [SegmentMapping] = []
        for _ in 0..<4 {
            let name = try segment(4096)
            names.append(name)
            let fd = shm_open(name, O_RDWR, 0)
            let identity = try #require(SegmentIdentity(fd))
            let mapping = try #require(SegmentMapping(fd: fd, identity: identity, byteCount: 4096 * 8, writable: true))
            mappings.append(mapping)
            cache.keep(mapping, name: name)
            // Touch the first one, so that it is not the least recently used.
            if names.count == 3 { _ = cache.take(name: names[0], identity: mappings[0].identity, writable: false) }
        }
        #expect(cache.kept.count == 3)
        #expect(cache.take(name: names[1], identity: mappings[1].identity, writable: false) == nil)
        #expect(cache.take(name: names[0], identity: mappings[0].identity, writable: false) === mappings[0])
        #expect(cache.take(name: names[3], identity: mappings[3].identity, writable: true) === mappings[3])

        // And past the count, whatever the bytes: the least recently used (names[2]) goes.
        let counted = SegmentMappingCache(budget: 1 << 30, maxEntries: 2)
        for index in [2, 0, 3] { counted.keep(mappings[index], name: names[index]) }
        #expect(counted.kept.count == 2)
        #expect(counted.take(name: names[2], identity: mappings[2].identity, writable: false) == nil)
    }
}
