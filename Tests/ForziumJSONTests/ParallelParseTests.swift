import ForziumJSON
import ForziumTesting
import Testing

@Suite("Two-thread parse: same values and errors as one thread")
struct ParallelParseTests {
    private static let twoThreads: JSONParser = {
        var options = JSONParser.Options()
        options.threads = 2
        return JSONParser(options: options)
    }()

    private func matrixText(rows: Int, cols: Int, seed: UInt64, spacing: String = "") -> String {
        var generator = SplitMix64(seed: seed)
        var text = "["
        for r in 0..<rows {
            if r > 0 { text += "," + spacing }
            var row: [UInt8] = []
            for c in 0..<cols {
                if c > 0 { row.append(contentsOf: ",".utf8) }
                JSONWriter.writeDouble(Double(bitPattern: generator.next() >> 2) , into: &row)
            }
            text += "[" + String(decoding: row, as: UTF8.self) + "]"
        }
        return text + "]"
    }

    /// Parses `text` both ways and requires the same outcome.
    private func agree(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let bytes = Array(text.utf8)
        #expect(bytes.count >= JSONParser.parallelThreshold, "too short to take the two-thread path", sourceLocation: sourceLocation)
        let one = Result { () throws(JSONParseError) -> JSONValue in try JSONParser().parse(bytes) }
        let two = Result { () throws(JSONParseError) -> JSONValue in try Self.twoThreads.parse(bytes) }
        switch (one, two) {
        case (.success(let a), .success(let b)): #expect(a == b, sourceLocation: sourceLocation)
        case (.failure(let a), .failure(let b)): #expect(a == b, sourceLocation: sourceLocation)
        default: Issue.record("one thread: \(one), two threads: \(two)", sourceLocation: sourceLocation)
        }
    }

    @Test func matmulBodies() {
        let a = matrixText(rows: 300, cols: 300, seed: 1), b = matrixText(rows: 300, cols: 300, seed: 2)
        agree(#"{"data":\#(a),"operation":"matmul","parameters":{"matrix_b":\#(b)}}"#)
        agree(#"{"data":\#(matrixText(rows: 200, cols: 700, seed: 3, spacing: "\n  ")),"other":\#(b)}"#)
    }

    @Test func decoysInStringsAndMixedRows() {
        let a = matrixText(rows: 250, cols: 300, seed: 4)
        let decoy = String(repeating: #"],[1,2],[3"#, count: 20_000)
        agree(#"{"data":\#(a),"note":"\#(decoy)","more":[[1,"x"],[2,3],[],[[4]],[5,6]],"b":\#(a)}"#)
        agree(#"[\#(a),[[1,2],[3,4]],"\#(decoy)",\#(a)]"#)
    }

    @Test func errorsInTheSecondHalfKeepTheirOffsets() {
        let a = matrixText(rows: 300, cols: 300, seed: 5)
        agree(#"{"data":\#(a),"b":\#(a.dropLast(2))],[1,,2]]}"#)
        agree(#"{"data":\#(a),"b":\#(a.dropLast(1)),[1,2],]}"#)
        agree(#"{"data":\#(a),"b":\#(a.dropLast(1)),[1,2]"#)
        agree(#"{"data":\#(a),"b":\#(a)} trailing"#)
        agree(#"[\#(a),\#(a.dropLast(1)),[01]]]"#)
    }

    @Test func nonFiniteTokensAndNegativeNumbers() {
        var rows: [String] = []
        for i in 0..<60_000 { rows.append(i % 7 == 0 ? "[NaN,-Infinity,\(i)]" : "[-\(i).5,1e-7,\(i)]") }
        agree("[" + rows.joined(separator: ",") + "]")
        agree("[[" + rows.joined(separator: ",") + "]]")
    }
}
