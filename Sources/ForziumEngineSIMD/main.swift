import ArgumentParser
import CForziumCPU
import ForziumEngineCore
import ForziumJansson
import ForziumKernelsSIMD
import ForziumRPC
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
            + "(FORZIUM_SIMD_REFUSE=1 in the environment forces that refusal). "
            + "The matmul runs AVX-512 kernels where cpuid and xgetbv allow, else AVX2 (--isa / FORZIUM_ISA override; "
            + "engine.info reports isa and simd_width). Replies may come out of order (match "
            + "them by id). Logs go to stderr. Exits with status 0 when stdin ends, after answering every request read.",
        version: EngineRunner.version
    )

    @OptionGroup var options: EngineOptions
    @OptionGroup var concurrencyOptions: ConcurrencyOptions

    @Option(name: .long, help: "Instruction set of the matmul kernel: auto (the widest this CPU and OS support), avx2 or avx512. Default: $FORZIUM_ISA, else auto. Asking for one the machine lacks exits with status 3.")
    var isa: String?

    @Option(name: .long, help: "Request decoder: forzium (JSONParser, as forzium-engine; the default) or hybrid (libjansson for lines under 512 bytes, JSONParser for the rest and for every line jansson refuses; same verdicts and values, kept as a measured comparison).")
    var jsonDecoder: String = "forzium"

    func validate() throws {
        guard ["forzium", "hybrid"].contains(jsonDecoder) else {
            throw ValidationError("--json-decoder must be forzium or hybrid")
        }
        if let isa, isa.lowercased() != "auto", SIMDISA(rawValue: isa.lowercased()) == nil {
            throw ValidationError("--isa must be auto, avx2 or avx512")
        }
    }

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
        // The ISA is chosen once, here: --isa, else $FORZIUM_ISA, else the widest one cpuid + xgetbv report.
        let instructionSet: SIMDISA
        do {
            instructionSet = try SIMDISA.select(flag: isa)
        } catch {
            EngineRunner.bootstrapLogging(level: options.level)
            Logger(label: "forzium-engine-simd").critical("cannot use the requested instruction set: \(error)")
            throw ExitCode(3)
        }
        // Only now, with AVX2 + FMA known to be there, is any code of ForziumKernelsSIMD touched.
        let kernels = SIMDKernels(threads: concurrencyOptions.threads ?? SIMDKernels.availableCores, isa: instructionSet)
        let status = EngineRunner.run(
            name: "forzium-engine-simd",
            kernels: kernels,
            // Matrix rows are read by two threads when there are two cores (the fallback engine reads with one).
            decoder: jsonDecoder == "hybrid" ? JanssonHybridDecoder() : JSONParserDecoder(threads: min(2, kernels.threads)),
            concurrency: .concurrent,
            options: options
        )
        if status != 0 { throw ExitCode(status) }
    }
}

ForziumEngineSIMDCommand.main()
