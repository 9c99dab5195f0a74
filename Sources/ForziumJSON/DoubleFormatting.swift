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
    ///
    /// Digits go out eight at a time (`eightDigits`, one unaligned 8-byte store), so a store may reach past the text it
    /// leaves — never past `out + 24` (the longest text's length), so a caller may pack texts back to back with 24
    /// bytes of room for the last.
    @inline(__always)
    static func write(_ value: Double, to out: UnsafeMutablePointer<UInt8>) -> Int {
        let bits = value.bitPattern
        // The sign costs no branch: write '-' always and step over it only when negative.
        out.pointee = ASCII.minus
        let p = out + Int(truncatingIfNeeded: bits >> 63)
        let magnitudeBits = bits & 0x7FFF_FFFF_FFFF_FFFF
        if magnitudeBits == 0 {
            p[0] = ASCII.zero
            p[1] = ASCII.dot
            p[2] = ASCII.zero
            return p + 3 - out
        }
        let (digits, exponent) = shortestDecimal(magnitudeBits)
        return writeDecimal(bits, digits: digits, exponent: exponent, to: out)
    }

    /// Writes the finite, nonzero double with these `bits`, whose shortest decimal `shortestDecimal` found to be
    /// `digits × 10^exponent`, at `out` (the same room and text as `write`); returns the number of bytes written.
    /// (Apart from `write` so a caller can find the digits of several numbers before writing any of them: their
    /// independent multiply chains then overlap.)
    @inline(__always)
    static func writeDecimal(_ bits: UInt64, digits: UInt64, exponent: Int, to out: UnsafeMutablePointer<UInt8>) -> Int {
        var digits = digits
        var exponent = exponent
        out.pointee = ASCII.minus
        let p = out + Int(truncatingIfNeeded: bits >> 63)
        let magnitudeBits = bits & 0x7FFF_FFFF_FFFF_FFFF
        // Strip trailing zeros so `digits` holds exactly the significant digits.
        while digits % 10 == 0 {
            digits /= 10
            exponent &+= 1
        }
        let count = decimalLength(digits)
        let scientificExponent = exponent &+ count &- 1
        if scientificExponent < 0 && scientificExponent >= -4 {
            // 0.ddd, 0.0ddd, 0.00ddd, 0.000ddd: "0.000000" in one store, then the digits over its tail.
            storeWord(0x3030_3030_3030_2E30, at: p)
            let q = p + (1 &- scientificExponent)
            writeDigits(digits, count: count, to: q)
            return q + count - out
        }
        if scientificExponent < 0 || magnitudeBits > 0x4340_0000_0000_0000 /* 2^53 */ {
            return writeScientific(digits, count: count, exponent: scientificExponent, at: p) - out
        }
        let integerDigits = scientificExponent &+ 1
        if count <= integerDigits {
            // ddd000.0
            writeDigits(digits, count: count, to: p)
            var q = p + count
            for _ in 0..<(integerDigits &- count) {
                q.pointee = ASCII.zero
                q += 1
            }
            q[0] = ASCII.dot
            q[1] = ASCII.zero
            return q + 2 - out
        }
        // ddd.ddd: write shifted right by one, then move the integer digits left over the dot.
        writeDigits(digits, count: count, to: p + 1)
        for i in 0..<integerDigits { p[i] = p[i &+ 1] }
        p[integerDigits] = ASCII.dot
        return p + count + 1 - out
    }

    /// d[.ddd]e±XX at `p`; returns the end of the text.
    @inline(never)
    static func writeScientific(_ digits: UInt64, count: Int, exponent: Int, at p: UnsafeMutablePointer<UInt8>)
        -> UnsafeMutablePointer<UInt8>
    {
        var p = p
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
        var e = exponent
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
        return p + 2
    }

    /// Number of decimal digits of `v` (v > 0).
    @inline(__always)
    static func decimalLength(_ v: UInt64) -> Int {
        // floor(log10(2^bits)) estimates it to within one; one comparison settles which.
        let bits = 64 &- v.leadingZeroBitCount
        let estimate = (bits &* 1233) >> 12
        return v < powerOfTen(estimate) ? estimate : estimate &+ 1
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

    /// Stores `word` at `p` as 8 bytes in memory order lowest byte first (no alignment needed).
    @inline(__always)
    static func storeWord(_ word: UInt64, at p: UnsafeMutablePointer<UInt8>) {
        UnsafeMutableRawPointer(p).storeBytes(of: word.littleEndian, as: UInt64.self)
    }

    /// The eight decimal digits of `v` (< 10^8, with leading zeros) as ASCII, the first digit in the lowest byte.
    ///
    /// No division and no table: `v` is split into two 4-digit halves (32-bit lanes), each half into two 2-digit
    /// quarters (16-bit lanes), each quarter into two digits (bytes), every split by a multiply and shift that equals the
    /// quotient for the lane's range. The lanes cannot carry into each other: every product fits its lane.
    @inline(__always)
    static func eightDigits(_ v: UInt32) -> UInt64 {
        let v = UInt64(v)
        // v / 10_000 for v < 10^8: 2^40 / 10^4 rounded up; the error v × 0.22 / 2^40 stays below 10^-4.
        let high = (v &* 109_951_163) >> 40
        let halves = high | ((v &- high &* 10_000) << 32)
        // x / 100 in each 32-bit lane (x < 10^4): 2^20 / 100 rounded up; products below 2^27.
        let hundreds = ((halves &* 10_486) >> 20) & 0x0000_007F_0000_007F
        let quarters = hundreds | ((halves &- hundreds &* 100) << 16)
        // x / 10 in each 16-bit lane (x < 100): 2^10 / 10 rounded up; products below 2^14.
        let tens = ((quarters &* 103) >> 10) & 0x000F_000F_000F_000F
        let digits = tens | ((quarters &- tens &* 10) << 8)
        return digits | 0x3030_3030_3030_3030
    }

    /// Writes the `count` (1...17) decimal digits of `v` (< 10^count) at `out`. Stores 8 bytes at a time: bytes up to
    /// `out + max(count, 8)` may be written.
    @inline(__always)
    static func writeDigits(_ v: UInt64, count: Int, to out: UnsafeMutablePointer<UInt8>) {
        if count <= 8 {
            // Drop the leading zeros off the low end; the bytes shifted in past the digits are zero.
            storeWord(eightDigits(UInt32(truncatingIfNeeded: v)) &>> UInt64(truncatingIfNeeded: (8 &- count) &* 8), at: out)
            return
        }
        // 9...17 digits without a branch on the count: the first of 17 digits is written at `out` in any case (with
        // fewer digits it is a 0 the next store covers); the middle eight are shifted clear of their leading zeros.
        let first = v / 10_000_000_000_000_000
        let rest = v &- first &* 10_000_000_000_000_000
        let high = rest / 100_000_000
        let low = UInt32(truncatingIfNeeded: rest &- high &* 100_000_000)
        let extra = count > 16 ? 1 : 0
        out.pointee = UInt8(truncatingIfNeeded: first) &+ ASCII.zero
        let shift = UInt64(truncatingIfNeeded: (16 &- count &+ extra) &* 8)
        storeWord(eightDigits(UInt32(truncatingIfNeeded: high)) &>> shift, at: out + extra)
        storeWord(eightDigits(low), at: out + (count &- 8))
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
                let f = c &>> UInt64(truncatingIfNeeded: mq)
                if f &<< UInt64(truncatingIfNeeded: mq) == c { return (f, 0) }
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
        let cbr = cb &+ 2
        let cbl: UInt64
        let k: Int
        if c != 1 << 52 || q == -1074 {
            cbl = cb &- 2
            k = flog10pow2(q)
        } else {
            // At a power of two the gap below is half the gap above.
            cbl = cb &- 1
            k = flog10threeQuartersPow2(q)
        }
        let h = UInt64(truncatingIfNeeded: q &+ flog2pow10(0 &- k) &+ 2)
        let index = 2 &* (k &- SchubfachTable.smallestK)
        let (g1, g0) = SchubfachTable.g.withUnsafeBufferPointer { ($0[index], $0[index + 1]) }
        let vb = roundToOdd(g1, g0, cb &<< h)
        let vbl = roundToOdd(g1, g0, cbl &<< h)
        let vbr = roundToOdd(g1, g0, cbr &<< h)
        let s = vb >> 2
        // s' = floor(s / 10): the one-digit-shorter candidates s'·10 and (s'+1)·10 win when exactly one of them is in
        // the rounding interval. (Java's version skips this when s < 100 to always print two digits; Swift prints the
        // shortest, e.g. 5e-323, so it always runs.)
        let sp = multiplyHigh(s, 115_292_150_460_684_698 << 4)
        let sp10 = 10 &* sp
        let upin = vbl &+ out <= sp10 << 2
        let wpin = ((sp10 &+ 10) << 2) &+ out <= vbr
        // Otherwise s or t = s + 1: the one in the interval if only one is, else the closer (ties to even).
        let t = s &+ 1
        let uin = vbl &+ out <= s << 2
        let win = (t << 2) &+ out <= vbr
        let cmp = Int64(bitPattern: vb &- ((s &+ t) << 1))
        // Which case holds depends on the digits, so it is unpredictable: select with masks, not branches.
        let closerIsT = UInt64(truncatingIfNeeded: cmp > 0 ? 1 : 0) | (UInt64(truncatingIfNeeded: cmp == 0 ? 1 : 0) & s)
        let u = UInt64(truncatingIfNeeded: uin ? 1 : 0)
        let w = UInt64(truncatingIfNeeded: win ? 1 : 0)
        let oneIn = u ^ w  // 1 when exactly one of s, t is in the interval
        let pickT = (oneIn & w) | (~oneIn & closerIsT & 1)
        let shorter = UInt64(truncatingIfNeeded: upin ? 1 : 0) ^ UInt64(truncatingIfNeeded: wpin ? 1 : 0)
        let mask = 0 &- shorter
        let digits = ((sp &+ UInt64(truncatingIfNeeded: wpin ? 1 : 0)) & mask) | ((s &+ pickT) & ~mask)
        return (digits, k &+ Int(truncatingIfNeeded: shorter))
    }
}
