import ArgumentParser
import CForziumCPU
import ForziumEngineCore
import ForziumJansson
import ForziumKernelsSIMD
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `forzium-engine-simd`: the multithreaded engine. Reads on while requests compute and answers each as it finishes.
struct ForziumEngineSIMDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forzium-engine-simd",
        abstract: "Forzium compute engine (SIMD, multithreaded): JSON-RPC 2.0, one message per line on stdin/stdout.",
        discussion: "Needs a CPU with AVX2 and FMA; without them it exits with status 3 before running any vector code "
            + "(FORZIUM_SIMD_REFUSE=1 in the environment forces that refusal). Replies may come out of order (match "
            + "them by id). Logs go to stderr. Exits with status 0 when stdin ends, after answering every request read.",
        version: EngineRunner.version
    )

    @OptionGroup var options: EngineOptions
    @OptionGroup var concurrencyOptions: ConcurrencyOptions

    func run() throws {
        // FORZIUM_SIMD_REFUSE=1 takes the refusal path on any CPU (to test it, or to keep this engine off a host).
        let refused = getenv("FORZIUM_SIMD_REFUSE").map { String(cString: $0) == "1" } ?? false
        guard forzium_cpu_has_avx2_fma() != 0, !refused else {
            EngineRunner.bootstrapLogging(level: options.level, format: options.format)
            Logger(label: "forzium-engine-simd").critical(
                "this CPU lacks AVX2 and/or FMA, which forzium-engine-simd is compiled for; use forzium-engine instead",
                metadata: refused ? ["reason": "FORZIUM_SIMD_REFUSE=1"] : [:])
            throw ExitCode(3)
        }
        // Only now, with AVX2 + FMA known to be there, is any code of ForziumKernelsSIMD touched.
        let status = EngineRunner.run(
            name: "forzium-engine-simd",
            kernels: SIMDKernels(threads: concurrencyOptions.threads ?? SIMDKernels.availableCores),
            decoder: JanssonHybridDecoder(),
            concurrency: .concurrent,
            options: options
        )
        if status != 0 { throw ExitCode(status) }
    }
}

ForziumEngineSIMDCommand.main()
