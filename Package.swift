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
        .executable(name: "forzium-gateway", targets: ["ForziumGateway"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
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
        // Benchmarks: in-process kernel and codec figures; bench/run.py compares them with NumPy/orjson.
        .executableTarget(name: "ForziumBench", dependencies: [
            "ForziumKernels", "ForziumKernelsSIMD", "ForziumJSON",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "ForziumEngine", dependencies: ["ForziumEngineCore", "ForziumKernels"]),
        .executableTarget(name: "ForziumEngineSIMD", dependencies: ["ForziumEngineCore", "ForziumKernelsSIMD", "CJansson", "CForziumCPU"]),
        // Gateway library: configuration, route table, engine discovery and pool, HTTP errors, OpenAPI, metrics.
        .target(name: "ForziumGatewayCore", dependencies: [
            "ForziumJSON", "ForziumSchema",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "ForziumGateway", dependencies: ["ForziumGatewayCore"]),

        .testTarget(name: "ForziumJSONTests", dependencies: ["ForziumJSON"]),
        .testTarget(name: "ForziumSchemaTests", dependencies: ["ForziumSchema", "ForziumJSON"]),
        .testTarget(name: "ForziumRPCTests", dependencies: ["ForziumRPC", "ForziumJSON"]),
        .testTarget(name: "ForziumKernelsTests", dependencies: ["ForziumKernels", "ForziumKernelsSIMD", "ForziumJSON"]),
        .testTarget(name: "ForziumIntegrationTests", dependencies: ["ForziumJSON", "ForziumEngine", "ForziumEngineSIMD"]),
        .testTarget(name: "ForziumGatewayTests", dependencies: [
            "ForziumGatewayCore", "ForziumJSON", "ForziumGateway", "ForziumEngine", "ForziumEngineSIMD",
        ]),
    ]
)
