import ArgumentParser
import Dispatch
import ForziumJSON
import ForziumRPC

#if canImport(Glibc)
import Glibc
#endif

/// The two ways a matrix can cross the engine pipe without decimal text, timed for one n×n matrix end to end
/// (writer's encoding → bytes through a real pipe or a shared-memory object → reader's `[Double]`):
/// - `base64`: `BinaryMatrix` text written into a pipe by one thread and read back and decoded by another;
/// - `shm`: a POSIX shared-memory segment written with one `write` (`SharedMatrixSegment.create`); the reader reads it
///   out with one `pread` and removes it;
/// - `json`: the decimal text the engines used before (shortest round-trip write, parse), for scale.
struct WireBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire", abstract: "Matrix transfer between two threads: base64 through a pipe vs a shared-memory object vs JSON text.")

    @Option(help: "Comma-separated square sizes.")
    var sizes: String = "512,1024"

    func run() throws {
        for n in sizes.split(separator: ",").compactMap({ Int(String($0)) }) {
            let values = randomDoubles(n * n, seed: 7)
            let base64 = medianSeconds(minTime: 1) { precondition(Self.viaPipe(values, n: n, binary: true).count == n * n) }
            let shm = medianSeconds(minTime: 1) { precondition(Self.viaSharedMemory(values, n: n).count == n * n) }
            let json = medianSeconds(minTime: 1) { precondition(Self.viaPipe(values, n: n, binary: false).count == n * n) }
            var text: [UInt8] = []
            let encode = medianSeconds(minTime: 0.5) {
                text.removeAll(keepingCapacity: true)
                values.withUnsafeBufferPointer { BinaryMatrix.write(rows: n, cols: n, $0, into: &text) }
            }
            let parse = medianSeconds(minTime: 0.5) { precondition((try? JSONParser().parse(text)) != nil) }
            let value = try JSONParser().parse(text)
            let decode = medianSeconds(minTime: 0.5) { precondition((try? BinaryMatrix(value, at: "")) != nil) }
            let scan = medianSeconds(minTime: 0.5) { precondition(text.withUnsafeBytes { BinaryMatrix.scan($0) } != nil) }
            for (name, seconds) in [("base64", base64), ("shm", shm), ("json", json), ("base64-encode", encode),
                                    ("base64-json-parse", parse), ("base64-decode-parsed", decode), ("base64-scan", scan)] {
                print(#"{"bench":"wire","transport":"\#(name)","n":\#(n),"seconds":\#(seconds),"mb_per_s":\#(Double(n * n * 8) / seconds / 1e6)}"#)
            }
        }
    }

    /// Encodes on this thread, reads and decodes on another, through a pipe.
    static func viaPipe(_ values: [Double], n: Int, binary: Bool) -> [Double] {
        var fds: [Int32] = [0, 0]
        precondition(pipe(&fds) == 0)
        PipeCapacity.enlarge(fds[1])  // as the gateway's engine pipes
        let reader = ThreadResult<[Double]> {
            var text: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let got = chunk.withUnsafeMutableBytes { read(fds[0], $0.baseAddress!, $0.count) }
                if got <= 0 { break }
                text.append(contentsOf: chunk[0..<got])
            }
            close(fds[0])
            let value = try! JSONParser().parse(text)
            if binary { return try! BinaryMatrix(value, at: "").storage }
            guard case .array(let rows) = value else { return [] }
            return rows.flatMap { row -> [Double] in if case .numbers(let r) = row { return r }; return [] }
        }
        var text: [UInt8] = []
        values.withUnsafeBufferPointer { storage in
            if binary {
                BinaryMatrix.write(rows: n, cols: n, storage, into: &text)
            } else {
                JSONWriter.writeMatrix(rows: n, cols: n, storage, into: &text)
            }
        }
        text.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count { offset += max(0, write(fds[1], raw.baseAddress! + offset, raw.count - offset)) }
        }
        close(fds[1])
        return reader.join()
    }

    /// Writes a shared-memory segment on this thread (`SharedMatrixSegment`, as the gateway and engines do); another
    /// thread reads it out and removes it.
    static func viaSharedMemory(_ values: [Double], n: Int) -> [Double] {
        let name = values.withUnsafeBufferPointer { SharedMatrixSegment.create(copying: $0) }!
        let reader = ThreadResult<[Double]> {
            defer { SharedMatrixSegment.unlink(name) }
            return try! SharedMatrixSegment.read(name, count: n * n)
        }
        return reader.join()
    }
}

/// Runs `body` on another thread; `join` waits for its value.
final class ThreadResult<Value>: @unchecked Sendable {
    private var value: Value?
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping () -> Value) {
        let box = UncheckedBox(body)
        DispatchQueue.global().async { [self] in
            value = box.value()
            done.signal()
        }
    }

    func join() -> Value {
        done.wait()
        return value!
    }
}

private struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
