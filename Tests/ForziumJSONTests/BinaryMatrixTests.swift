import ForziumJSON
import ForziumTesting
import Testing

/// Base64 of `bytes` as text.
func base64(_ bytes: [UInt8]) -> String {
    var out: [UInt8] = []
    bytes.withUnsafeBytes { Base64.encode($0, into: &out) }
    return String(decoding: out, as: UTF8.self)
}

/// Decodes `text` expecting `count` bytes; nil when the decoder refuses it.
func unbase64(_ text: String, count: Int) -> [UInt8]? {
    var out = [UInt8](repeating: 0, count: count)
    let ok = Array(text.utf8).withUnsafeBytes { input in out.withUnsafeMutableBytes { Base64.decode(input, into: $0) } }
    return ok ? out : nil
}

@Suite("Base64")
struct Base64Tests {
    @Test("RFC 4648 test vectors, every padding case", arguments: [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
    ])
    func vectors(plain: String, encoded: String) {
        #expect(base64(Array(plain.utf8)) == encoded)
        #expect(unbase64(encoded, count: plain.utf8.count) == Array(plain.utf8))
        #expect(Base64.encodedLength(byteCount: plain.utf8.count) == encoded.utf8.count)
    }

    @Test("Random bytes of every length up to 100 round-trip, all 256 byte values included")
    func roundTrip() {
        var generator = SplitMix64(seed: 42)
        for length in 0...100 {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            #expect(unbase64(base64(bytes), count: length) == bytes, "length \(length)")
        }
        let all = (0...255).map { UInt8($0) }
        #expect(unbase64(base64(all), count: 256) == all)
        #expect(base64([0xFB, 0xFF, 0xBF]) == "+/+/")
    }

    @Test("Invalid input is refused", arguments: [
        ("Zm9", 2),       // not a multiple of 4
        ("Zm9vY", 3),     // not a multiple of 4
        ("Zm9!", 3),      // outside the alphabet
        ("Zm-_", 3),      // the URL-safe alphabet is not accepted
        ("Zm9v\nZm9v", 6),
        ("Zg==Zm9v", 4),  // padding in the middle
        ("Z===", 0),      // too much padding
        ("Z=g=", 1),      // misplaced padding
        ("Zg=v", 2),
        ("Zh==", 1),      // non-canonical: trailing bits set
        ("Zm9=", 2),      // non-canonical: trailing bits set
        ("Zm9v", 4),      // output size does not match
        ("Zm9v", 2),
        ("", 1),
        ("Zm9v ", 3),     // no whitespace
    ])
    func invalid(text: String, count: Int) {
        #expect(unbase64(text, count: count) == nil)
    }
}

@Suite("BinaryMatrix")
struct BinaryMatrixTests {
    /// Writes `matrix`, then reads it back both ways: the fast scan and the parsed-JSON reader.
    func readBack(_ matrix: BinaryMatrix) throws -> (scanned: BinaryMatrix?, parsed: BinaryMatrix) {
        var bytes: [UInt8] = []
        matrix.write(into: &bytes)
        let scanned = bytes.withUnsafeBytes { BinaryMatrix.scan($0) }
        let parsed = try BinaryMatrix(try JSONParser().parse(bytes), at: "")
        return (scanned, parsed)
    }

    @Test("Random doubles of many shapes round-trip bit for bit (scan and parsed reader alike)")
    func randomRoundTrip() throws {
        var generator = SplitMix64(seed: 9)
        for (rows, cols) in [(1, 1), (1, 2), (2, 1), (3, 5), (7, 3), (16, 16), (1, 1000)] {
            // Any bit pattern, so NaN payloads, infinities, subnormals and signed zeros all occur.
            let storage = (0..<(rows * cols)).map { _ in Double(bitPattern: generator.next()) }
            let matrix = BinaryMatrix(rows: rows, cols: cols, storage: storage)
            let (scanned, parsed) = try readBack(matrix)
            #expect(scanned?.storage.map(\.bitPattern) == storage.map(\.bitPattern))
            #expect(parsed.storage.map(\.bitPattern) == storage.map(\.bitPattern))
            #expect(scanned?.rows == rows && scanned?.cols == cols && parsed.rows == rows && parsed.cols == cols)
        }
    }

