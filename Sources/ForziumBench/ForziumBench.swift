import ArgumentParser
import ForziumKernels
import ForziumKernelsSIMD
import ForziumRPC

/// In-process benchmarks. Each subcommand prints one JSON object per measurement on stdout, which
/// `bench/run.py` collects and sets against NumPy / orjson measured in the same run.
@main
struct ForziumBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forzium-bench",
        abstract: "Forzium in-process benchmarks (see bench/run.py for the full comparison table).",
        subcommands: [MatmulBench.self, KernelsBench.self, JSONFileBench.self, MatrixWriteBench.self, DecoderSweepBench.self, WireBench.self])
}

struct MatmulBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matmul", abstract: "f64 matmul GFLOPS of SIMDKernels (and optionally FallbackKernels).")

    @Option(help: "Comma-separated square sizes.")
    var sizes: String = "256,512,1024,2048"

    @Option(help: "Worker threads for SIMDKernels (default: all available cores).")
    var threads: Int = SIMDKernels.availableCores

    @Option(help: "Minimum seconds of timing per size.")
    var minTime: Double = 1.0

    @Option(help: "Kernels to time: simd or fallback.")
    var impl: String = "simd"

    @Flag(help: "Time by the process's CPU time instead of wall time (use with --threads 1 on a busy machine).")
    var cpuTime = false

    @Option(help: "SIMD instruction set: auto, avx2 or avx512 (default: $FORZIUM_ISA, else auto = the widest supported).")
    var isa: String?

    @Flag(help: "Write every product into one preallocated C (as NumPy's `matmul(a, b, out=c)`), timing the kernel without the allocation and first-touch page faults of a fresh result.")
    var into = false

    func run() throws {
        // The allocator settings the engines run with (results of up to 64 MiB are reused, not mapped afresh).
        MemoryTuning.returnLargeBuffers()
        let kernels: any Kernels
        switch impl {
        case "simd":
            let chosen: SIMDISA
            do { chosen = try SIMDISA.select(flag: isa) } catch { throw ValidationError("\(error)") }
            kernels = SIMDKernels(threads: threads, isa: chosen)
        case "fallback":
            kernels = FallbackKernels()
        default:
            throw ValidationError("--impl must be simd or fallback")
        }
        let threads = kernels.threads
        for n in sizes.split(separator: ",").compactMap({ Int(String($0)) }) {
            let a = Matrix(rows: n, cols: n, storage: randomDoubles(n * n, seed: 1))
            let b = Matrix(rows: n, cols: n, storage: randomDoubles(n * n, seed: 2))
            var sink = 0.0
            var c = [Double](repeating: 0, count: n * n)
            let seconds: Double = medianSeconds(minTime: minTime, clock: cpuTime ? processCPUTime : now) {
                if into {
                    a.storage.withUnsafeBufferPointer { pa in
                        b.storage.withUnsafeBufferPointer { pb in
                            c.withUnsafeMutableBufferPointer { pc in
                                kernels.matmul(m: n, n: n, k: n, a: pa.baseAddress!, b: pb.baseAddress!, into: pc.baseAddress!)
                            }
                        }
                    }
                    sink += c[0]
                } else {
                    sink += kernels.matmul(a, b).storage[0]
                }
            }
            let gflops: Double = 2.0 * Double(n) * Double(n) * Double(n) / seconds / 1e9
            print(#"{"bench":"matmul","impl":"\#(impl)","isa":"\#(kernels.isa)","into":\#(into),"n":\#(n),"threads":\#(threads),"seconds":\#(seconds),"gflops":\#(gflops)}"#)
            if sink.isNaN { print("") }
        }
    }
}

struct KernelsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels", abstract: "Throughput of the elementwise kernels (GB/s of input+output).")

    @Option(help: "Square size.")
    var n: Int = 1024

    @Option(help: "Worker threads for SIMDKernels.")
    var threads: Int = SIMDKernels.availableCores

    func run() throws {
        let kernels = SIMDKernels(threads: threads)
        let a = Matrix(rows: n, cols: n, storage: randomDoubles(n * n, seed: 3))
        let b = Matrix(rows: n, cols: n, storage: randomDoubles(n * n, seed: 4))
        let bytes = Double(n * n * 8)
        func report(_ name: String, _ traffic: Double, _ body: () -> Void) {
            let s = medianSeconds(minTime: 0.5, body)
            print(#"{"bench":"kernel","op":"\#(name)","n":\#(n),"seconds":\#(s),"gbps":\#(traffic * bytes / s / 1e9)}"#)
        }
        report("scale", 2) { _ = kernels.scale(a, by: 2) }
        report("elementwise_add", 3) { _ = kernels.elementwise(.add, a, b) }
        report("transpose", 2) { _ = kernels.transpose(a) }
        report("sum", 1) { _ = kernels.reduce(.sum, a, axis: nil) }
        report("max", 1) { _ = kernels.reduce(.max, a, axis: nil) }
        report("conv2d_3x3", 2) { _ = kernels.conv2d(a, kernel: Matrix(rows: 3, cols: 3, storage: Array(repeating: 1.0 / 9, count: 9))) }
        report("max_pool2d_2", 1.25) { _ = kernels.maxPool2d(a, size: 2) }
        report("normalize_l2", 2) { _ = kernels.normalize(a, mode: .l2) }
    }
}
