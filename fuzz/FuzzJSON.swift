// libFuzzer target: the JSON parser and writer. Built by scripts/fuzz.sh with `-sanitize=fuzzer`.
//
// Property: whatever the parser accepts, the writer prints as strict JSON (the parser with the NaN/Infinity extension
// switched off takes it back) and printing is a fixed point after one round: write(parse(write(v))) == write(v).
// A line the parser refuses must come with a position inside the input. A matrix (rows of numbers, all the same
// length) must print the same through the matrix writer — one thread, and two threads on the fork-join pool, after a
// prefix as in a reply line — as through the generic writer.
import ForziumJSON

let strict: JSONParser = {
    var options = JSONParser.Options()
    options.allowNonFiniteNumbers = false
    return JSONParser(options: options)
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
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
