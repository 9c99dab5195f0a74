import CForziumCPU
import Foundation
import Testing

/// `forzium_cpu_quota` over directories laid out like a Linux system's `/proc/self/cgroup` and `/sys/fs/cgroup`
/// (the layouts of cgroup v2, of v1 as Docker and Kubernetes mount it, and of a container's namespaced view).
@Suite("The cgroup CPU quota caps the SIMD engine's threads")
struct CPUQuotaTests {
    /// A scratch root holding `files` (path relative to the root → first line).
    private func quota(_ files: [String: String]) throws -> Int32 {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("forzium-cgroup-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        for (path, line) in files {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try (line + "\n").write(to: url, atomically: true, encoding: .utf8)
        }
        return forzium_cpu_quota(root.path)
    }

    @Test("cgroup v2: the process's own cpu.max, rounded up; the tightest of it and its ancestors")
    func cgroupV2() throws {
        #expect(try quota([
            "proc/self/cgroup": "0::/kubepods/pod1/ctr",
            "sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "150000 100000",
        ]) == 2)
        #expect(try quota([
            "proc/self/cgroup": "0::/kubepods/pod1/ctr",
            "sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "400000 100000",
            "sys/fs/cgroup/kubepods/pod1/cpu.max": "100000 100000",
        ]) == 1)
        #expect(try quota([
            "proc/self/cgroup": "0::/system.slice/forzium.service",
            "sys/fs/cgroup/system.slice/forzium.service/cpu.max": "max 100000",
            "sys/fs/cgroup/cpu.max": "max 100000",
        ]) == 0)
    }

    @Test("cgroup v1: cfs_quota_us / cfs_period_us under the cpu or cpu,cpuacct mount; -1 is no quota")
    func cgroupV1() throws {
        #expect(try quota([
            "proc/self/cgroup": "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc",
            "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "250000",
            "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000",
        ]) == 3)
        #expect(try quota([
            "proc/self/cgroup": "4:cpu:/docker/abc",
            "sys/fs/cgroup/cpu/docker/abc/cpu.cfs_quota_us": "-1",
            "sys/fs/cgroup/cpu/docker/abc/cpu.cfs_period_us": "100000",
        ]) == 0)
        // Only the cpu controller's hierarchy counts (cpuacct alone sets no quota).
        #expect(try quota([
            "proc/self/cgroup": "2:cpuacct:/x",
            "sys/fs/cgroup/cpuacct/x/cpu.cfs_quota_us": "100000",
            "sys/fs/cgroup/cpuacct/x/cpu.cfs_period_us": "100000",
        ]) == 0)
    }

    @Test("A container's namespaced view: its limit sits at the hierarchy's root")
    func namespacedRoot() throws {
        #expect(try quota(["proc/self/cgroup": "0::/", "sys/fs/cgroup/cpu.max": "200000 100000"]) == 2)
        #expect(try quota([
            "proc/self/cgroup": "1:cpu:/",
            "sys/fs/cgroup/cpu/cpu.cfs_quota_us": "50000",
            "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000",
        ]) == 1)
        #expect(try quota([:]) == 0)
        #expect(try quota(["proc/self/cgroup": "garbage", "sys/fs/cgroup/cpu.max": "nonsense"]) == 0)
    }

    @Test("This machine: the cap is never above what the affinity mask allows, and at least 1")
    func thisMachine() {
        let available = forzium_cpu_available()
        #expect(available >= 1)
        #expect(available <= Int32(ProcessInfo.processInfo.activeProcessorCount))
        let quota = forzium_cpu_quota("")
        if quota > 0 { #expect(available <= quota) }
    }
}
