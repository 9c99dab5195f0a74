import CForziumSystem
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ForziumRPC
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// An engine could not be started.
package struct EngineSpawnError: Error, CustomStringConvertible {
    package var message: String
    package var description: String { message }
}

/// One child process: spawning it with its stdin, stdout and stderr on fresh pipes, signalling it, and reaping it.
///
/// Reaping never polls: `waitForExit` blocks in `waitid(WNOWAIT)` on a thread-pool thread until the child is gone,
/// then reaps it. Signals are only sent while the child has not been reaped, so a recycled pid is never hit.
package final class EngineChild: Sendable {
    /// The parent's ends of the child's standard streams; the caller owns (and must close or hand over) them.
    package struct Pipes: Sendable {
        /// Write end of the child's stdin.
        package var stdin: CInt
        /// Read end of the child's stdout.
        package var stdout: CInt
        /// Read end of the child's stderr.
        package var stderr: CInt
    }

    package let pid: pid_t
    /// True once the child is known to have exited (it may still be a zombie until reaped; signals stop then).
    private let exited = NIOLockedValueBox(false)

    /// Serialises spawns so that no child ever inherits another engine's pipe ends between `pipe()` and `FD_CLOEXEC`.
    private static let spawnLock = NIOLock()

    private init(pid: pid_t) { self.pid = pid }

    /// Starts `executable` with `arguments`; the child gets default signal dispositions and no descriptor beyond 0–2.
    package static func spawn(executable: String, arguments: [String]) throws -> (EngineChild, Pipes) {
        try spawnLock.withLock {
            var created: [CInt] = []
            func makePipe() throws -> (read: CInt, write: CInt) {
                var fds: [CInt] = [-1, -1]
                guard pipe(&fds) == 0 else { throw EngineSpawnError(message: "pipe: \(String(cString: strerror(errno)))") }
                for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
                created += fds
                return (fds[0], fds[1])
            }
            do {
                let input = try makePipe(), output = try makePipe(), errors = try makePipe()
                for fd in [input.write, output.read] { PipeCapacity.enlarge(fd) }

                var actions = posix_spawn_file_actions_t()
                posix_spawn_file_actions_init(&actions)
                defer { posix_spawn_file_actions_destroy(&actions) }
                posix_spawn_file_actions_adddup2(&actions, input.read, 0)
                posix_spawn_file_actions_adddup2(&actions, output.write, 1)
                posix_spawn_file_actions_adddup2(&actions, errors.write, 2)
                // Nothing else crosses: descriptors the gateway opens without FD_CLOEXEC (accepted client sockets
                // among them) would otherwise live on in the engine, and a connection the gateway closes would
                // stay open (no FIN) for as long as the engine runs.
                _ = forzium_spawn_close_from(&actions, 3)
                var attributes = posix_spawnattr_t()
                posix_spawnattr_init(&attributes)
                defer { posix_spawnattr_destroy(&attributes) }
                // Children start with default signal dispositions (the gateway ignores SIGPIPE and traps SIGHUP; engines should not).
                var defaults = sigset_t()
                sigemptyset(&defaults)
                sigaddset(&defaults, SIGPIPE)
                sigaddset(&defaults, SIGHUP)
                posix_spawnattr_setsigdefault(&attributes, &defaults)
                posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF))

                let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
                defer { for pointer in argv { free(pointer) } }
                let envp: [UnsafeMutablePointer<CChar>?] = engineEnvironment().map { strdup($0) } + [nil]
                defer { for pointer in envp { free(pointer) } }
                var child: pid_t = 0
                let rc = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
                close(input.read); close(output.write); close(errors.write)
                guard rc == 0 else {
                    close(input.write); close(output.read); close(errors.read)
                    throw EngineSpawnError(message: "cannot start \(executable): \(String(cString: strerror(rc)))")
                }
                return (EngineChild(pid: child), Pipes(stdin: input.write, stdout: output.read, stderr: errors.read))
            } catch {
                for fd in created { close(fd) }
                throw error
            }
        }
    }

    /// The gateway's environment for an engine, with glibc's allocator asked to back its large blocks with
    /// transparent huge pages (`glibc.malloc.hugetlb=1`; the gateway's own `GLIBC_TUNABLES` are kept, and a hugetlb
    /// setting there wins). An engine gives every matrix of 1 MiB or more its own mapping and returns it when the
    /// request is over (`MemoryTuning.returnLargeBuffers`), so each large request faults its matrices in afresh: with
    /// huge pages that is one fault per 2 MiB instead of one per 4 KiB (a 1024×1024 matmul: ~12 instead of ~6,000).
    /// Where transparent huge pages are off, or under musl, the setting does nothing.
    static func engineEnvironment() -> [String] {
        var variables: [String] = []
        var cursor = environ
        while let entry = cursor.pointee {
            variables.append(String(cString: entry))
            cursor += 1
        }
        let key = "GLIBC_TUNABLES="
        if let index = variables.firstIndex(where: { $0.hasPrefix(key) }) {
            if !variables[index].contains("glibc.malloc.hugetlb") {
                variables[index] += (variables[index] == key ? "" : ":") + "glibc.malloc.hugetlb=1"
            }
        } else {
            variables.append(key + "glibc.malloc.hugetlb=1")
        }
        return variables
    }

    /// Sends `signal` unless the child has already exited.
    package func signal(_ signal: CInt) {
        exited.withLockedValue { exited in
            if !exited { _ = kill(pid, signal) }
        }
    }

    /// Waits (on `threadPool`, never on an event loop) until the child exits and reaps it; sends SIGKILL when it has
    /// not exited `killAfter` after the call. Returns the raw wait status.
    package func waitForExit(threadPool: NIOThreadPool, eventLoop: any EventLoop, killAfter: TimeAmount) -> EventLoopFuture<CInt> {
        let killer = eventLoop.scheduleTask(in: killAfter) { [self] in self.signal(SIGKILL) }
        let pid = self.pid
        let exited = self.exited
        let reaped = threadPool.runIfActive(eventLoop: eventLoop) { () -> CInt in
            var info = siginfo_t()
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0, errno == EINTR {}
            // The child is a zombie now: its pid cannot be reused until it is reaped, so flip the flag first.
            return exited.withLockedValue { exited -> CInt in
                exited = true
                var status: CInt = 0
                while waitpid(pid, &status, 0) < 0, errno == EINTR {}
                return status
            }
        }
        reaped.whenComplete { _ in killer.cancel() }
        return reaped
    }

    /// `exit code N` or `signal N` for a wait status.
    package static func describe(status: CInt) -> String {
        let signal = status & 0x7f
        if signal == 0 { return "exit code \((status >> 8) & 0xff)" }
        return "signal \(signal)"
    }
}
