import ArgumentParser
import ForziumEngineCore
import ForziumKernels

/// `forzium-engine`: the portable engine — pure Swift kernels, requests answered one at a time, in order.
struct ForziumEngineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forzium-engine",
        abstract: "Forzium compute engine (pure Swift fallback): JSON-RPC 2.0, one message per line on stdin/stdout.",
        discussion: "Logs go to stderr. Exits with status 0 when stdin ends, after answering every request read."
    )

    @OptionGroup var options: EngineOptions

    func run() throws {
        let status = EngineRunner.run(kernels: FallbackKernels(), concurrency: .sequential, options: options)
        if status != 0 { throw ExitCode(status) }
    }
}

ForziumEngineCommand.main()
