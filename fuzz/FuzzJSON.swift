// libFuzzer target: the JSON parser and writer. Built by scripts/fuzz.sh with `-sanitize=fuzzer`.
//
// Property: whatever the parser accepts, the writer prints as strict JSON (the parser with the NaN/Infinity extension
// switched off takes it back) and printing is a fixed point after one round: write(parse(write(v))) == write(v).
// A line the parser refuses must come with a position inside the input.
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
    return 0
}
