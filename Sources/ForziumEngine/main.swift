import ArgumentParser
import ForziumEngineCore
import ForziumKernels

/// `forzium-engine`: the portable engine — pure Swift kernels, requests computed one at a time and answered in order
/// (while it computes it reads on, so `ping` and `$/cancelRequest` are handled at once).
struct ForziumEngineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forzium-engine",
        abstract: "Forzium compute engine (pure Swift fallback): JSON-RPC 2.0, one message per line on stdin/stdout.",
        discussion: "Logs go to stderr. Exits with status 0 when stdin ends, after answering every request read.",
        version: EngineRunner.version
    )

    @OptionGroup var options: EngineOptions

    func run() throws {
        let status = EngineRunner.run(kernels: FallbackKernels(), concurrency: .ordered, options: options)
        if status != 0 { throw ExitCode(status) }
    }
}

ForziumEngineCommand.main()
