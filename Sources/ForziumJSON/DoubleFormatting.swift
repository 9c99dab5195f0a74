/// Shortest round-trip formatting of doubles, straight into bytes.
///
/// Digits: Schubfach (R. Giulietti, "The Schubfach way to render doubles", 2020) — the shortest decimal that
/// reads back as the same double, and of those the closest to it (ties to an even last digit).
///
/// Text: exactly Swift's `Double.description` for finite values, which Python's `float()`, JavaScript's
/// `JSON.parse`/`Number()` and every JSON parser read back bit-exactly:
/// - plain decimal when 1e-4 <= |v| <= 2^53, always with a fractional part: `2.0`, `0.1`, `0.0001`, `123.456`,
///   `9007199254740992.0`;
/// - otherwise scientific, mantissa digits with a `.` only when there are several, `e`, an explicit sign and
///   at least two exponent digits: `1e-05`, `1.5e+300`, `5e-324`, `9.007199254740994e+15`;
/// - zero is `0.0` / `-0.0`.
/// Non-finite values are not handled here (the JSON writer emits `null` for them).
enum DoubleFormatting {
    /// Enough room for any finite double in the format above (the longest is 24 bytes).
    static let maxLength = 32

    /// "00", "01", ..., "99" as constant bytes (a string literal needs no lazy initialisation).
    static let digitPairs: StaticString =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

    /// Writes the two digits of `pair` (0...99) at `out`.
    @inline(__always)
    static func writePair(_ pair: UInt32, to out: UnsafeMutablePointer<UInt8>) {
        let pairs = digitPairs.utf8Start
        let i = Int(pair &* 2)
        out[0] = pairs[i]
        out[1] = pairs[i + 1]
    }

    /// Writes finite `value` at `out` (at least `maxLength` bytes of room); returns the number of bytes written.
    @inline(__always)
    static func write(_ value: Double, to out: UnsafeMutablePointer<UInt8>) -> Int {
        let bits = value.bitPattern
        var p = out
        if bits >> 63 != 0 {
            p.pointee = ASCII.minus
            p += 1
        }
        let magnitudeBits = bits & 0x7FFF_FFFF_FFFF_FFFF
        if magnitudeBits == 0 {
            p[0] = ASCII.zero
            p[1] = ASCII.dot
            p[2] = ASCII.zero
            return p + 3 - out
        }
        var (digits, exponent) = shortestDecimal(magnitudeBits)
        // Strip trailing zeros so `digits` holds exactly the significant digits.
        while digits % 10 == 0 {
            digits /= 10
            exponent += 1
        }
        let count = decimalLength(digits)
        let scientificExponent = exponent + count - 1
        if scientificExponent < -4 || magnitudeBits > 0x4340_0000_0000_0000 /* 2^53 */ {
            // d[.ddd]e±XX
            if count == 1 {
                p[0] = UInt8(truncatingIfNeeded: digits) &+ ASCII.zero
                p += 1
            } else {
                // Write all digits one place to the right, then move the first one left over the dot.
                writeDigits(digits, count: count, to: p + 1)
                p[0] = p[1]
                p[1] = ASCII.dot
                p += count + 1
            }
            p[0] = ASCII.lowerE
            var e = scientificExponent
            if e < 0 {
                p[1] = ASCII.minus
                e = -e
            } else {
                p[1] = ASCII.plus
            }
            p += 2
            if e >= 100 {
                p[0] = UInt8(truncatingIfNeeded: e / 100) &+ ASCII.zero
                e %= 100
                p += 1
            }
            writePair(UInt32(truncatingIfNeeded: e), to: p)
            return p + 2 - out
        }
        if scientificExponent < 0 {
            // 0.000ddd
            p[0] = ASCII.zero
            p[1] = ASCII.dot
            p += 2
            for _ in 0..<(-scientificExponent - 1) {
                p.pointee = ASCII.zero
                p += 1
            }
            writeDigits(digits, count: count, to: p)
            return p + count - out
        }
        let integerDigits = scientificExponent + 1
        if count <= integerDigits {
            // ddd000.0
            writeDigits(digits, count: count, to: p)
            p += count
            for _ in 0..<(integerDigits - count) {
                p.pointee = ASCII.zero
                p += 1
            }
            p[0] = ASCII.dot
            p[1] = ASCII.zero
            return p + 2 - out
        }
        // ddd.ddd: write shifted right by one, then move the integer digits left over the dot.
        writeDigits(digits, count: count, to: p + 1)
        for i in 0..<integerDigits { p[i] = p[i + 1] }
        p[integerDigits] = ASCII.dot
        return p + count + 1 - out
    }

    /// Number of decimal digits of `v` (v > 0).
    @inline(__always)
    static func decimalLength(_ v: UInt64) -> Int {
        // floor(log10(2^bits)) estimates it to within one; one comparison settles which.
        let bits = 64 - v.leadingZeroBitCount
        let estimate = (bits &* 1233) >> 12
        return v < powerOfTen(estimate) ? estimate : estimate + 1
    }

    /// 10^0 ... 10^19.
    static let powersOfTen: [UInt64] = [
        1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000,
        10_000_000_000, 100_000_000_000, 1_000_000_000_000, 10_000_000_000_000, 100_000_000_000_000,
        1_000_000_000_000_000, 10_000_000_000_000_000, 100_000_000_000_000_000, 1_000_000_000_000_000_000,
        10_000_000_000_000_000_000,
    ]

