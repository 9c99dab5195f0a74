#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Two-thread parsing of large documents whose bulk is matrix rows (arrays of numbers).
///
/// While the main scanner parses the document from the start as usual, a helper thread starts in the middle: it
/// looks for a place that looks like the start of a matrix row — a `[` after `],` or after `[`, followed by a number —
/// and reads rows from there (each exactly as the main scanner would: `parseNumberRun`), as one *run*, until
/// something other than another row follows; then it looks for the next such place. The main scanner, whenever it is
/// at the start of an array element that lies at or past the middle, asks whether a run starts exactly there. If one
/// does, those bytes really are rows of the array being parsed, so it takes the helper's rows (waiting for the run
/// to be finished if need be) and jumps to the run's end. A guess that lands inside a string or anywhere else is
/// never at an element start the main scanner reaches, so it is simply never used: the result, and every error with
/// its offset, are exactly those of the one-thread parse.
final class RowSpeculation: @unchecked Sendable {
    /// Rows read by the helper: they start at `start` (a `[`) and end before `end` (just after the last row's `]`).
    struct Run {
        var start: Int
        var end: Int
        var rows: [[Double]]
    }

    /// No run starts before this offset (the helper's starting point); the main scanner does not ask before it.
    let floor: Int
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var finished: [Run] = []
    /// Start of the run the helper is reading, or -1.
    private var current = -1
    private var cancelled = false

    init(floor: Int) {
        self.floor = floor
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }

    // MARK: Main scanner side

    /// The run that starts exactly at `offset`, once the helper has finished it; nil when none does.
    func take(at offset: Int) -> Run? {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while true {
            if let index = finished.firstIndex(where: { $0.start == offset }) {
                let run = finished.remove(at: index)
                // Runs before this one can never be reached any more.
                finished.removeAll { $0.start < offset }
                return run
            }
            guard current == offset, !cancelled else { return nil }
            pthread_cond_wait(&condition, &mutex)
        }
    }

    /// Stops the helper at its next row.
    func cancel() {
        locked { cancelled = true }
        pthread_cond_broadcast(&condition)
    }

    // MARK: Helper side

    private var isCancelled: Bool { locked { cancelled } }

    /// Reads runs from `floor` to the end of the input with its own scanner.
    func speculate(_ scanner: JSONScanner) {
        var scanner = scanner
        var searchFrom = floor
        while !isCancelled, let start = Self.nextRowStart(in: scanner, from: searchFrom) {
            let began = locked { () -> Bool in
                guard !cancelled else { return false }
                current = start
                return true
            }
            guard began else { return }
            var rows: [[Double]] = []
            var runEnd = start
            scanner.pos = start
            reading: while scanner.pos < scanner.end, scanner.base[scanner.pos] == ASCII.openBracket {
                scanner.pos += 1
                scanner.skipWhitespace()
                guard scanner.pos < scanner.end, scanner.startsNumber(scanner.base[scanner.pos]) else { break }
                guard let row = try? scanner.parseNumberRun() else { break }
                rows.append(row)
                runEnd = scanner.pos
                if rows.count & 63 == 0, isCancelled { break reading }
                scanner.skipWhitespace()
                guard scanner.pos < scanner.end, scanner.base[scanner.pos] == ASCII.comma else { break }
                scanner.pos += 1
                scanner.skipWhitespace()
            }
            locked {
                current = -1
                if !rows.isEmpty { finished.append(Run(start: start, end: runEnd, rows: rows)) }
            }
            pthread_cond_broadcast(&condition)
            searchFrom = max(runEnd, start + 1)
        }
        locked { current = -1 }
        pthread_cond_broadcast(&condition)
    }

    /// The next offset at or after `from` holding a `[` whose previous non-blank byte is `[`, or `,` after `]`, and
    /// whose next non-blank byte starts a number.
    static func nextRowStart(in scanner: JSONScanner, from: Int) -> Int? {
        let base = scanner.base, end = scanner.end
        var i = from
        while i < end {
            guard let hit = memchr(base + i, Int32(ASCII.openBracket), end - i) else { return nil }
            let at = UnsafeRawPointer(base).distance(to: UnsafeRawPointer(hit))
            i = at + 1
            var before = at - 1
            while before >= 0, isBlank(base[before]) { before -= 1 }
            guard before >= 0 else { continue }
            if base[before] == ASCII.comma {
                before -= 1
                while before >= 0, isBlank(base[before]) { before -= 1 }
                guard before >= 0, base[before] == ASCII.closeBracket else { continue }
            } else if base[before] != ASCII.openBracket {
                continue
            }
            var after = at + 1
            while after < end, isBlank(base[after]) { after += 1 }
            if after < end, scanner.startsNumber(base[after]) { return at }
        }
        return nil
    }

    private static func isBlank(_ b: UInt8) -> Bool {
        b == ASCII.space || b == ASCII.lf || b == ASCII.cr || b == ASCII.tab
    }
}

extension JSONParser {
    /// Documents at least this long are parsed on two threads when `Options.threads` allows it.
    public static let parallelThreshold = 1 << 20
}
