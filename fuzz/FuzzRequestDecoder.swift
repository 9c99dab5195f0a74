// libFuzzer target: the request decoder (JSON-RPC envelope rules). Built by scripts/fuzz.sh with `-sanitize=fuzzer`
// against a debug build (testable).
//
// Properties: every message of a line (or of a batch) is either a valid request or an invalid-request failure; a
// valid request's id is a string, null or a number written as a JSON number; and the reply the engine would write
// for it — result or error, the id echoed — is strict JSON (the parser without the NaN extension takes it) whose id
// is the request's own.
@testable import ForziumRPC
import ForziumJSON

let strictParser: JSONParser = {
    var options = JSONParser.Options()
    options.allowNonFiniteNumbers = false
    return JSONParser(options: options)
}()

func checkStrict(_ line: [UInt8], id: JSONValue) {
    let value: JSONValue
    do {
        value = try line.withUnsafeBytes { try strictParser.parse($0) }
    } catch {
        preconditionFailure("reply is not strict JSON: \(error) in \(String(decoding: line, as: UTF8.self))")
    }
    guard case .object(let object) = value, let echoed = object["id"] else { preconditionFailure("reply without id") }
    precondition(JSONWriter.bytes(echoed) == JSONWriter.bytes(id), "id not echoed exactly")
}

func check(_ message: JSONValue) {
    switch RPCDispatcher.validate(message) {
    case .success(let request):
        if let id = request.id {
            precondition(RPCDispatcher.isValidID(id), "accepted an invalid id")
            var line: [UInt8] = []
            RPCEncoder.result(id: id, result: .null, into: &line)
            checkStrict(line, id: id)
        }
    case .failure(let failure):
        var line: [UInt8] = []
        RPCEncoder.error(id: failure.id, error: failure.error, into: &line)
        checkStrict(line, id: failure.id)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let message = try? JSONParser().parse(UnsafeRawBufferPointer(start: data, count: size)) else { return 0 }
    switch message {
    case .array(let items): for item in items { check(item) }
    case .numbers(let items): for item in items { check(.number(JSONNumber(item))) }
    default: check(message)
    }
    return 0
}
