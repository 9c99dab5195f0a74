import ForziumTesting
import ForziumJSON
import Testing

@Suite("Parser: input released while parsing")
struct ReleaseWhileParsingTests {
    /// A long document mixing every kind of value: number rows (the matrix case), an array whose numbers end in a
    /// string (re-read from its first element), strings with escapes, nested objects, literals.
    static func document(seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        var text = #"{"jsonrpc":"2.0","id":7,"method":"matmul","params":{"data":["#
        for r in 0..<1000 {
            if r > 0 { text += "," }
            text += "[" + (0..<200).map { _ in String(Double(bitPattern: rng.next() >> 2)) }.joined(separator: ",") + "]"
        }
        text += #"],"mixed":["#
        for i in 0..<400_000 { text += "\(i * 7 % 1000)," }
        text += #""tail \"quoted\" \u00e9",true,null,{"k":[1,2,{"deep":"x"}]}],"note":"done"}}"#
        return Array(text.utf8)
    }

    @Test("same value as a plain parse, even with every released byte overwritten")
    func sameValueWithReleasedBytesZeroed() throws {
        let document = Self.document(seed: 3)
        #expect(document.count > 3 * JSONParser.releaseStep)
        let expected = try JSONParser().parse(document)
        var copy = document
        var offsets: [Int] = []
        let value = try copy.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            let count = raw.count
            return try JSONParser().parse(UnsafeRawBufferPointer(raw)) { offset in
                offsets.append(offset)
                // What madvise(MADV_DONTNEED) does to the pages: from now on they read as zeros.
                base.initializeMemory(as: UInt8.self, repeating: 0, count: min(offset, count))
            }
        }
        #expect(value == expected)
        #expect(offsets.count >= 3)
        #expect(offsets == offsets.sorted() && offsets.allSatisfy { $0 > 0 && $0 <= document.count })
    }

    @Test("contiguous rows: same value as a plain parse with every released byte overwritten")
    func contiguousRowsWithReleasedBytesZeroed() throws {
        var options = JSONParser.Options()
        options.contiguousRows = true
        let document = Self.document(seed: 5)
        let expected = try JSONParser().parse(document)
        var copy = document
        var releases = 0
        let value = try copy.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            let count = raw.count
            return try JSONParser(options: options).parse(UnsafeRawBufferPointer(raw)) { offset in
                releases += 1
                base.initializeMemory(as: UInt8.self, repeating: 0, count: min(offset, count))
            }
        }
        #expect(value == expected)
        #expect(releases >= 3)
        guard case .object(let request) = value, case .object(let params)? = request["params"], case .rows(let data)? = params["data"] else {
            Issue.record("the matrix was not read into one buffer")
            return
        }
        #expect(data.rows == 1000 && data.cols == 200)
    }

    @Test("errors are the same as a plain parse's")
    func sameErrors() throws {
        var document = Self.document(seed: 4)
        document[document.count - 30] = UInt8(ascii: "@")
        let plain = #expect(throws: JSONParseError.self) { try JSONParser().parse(document) }
        let released = #expect(throws: JSONParseError.self) {
            try document.withUnsafeBytes { raw in _ = try JSONParser().parse(raw) { _ in } }
        }
        #expect(plain == released)
    }
}
