import NIOCore

/// A Swift task executor that runs jobs on one NIO event loop. A task that prefers it (`withTaskExecutorPreference`)
/// resumes on the loop's thread after every `await`, so work that alternates with the loop's I/O — a request's parts
/// arriving, its response being written, an engine's reply coming back on the same loop — never changes threads.
/// Jobs are always queued with `execute` (never run inline), so a resume cannot re-enter the code that caused it;
/// from the loop's own thread that is an append to its task queue, with no wake-up.
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    let loop: any EventLoop

    init(_ loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}

/// Work too big for an event loop thread (parsing and validating a large body, printing a large result, deflating a
/// large response) runs on the global concurrent executor; small requests stay on their connection's loop.
enum Offload {
    /// Bodies and results above this many bytes are handled off the event loop.
    static let inlineBytes = 64 << 10

    /// Whether a request's body is large enough to be parsed off the loop: declared above `inlineBytes`, or of
    /// unknown length (chunked).
    static func isHeavy(contentLength: String?) -> Bool {
        guard let contentLength, let bytes = Int(contentLength) else { return true }
        return bytes > inlineBytes
    }

    /// Runs `body` on the global concurrent executor when `heavy`, else where the task already is.
    static func run<T>(if heavy: Bool, _ body: () async throws -> T) async throws -> T {
        guard heavy else { return try await body() }
        return try await withTaskExecutorPreference(globalConcurrentExecutor, operation: body)
    }
}
