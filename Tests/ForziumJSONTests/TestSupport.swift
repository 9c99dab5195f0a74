import ForziumJSON

/// A small seeded generator (SplitMix64) so property tests are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

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
