import Testing
import ForziumRPC

@Suite("Allocator settings")
struct MemoryTuningTests {
    /// The settings must really reach glibc (they once were a silent no-op: the shim's `__GLIBC__` test ran before any
    /// libc header) and glibc must accept these values.
    @Test func settingsTakeEffectOnGlibc() {
        #if os(Linux) && canImport(Glibc)
        #expect(MemoryTuning.returnLargeBuffers())
        #endif
    }
}
