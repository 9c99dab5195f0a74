// swift-tools-version:6.0
import PackageDescription

/// Kernels compiled for AVX2 + FMA. The SIMD engine checks the CPU at start-up before it runs any of this code.
let simdKernelFlags: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-target-cpu", "haswell"])]

let package = Package(
    name: "Forzium",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "forzium-engine", targets: ["ForziumEngine"]),
        .executable(name: "forzium-engine-simd", targets: ["ForziumEngineSIMD"]),
        .executable(name: "forzium-bench", targets: ["ForziumBench"]),
        .library(name: "ForziumJSON", targets: ["ForziumJSON"]),
        .library(name: "ForziumSchema", targets: ["ForziumSchema"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // JSON codec: strict byte-level parser and writer, numbers straight into [Double].
        .target(name: "ForziumJSON"),
        // JSON Schema 2020-12 validator over ForziumJSON values.
        .target(name: "ForziumSchema", dependencies: ["ForziumJSON"]),
        // JSON-RPC 2.0: line framing, envelopes, batches, dispatch, error objects.
        .target(name: "ForziumRPC", dependencies: ["ForziumJSON"]),
        // Operation catalogue (names, params decoding with JSON Pointers) and the portable fallback kernels.
        .target(name: "ForziumKernels", dependencies: ["ForziumJSON"]),
        // CPU feature detection (cpuid) so the SIMD engine never runs AVX2 code on a CPU without it.
        .target(name: "CForziumCPU"),
        // libjansson, via pkg-config (Debian: libjansson-dev).
        .systemLibrary(name: "CJansson", pkgConfig: "jansson", providers: [.apt(["libjansson-dev"])]),
        // Vectorised, multithreaded kernels (Swift SIMD types, AVX2 + FMA).
        .target(name: "ForziumKernelsSIMD", dependencies: ["ForziumKernels", "CForziumCPU"], swiftSettings: simdKernelFlags),
        // What both engine executables share: options, logging to stderr, the stdio serve loop.
        .target(name: "ForziumEngineCore", dependencies: [
            "ForziumJSON", "ForziumRPC", "ForziumKernels",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // jansson-backed message decoder for the SIMD engine (small lines via jansson, matrices via ForziumJSON).
        .target(name: "ForziumJansson", dependencies: ["CJansson", "ForziumJSON", "ForziumRPC"]),
        // Benchmarks: in-process kernel and codec figures; bench/run.py compares them with NumPy/orjson.
        .executableTarget(name: "ForziumBench", dependencies: [
            "ForziumKernels", "ForziumKernelsSIMD", "ForziumJSON", "ForziumJansson",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "ForziumEngine", dependencies: ["ForziumEngineCore", "ForziumKernels"]),
        .executableTarget(name: "ForziumEngineSIMD", dependencies: ["ForziumEngineCore", "ForziumKernelsSIMD", "CJansson", "CForziumCPU"]),

        .testTarget(name: "ForziumJSONTests", dependencies: ["ForziumJSON"]),
        .testTarget(name: "ForziumSchemaTests", dependencies: ["ForziumSchema", "ForziumJSON"]),
        .testTarget(name: "ForziumRPCTests", dependencies: ["ForziumRPC", "ForziumJSON"]),
        .testTarget(name: "ForziumKernelsTests", dependencies: ["ForziumKernels", "ForziumKernelsSIMD", "ForziumJSON"]),
        .testTarget(name: "ForziumJanssonTests", dependencies: ["ForziumJansson", "ForziumJSON"]),
        .testTarget(name: "ForziumIntegrationTests", dependencies: ["ForziumJSON", "ForziumEngine", "ForziumEngineSIMD"]),
    ]
)
