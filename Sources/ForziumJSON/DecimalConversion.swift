#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Decimal → binary64 conversion, correctly rounded (round-half-even), in three tiers:
/// 1. Clinger's exact fast path: the digits fit in 53 bits and the power of ten is exactly representable.
/// 2. Eisel–Lemire: a 64×128-bit product with a truncated power of five; it reports when it cannot decide.
/// 3. The C library's `strtod` on the token text (more than 19 significant digits, subnormal results,
///    and the rare undecidable cases above).
enum DecimalConversion {
    /// 10^0 ... 10^22, all exact in binary64.
    static let exactPowersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    /// `mantissa × 10^exponent` (mantissa non-zero, at most 19 digits, written with `digits` digits), or nil when only
    /// the slow path can decide.
    ///
    /// Clinger's path is taken by digit count (up to 15 digits always fit in 53 bits), not by the mantissa's value:
    /// printed doubles have 16 or 17 digits, and a test of the value would send them down either path at random
    /// (a mispredicted branch for every other number); Eisel–Lemire rounds the 16-digit ones just as correctly.
    @inline(__always)
    static func fastDouble(mantissa: UInt64, exponent: Int, digits: Int) -> Double? {
        if digits <= 15 && exponent >= -22 && exponent <= 22 {
            let d = Double(mantissa)
            return exponent < 0 ? d / exactPowersOfTen[-exponent] : d * exactPowersOfTen[exponent]
        }
        return eiselLemire(mantissa: mantissa, exponent: exponent)
    }

    /// Parses a validated JSON number token with the C library (correctly rounded on glibc).
    static func slowDouble(_ start: UnsafePointer<UInt8>, count: Int) -> Double {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: count + 1) { buffer in
            for i in 0..<count { buffer[i] = CChar(bitPattern: start[i]) }
            buffer[count] = 0
            return strtod(buffer.baseAddress!, nil)
        }
    }

    /// Eisel–Lemire (Lemire, "Number Parsing at a Gigabyte per Second", 2021), conservative variant:
    /// returns nil whenever the truncated product leaves the rounding undecided or the result is subnormal.
    @inline(__always)
    static func eiselLemire(mantissa: UInt64, exponent q: Int) -> Double? {
        if q < PowersOfFive.smallestExponent { return 0.0 }
        if q > PowersOfFive.largestExponent { return Double.infinity }
        let lz = mantissa.leadingZeroBitCount
        let w = mantissa << UInt64(lz)
        let index = 2 * (q - PowersOfFive.smallestExponent)
        let highFactor = PowersOfFive.table[index]
        let lowFactor = PowersOfFive.table[index + 1]
        var (upper, lower) = w.multipliedFullWidth(by: highFactor)
        if upper & 0x1FF == 0x1FF && lower &+ w < lower {
            let (middle2, productLow) = w.multipliedFullWidth(by: lowFactor)
            let (middle, carry) = lower.addingReportingOverflow(middle2)
            var high = upper
            if carry { high &+= 1 }
            if middle &+ 1 == 0 && high & 0x1FF == 0x1FF && productLow &+ w < productLow {
                return nil
            }
            upper = high
            lower = middle
        }
        let upperBit = upper >> 63
        var m = upper >> (upperBit + 9)
        var shift = lz + Int(1 ^ upperBit)
        if lower == 0 && upper & 0x1FF == 0 && m & 3 == 1 {
            return nil  // possibly exactly halfway: let the slow path decide
        }
        m += m & 1
        m >>= 1
        if m >= 1 << 53 {
            m = 1 << 52
            shift -= 1
        }
        m &= ~(1 << 52)
        // floor(log2(10^q)) + 1024 + 63, via the classic 217706 / 2^16 approximation of log2(10).
        let biased = ((217_706 * q) >> 16) + 1024 + 63 - shift
        if biased < 1 || biased > 2046 { return nil }
        return Double(bitPattern: m | UInt64(biased) << 52)
    }
}
