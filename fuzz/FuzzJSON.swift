// libFuzzer target: the JSON parser and writer. Built by scripts/fuzz.sh with `-sanitize=fuzzer`.
//
// Property: whatever the parser accepts, the writer prints as strict JSON (the parser with the NaN/Infinity extension
// switched off takes it back) and printing is a fixed point after one round: write(parse(write(v))) == write(v).
// A line the parser refuses must come with a position inside the input. A matrix (rows of numbers, all the same
// length) must print the same through the matrix writer — one thread, and two threads on the fork-join pool, after a
// prefix as in a reply line — as through the generic writer. A line (no LF) parsed while it arrives, a few bytes at a
// time, with or without contiguous rows, gets the same verdict as parsed whole.
import ForziumJSON

let strict: JSONParser = {
    var options = JSONParser.Options()
    options.allowNonFiniteNumbers = false
    return JSONParser(options: options)
}()

let contiguous: JSONParser = {
    var options = JSONParser.Options()
    options.contiguousRows = true
    return JSONParser(options: options)
}()

/// The input handed over `step` bytes at a time, every byte the parser is done with overwritten with zeros.
final class SlicedWindow: JSONByteWindow {
    let storage: UnsafeMutableBufferPointer<UInt8>
    let count: Int
    let step: Int
    private(set) var available = 0
    private var released = 0

    init(_ input: UnsafeRawBufferPointer, step: Int) {
        storage = .allocate(capacity: max(1, input.count))
        _ = storage.initialize(from: input)
        count = input.count
        self.step = step
        available = min(step, input.count)
    }

    deinit { storage.deallocate() }

    var bytes: UnsafePointer<UInt8> { UnsafePointer(storage.baseAddress!) }
    var isComplete: Bool { available >= count }
    var isAbandoned: Bool { false }

    func advance(keepFrom: Int, target: Int) {
        precondition(keepFrom >= released, "the parser went back below bytes it had released")
        let upTo = min(keepFrom, available)
        if upTo > released {
            for i in released ..< upTo { storage[i] = 0 }
            released = upTo
        }
        while available < target && !isComplete { available = min(count, available + step) }
    }
}

/// A line parsed as it arrives must get the whole line's verdict: the same value (printed alike) or the same error.
func checkStreamed(_ input: UnsafeRawBufferPointer) {
    guard !input.contains(0x0A) else { return }
    for parser in [JSONParser(), contiguous] {
        let whole = Result { () throws(JSONParseError) -> JSONValue in try parser.parse(input) }
        for step in [1, input.count % 13 + 2] {
            let window = SlicedWindow(input, step: step)
            let streamed = Result { () throws(JSONParseError) -> JSONValue? in try parser.parse(window: window) }
            switch (whole, streamed) {
            case (.success(let a), .success(let b?)):
                precondition(JSONWriter.bytes(a) == JSONWriter.bytes(b), "streamed value differs")
            case (.failure(let a), .failure(let b)):
                precondition(a == b, "streamed error \(b) vs \(a)")
            case (.failure, .success(nil)):
                precondition(input.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }, "blank verdict for a non-blank line")
            default:
                preconditionFailure("streamed verdict \(streamed) vs whole \(whole)")
            }
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    checkStreamed(input)
    let value: JSONValue
    do {
        value = try JSONParser().parse(input)
    } catch {
        precondition(error.offset >= 0 && error.offset <= size && error.line >= 1 && error.column >= 1,
                     "parse error position outside the input: \(error)")
        return 0
    }
    let first = JSONWriter.bytes(value)
    let again: JSONValue
    do {
        again = try first.withUnsafeBytes { try strict.parse($0) }
    } catch {
        preconditionFailure("the writer printed something the strict parser refuses: \(error) in \(String(decoding: first, as: UTF8.self))")
    }
    let second = JSONWriter.bytes(again)
    precondition(first == second, "not a fixed point: \(String(decoding: first, as: UTF8.self)) vs \(String(decoding: second, as: UTF8.self))")
    if case .array(let rows) = value, let width = rows.first.flatMap({ if case .numbers(let r) = $0 { r.count } else { nil } }) {
        var storage: [Double] = []
        for row in rows {
            guard case .numbers(let r) = row, r.count == width else { return 0 }
            storage += r
        }
        let prefix = Array(#"{"result":"#.utf8)
        for threads in [1, 2] {
            // Large enough rows for the two-thread path: repeat the matrix's rows until there are 16k+ elements.
            let copies = threads == 1 ? 1 : max(2, 16_384 / max(1, storage.count) + 1)
            let tall = Array((0 ..< copies).map { _ in storage }.joined())
            var line = prefix
            tall.withUnsafeBufferPointer {
                JSONWriter.writeMatrix(rows: rows.count * copies, cols: width, $0, threads: threads, into: &line)
            }
            let generic = prefix + JSONWriter.bytes(.array(Array((0 ..< copies).map { _ in rows }.joined())))
            precondition(line == generic, "matrix writer (\(threads) threads) differs from the generic writer")
        }
    }
    return 0
}