    /// 10^n for 0 <= n <= 19.
    @inline(__always)
    static func powerOfTen(_ n: Int) -> UInt64 {
        powersOfTen.withUnsafeBufferPointer { $0[n] }
    }

    /// Writes the `count` decimal digits of `v` at `out` (leading zeros when `v` has fewer digits).
    @inline(__always)
    static func writeDigits(_ v: UInt64, count: Int, to out: UnsafeMutablePointer<UInt8>) {
        var v = v
        var i = count
        // Eight digits at a time with independent 32-bit halves, from the right.
        while i >= 8 {
            let low = UInt32(truncatingIfNeeded: v % 100_000_000)
            v /= 100_000_000
            i -= 8
            let a = low / 10_000
            let b = low % 10_000
            writePair(a / 100, to: out + i)
            writePair(a % 100, to: out + i + 2)
            writePair(b / 100, to: out + i + 4)
            writePair(b % 100, to: out + i + 6)
        }
        var r = UInt32(truncatingIfNeeded: v)
        while i >= 2 {
            i -= 2
            writePair(r % 100, to: out + i)
            r /= 100
        }
        if i == 1 {
            out[0] = UInt8(truncatingIfNeeded: r) &+ ASCII.zero
        }
    }

    // MARK: - Schubfach

    @inline(__always) static func flog10pow2(_ e: Int) -> Int { (e &* 661_971_961_083) >> 41 }
    @inline(__always) static func flog10threeQuartersPow2(_ e: Int) -> Int { (e &* 661_971_961_083 &- 274_743_187_321) >> 41 }
    @inline(__always) static func flog2pow10(_ e: Int) -> Int { (e &* 913_124_641_741) >> 38 }

    /// The shortest decimal `digits × 10^exponent` that rounds to the positive finite double with these bits.
    /// `digits` may carry trailing zeros.
    @inline(__always)
    static func shortestDecimal(_ bits: UInt64) -> (digits: UInt64, exponent: Int) {
        let t = bits & ((1 << 52) - 1)
        let bq = Int(truncatingIfNeeded: bits >> 52)
        if bq != 0 {
            let mq = 1075 - bq
            let c = (1 << 52) | t
            if mq > 0 && mq < 53 {
                // Integers below 2^53 are their own shortest form.
                let f = c >> UInt64(mq)
                if f << UInt64(mq) == c { return (f, 0) }
            }
            return schubfach(q: -mq, c: c)
        }
        return schubfach(q: -1074, c: t)  // subnormal
    }

    @inline(__always)
    static func multiplyHigh(_ a: UInt64, _ b: UInt64) -> UInt64 {
        a.multipliedFullWidth(by: b).high
    }

    /// rop(cp × g × 2^-127) with g = g1 × 2^63 + g0: the product rounded to odd.
    @inline(__always)
    static func roundToOdd(_ g1: UInt64, _ g0: UInt64, _ cp: UInt64) -> UInt64 {
        let x1 = multiplyHigh(g0, cp)
        let y0 = g1 &* cp
        let y1 = multiplyHigh(g1, cp)
        let z = (y0 >> 1) &+ x1
        let vbp = y1 &+ (z >> 63)
        let mask63: UInt64 = (1 << 63) - 1
        return vbp | (((z & mask63) &+ mask63) >> 63)
    }

    @inline(__always)
    static func schubfach(q: Int, c: UInt64) -> (digits: UInt64, exponent: Int) {
        let out: UInt64 = c & 1
        let cb = c << 2
        let cbr = cb + 2
        let cbl: UInt64
        let k: Int
        if c != 1 << 52 || q == -1074 {
            cbl = cb - 2
            k = flog10pow2(q)
        } else {
            // At a power of two the gap below is half the gap above.
            cbl = cb - 1
            k = flog10threeQuartersPow2(q)
        }
        let h = UInt64(q + flog2pow10(-k) + 2)
        let index = 2 * (k - SchubfachTable.smallestK)
        let (g1, g0) = SchubfachTable.g.withUnsafeBufferPointer { ($0[index], $0[index + 1]) }
        let vb = roundToOdd(g1, g0, cb << h)
        let vbl = roundToOdd(g1, g0, cbl << h)
        let vbr = roundToOdd(g1, g0, cbr << h)
        let s = vb >> 2
        do {
            // s' = floor(s / 10); try the one-digit-shorter candidates first. (Java's version skips this when
            // s < 100 to always print two digits; Swift prints the shortest, e.g. 5e-323, so it always runs.)
            let sp10 = 10 &* multiplyHigh(s, 115_292_150_460_684_698 << 4)
            let tp10 = sp10 &+ 10
            let upin = vbl &+ out <= sp10 << 2
            let wpin = (tp10 << 2) &+ out <= vbr
            if upin != wpin { return (upin ? sp10 : tp10, k) }
        }
        let t = s &+ 1
        let uin = vbl &+ out <= s << 2
        let win = (t << 2) &+ out <= vbr
        if uin != win { return (uin ? s : t, k) }
        let cmp = Int64(bitPattern: vb &- ((s &+ t) << 1))
        return (cmp < 0 || (cmp == 0 && s & 1 == 0) ? s : t, k)
    }
}
