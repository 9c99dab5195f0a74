import ForziumTesting
import ForziumJSON
import Testing

@Suite("Numbers: write → parse round trip")
struct NumberRoundTripTests {
    /// Random bit patterns (all exponents, subnormals, ±0) plus hand-picked hard values.
    static func sampleDoubles(count: Int, seed: UInt64) -> [Double] {
        var rng = SplitMix64(seed: seed)
        var values: [Double] = [
            0, -0.0, 1e308, -1e308, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, 1e-323, .greatestFiniteMagnitude, .leastNormalMagnitude,
            Double.leastNormalMagnitude.nextDown, 0.1, 0.2, 0.3, 1.0 / 3, 2.0 / 3, 9_007_199_254_740_993,
            4.35, 2.0e-7, 1e23, 8.41e21, 5.0e-310, 7.2057594037927933e16, 7.3177701707893310e15,
        ]
        for e in -325...309 {
            if let p = Double("1e\(e)"), p.isFinite { values.append(p) }
        }
        for e in -1074...1023 { values.append(Double(sign: .plus, exponent: e, significand: 1)) }
        while values.count < count {
            let bits = rng.next()
            switch bits % 4 {
            case 0:
                // Subnormal: zero exponent field.
                values.append(Double(bitPattern: (rng.next() & 0x800F_FFFF_FFFF_FFFF)))
            case 1:
                // "Round" decimals: short digit strings at any scale.
                let digits = rng.next() % 100_000
                let exponent = Int(rng.next() % 600) - 300
                values.append(Double("\(digits)e\(exponent)") ?? 0)
            default:
                let d = Double(bitPattern: rng.next())
                if d.isFinite { values.append(d) }
            }
        }
        return values
    }

    @Test("200k+ doubles round-trip bit-exactly and print exactly as Swift's description")
    func roundTrip() throws {
        let values = Self.sampleDoubles(count: 220_000, seed: 0xF0_12_1A_2B)
        var mismatchedText = 0
        var mismatchedBits = 0
        var examples: [String] = []
        var all: [UInt8] = []
        for value in values {
            var bytes: [UInt8] = []
            JSONWriter.writeDouble(value, into: &bytes)
            let text = String(decoding: bytes, as: UTF8.self)
            if text != value.description {
                mismatchedText += 1
                if examples.count < 5 { examples.append("\(value.description) written as \(text)") }
            }
            let parsed = try JSONParser().parse(bytes).doubleValue
            if parsed?.bitPattern != value.bitPattern {
                mismatchedBits += 1
                if examples.count < 5 { examples.append("\(text) parsed as \(String(describing: parsed))") }
            }
            all.append(contentsOf: bytes)
            all.append(0x2C)
        }
        #expect(mismatchedText == 0, "\(examples)")
        #expect(mismatchedBits == 0, "\(examples)")
        // The same values as one document, through the .numbers fast path.
        let document = JSONWriter.bytes(.numbers(values))
        let back = try #require(try JSONParser().parse(document).doublesValue)
        #expect(back.map(\.bitPattern) == values.map(\.bitPattern))
    }

    @Test("every subnormal with a small significand prints and parses like Swift")
    func smallSubnormals() throws {
        for t in UInt64(1)...20_000 {
            let d = Double(bitPattern: t)
            let text = written(d)
            #expect(text == d.description)
            #expect(try JSONParser().parse(text).doubleValue == d)
        }
    }

    @Test("random decimal text parses to the correctly rounded double (as Swift's own parser)")
    func decimalText() throws {
        var rng = SplitMix64(seed: 99)
        var failures: [String] = []
        for _ in 0..<200_000 {
            let digitCount = Int(rng.next() % 25) + 1
            var digits = String(Character(Unicode.Scalar(UInt8(0x31 + rng.next() % 9))))
            for _ in 1..<digitCount { digits.append(Character(Unicode.Scalar(UInt8(0x30 + rng.next() % 10)))) }
            let point = Int(rng.next() % UInt64(digitCount + 1))
            var text = digits
            if point < digitCount && point > 0 {
                text.insert(".", at: text.index(text.startIndex, offsetBy: point))
            }
            let exponent = Int(rng.next() % 700) - 350
            if rng.next() % 2 == 0 { text += "e\(exponent)" }
            if rng.next() % 2 == 0 { text = "-" + text }
            let expected = Double(text)!
            let got = try JSONParser().parse(text).doubleValue
            if got?.bitPattern != expected.bitPattern, failures.count < 5 {
                failures.append("\(text): \(String(describing: got)) vs \(expected)")
            }
        }
        #expect(failures.isEmpty, "\(failures)")
    }

    @Test("halfway and near-halfway cases round to even")
    func halfway() throws {
        let cases = [
            "9007199254740993", "9007199254740995", "9007199254740993.0000000001", "1e23", "8.41e21",
            "2.2250738585072011e-308", "2.2250738585072012e-308", "4.9406564584124654e-324",
            "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497791.9999999999999999999999999999999999999999999999999999999999999999999999",
            "0.500000000000000166533453693773481063544750213623046875", "3.518437208883201171875e13",
            "62.5364939768271845828", "8.10109172351e-10", "1.00000000000000011102230246251565404236316680908203125",
            "1.00000000000000011102230246251565404236316680908203124", "1.00000000000000011102230246251565404236316680908203126",
            // Digit runs that wrap a 64-bit accumulator, and long runs of leading or trailing zeros.
            "18446744073709551616", "36893488147419103232", "18446744073709551615", "99999999999999999999",
            "0.00000000000000000000000000001234", "-0.000000000000000000000000000000000000000000000000000000000001",
            "1.0000000000000000000000000000", "1000000000000000000000000000000000.0e-33", "0.0000000000000000000000e5",
        ]
        for text in cases {
            #expect(try JSONParser().parse(text).doubleValue?.bitPattern == Double(text)!.bitPattern, "\(text)")
        }
    }
}