    @Test("Special values and scalars", arguments: [0.0, -0.0, .nan, .infinity, -.infinity, .leastNonzeroMagnitude, -.greatestFiniteMagnitude, 1.0 / 3.0])
    func specialValues(value: Double) throws {
        let (scanned, parsed) = try readBack(BinaryMatrix(scalar: value))
        #expect(scanned?.isScalar == true && parsed.isScalar)
        #expect(scanned?.storage.map(\.bitPattern) == [value.bitPattern])
        #expect(parsed.storage.map(\.bitPattern) == [value.bitPattern])
    }

    @Test("The wire text: members in order, little-endian doubles")
    func wireText() {
        var bytes: [UInt8] = []
        BinaryMatrix(rows: 1, cols: 2, storage: [1, -2]).write(into: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"dtype":"float64","shape":[1,2],"base64":"AAAAAAAA8D8AAAAAAAAAwA=="}"#)
    }

    @Test("scan declines anything but the writer's exact form")
    func scanDeclines() {
        for text in [
            #"{"shape":[1,1],"dtype":"float64","base64":"AAAAAAAA8D8="}"#,
            #"{"dtype":"float64", "shape":[1,1],"base64":"AAAAAAAA8D8="}"#,
            #"{"dtype":"float64","shape":[1,1],"base64":"AAAAAAAA8D8"}"#,
            #"{"dtype":"float64","shape":[1],"base64":"AAAAAAAA8D8="}"#,
            #"[[1.0]]"#,
        ] {
            #expect(Array(text.utf8).withUnsafeBytes { BinaryMatrix.scan($0) } == nil, "\(text)")
        }
    }

    @Test("Malformed objects are located by JSON Pointer", arguments: [
        (#"[[1]]"#, "/m"),
        (#"{"dtype":"float64","shape":[1,1],"base64":"AAAAAAAA8D8=","x/y":1}"#, "/m/x~1y"),
        (#"{"shape":[1,1],"base64":"AAAAAAAA8D8="}"#, "/m/dtype"),
        (#"{"dtype":"int32","shape":[1,1],"base64":"AAAAAAAA8D8="}"#, "/m/dtype"),
        (#"{"dtype":"float64","shape":[1,0],"base64":""}"#, "/m/shape/1"),
        (#"{"dtype":"float64","shape":[-1,1],"base64":"AAAAAAAA8D8="}"#, "/m/shape/0"),
        (#"{"dtype":"float64","shape":[1,1,1],"base64":"AAAAAAAA8D8="}"#, "/m/shape"),
        (#"{"dtype":"float64","shape":null,"base64":"AAAAAAAA8D8="}"#, "/m/shape"),
        (#"{"dtype":"float64","shape":[1,1]}"#, "/m/base64"),
        (#"{"dtype":"float64","shape":[1,2],"base64":"AAAAAAAA8D8="}"#, "/m/base64"),
        (#"{"dtype":"float64","shape":[1,1],"base64":"AAAAAAAA8D8*"}"#, "/m/base64"),
        (#"{"dtype":"float64","shape":[4294967296,4294967296],"base64":""}"#, "/m/base64"),
    ])
    func malformed(text: String, pointer: String) throws {
        let value = try JSONParser().parse(text)
        #expect(throws: PointerIssue.self) { try BinaryMatrix(value, at: "/m") }
        do {
            _ = try BinaryMatrix(value, at: "/m")
        } catch {
            #expect(error.pointer == pointer, "\(text): \(error.message)")
            #expect(!error.message.isEmpty)
        }
    }
}
