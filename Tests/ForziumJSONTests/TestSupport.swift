import ForziumJSON
import ForziumTesting


/// Parses with default options, returning the error (or nil when the text was accepted).
func parseError(_ text: String, options: JSONParser.Options = .init()) -> JSONParseError? {
    do {
        _ = try JSONParser(options: options).parse(text)
        return nil
    } catch {
        return error
    }
}

func parseError(bytes: [UInt8], options: JSONParser.Options = .init()) -> JSONParseError? {
    do {
        _ = try JSONParser(options: options).parse(bytes)
        return nil
    } catch {
        return error
    }
}

func written(_ d: Double) -> String {
    var bytes: [UInt8] = []
    JSONWriter.writeDouble(d, into: &bytes)
    return String(decoding: bytes, as: UTF8.self)
}

func parseErrorOffset(_ body: () throws(JSONParseError) -> JSONValue) -> Int? {
    do {
        _ = try body()
        return nil
    } catch {
        return error.offset
    }
}
