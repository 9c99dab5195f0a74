import CForziumCPU
import ForziumJSON
import ForziumKernels
@_exported import ForziumLogging
import ForziumRPC
import ForziumSchemaBundle
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How an engine runs requests. Either way it reads on while requests compute (so `ping` and `$/cancelRequest` are
/// handled as they arrive), with at most `--max-in-flight` requests queued or computing; past that it stops reading
/// stdin until one finishes (back-pressure).
public enum EngineConcurrency: Sendable, Equatable {
    /// One at a time on one compute thread, replies in request order (the fallback engine).
    case ordered
    /// Several at once; replies go out as each finishes.
    case concurrent
}

/// The engine shell shared by `forzium-engine` and `forzium-engine-simd`.
public enum EngineRunner {
    /// The engine version reported by `engine.info`.
    public static let version = ForziumVersion.string

    /// CPUs this engine may use: its affinity mask capped by its cgroup CPU quota (`forzium_cpu_available`).
    public static var onlineCores: Int { max(1, Int(forzium_cpu_available())) }

    /// Sends swift-log output to stderr at `level` in `format` (stdout carries protocol lines only). Call once per process.
    public static func bootstrapLogging(level: Logger.Level, format: LogFormat = .text) {
        ForziumLogging.bootstrap(level: level, format: format)
    }

    /// The `engine.info` result.
    public static func info(name: String, kernels: any Kernels, options: EngineOptions) -> JSONValue {
        .object(JSONObject([
            ("name", .string(name)),
            ("kind", .string(kernels.kind)),
            ("version", .string(version)),
            ("threads", .exactInteger(kernels.threads)),
            ("simd_width", .exactInteger(kernels.vectorWidth)),
            ("isa", .string(kernels.isa)),
            ("methods", .array(methodNames.map { .string($0) })),
            ("schema_digest", schemaDigest),
            ("max_line_bytes", .exactInteger(options.maxLineBytes)),
            ("max_elements", .exactInteger(options.maxElements)),
            ("max_in_flight", .exactInteger(options.resolvedMaxInFlight)),
        ]))
    }

    /// Every method an engine answers.
    public static var methodNames: [String] {
        var names = OperationCatalogue.methodNames
        for extra in ["stream", "engine.info", RPCEncoder.pingMethod] where !names.contains(extra) { names.append(extra) }
        return names
    }

    /// The digest of the schemas built into the binary (`ForziumSchemaBundle`, generated from `schemas/`).
    static var schemaDigest: JSONValue { .string(SchemaBundle.digest) }

    /// Serves JSON-RPC on stdin/stdout until stdin ends (exit status 0 once every request read is answered) or
    /// stdout closes. Bootstraps logging first. Returns the process exit status.
    /// - Parameters:
    ///   - name: engine name for `engine.info` and logs (default from `kernels.kind`).
    ///   - kernels: the kernels behind every operation.
    ///   - decoder: parses request lines.
    ///   - concurrency: in order on one compute thread, or concurrent.
    ///   - options: the common command-line options.
    public static func run(
        name: String? = nil,
        kernels: any Kernels,
        decoder: any MessageDecoder = JSONParserDecoder(),
        concurrency: EngineConcurrency,
        options: EngineOptions,
        input: Int32 = 0,
        output: Int32 = 1
    ) -> Int32 {
        bootstrapLogging(level: options.level, format: options.format)
        MemoryTuning.returnLargeBuffers()
        let engineName = name ?? (kernels.kind == "simd" ? "forzium-engine-simd" : "forzium-engine")
        let logger = Logger(label: engineName)
        // A closed stdout must surface as EPIPE from write(2), never as a fatal signal.
        signal(SIGPIPE, SIG_IGN)

        let catalogue = OperationCatalogue(kernels: kernels, limits: OperationLimits(maxElements: options.maxElements))
        let handler = EngineHandler(catalogue: catalogue, info: info(name: engineName, kernels: kernels, options: options))
        let maxInFlight = options.resolvedMaxInFlight
        let serveConcurrency: ServeConcurrency
        switch concurrency {
        case .ordered:
            serveConcurrency = .ordered(maxInFlight: maxInFlight)
        case .concurrent:
            serveConcurrency = .concurrent(maxInFlight: maxInFlight, workers: min(maxInFlight, 64))
        }
        // The multithreaded engine also formats large results on its kernel threads; the fallback stays single-threaded.
        let writerThreads = concurrency == .ordered ? 1 : kernels.threads
        // Likewise large matrices are copied in and out of shared-memory segments by the kernel threads together.
        SharedMatrixSegment.copyThreads = writerThreads
        let dispatcher = RPCDispatcher(handler: handler, decoder: decoder, writerThreads: writerThreads)
        let server = RPCServer(dispatcher: dispatcher, concurrency: serveConcurrency)
        logger.info("serving JSON-RPC on stdio", metadata: [
            "kind": "\(kernels.kind)", "threads": "\(kernels.threads)", "simd_width": "\(kernels.vectorWidth)", "isa": "\(kernels.isa)",
            "concurrency": "\(concurrency)", "max_in_flight": "\(maxInFlight)", "max_line_bytes": "\(options.maxLineBytes)",
            "max_elements": "\(options.maxElements)",
        ])
        // Whoever started the engine (a script, a shell pipeline) gets 1 MiB pipes, as the gateway makes them.
        PipeCapacity.enlarge(input)
        PipeCapacity.enlarge(output)
        let reader = LineReader(
            source: FileDescriptorSource(descriptor: input), maxLineBytes: options.maxLineBytes,
            streamLinesFrom: RPCServer.streamLinesFrom)
        let writer = LineWriter(descriptor: output)
        let summary = server.serve(reader: reader, sink: writer) { length in
            logger.warning("rejected a line of \(length) bytes (over --max-line-bytes \(options.maxLineBytes)); answered -32600")
        }
        if let error = reader.source.readError {
            logger.error("reading stdin failed: \(String(cString: strerror(error)))")
        }
        switch summary.end {
        case .endOfInput:
            logger.info("stdin closed; all requests answered", metadata: [
                "lines": "\(summary.lines)", "oversize_lines": "\(summary.oversizeLines)",
            ])
        case .outputClosed:
            let reason = writer.writeError.map { String(cString: strerror($0)) } ?? "closed"
            logger.notice("stdout closed (\(reason)); stopping", metadata: ["lines": "\(summary.lines)"])
        }
        return 0
    }
}
