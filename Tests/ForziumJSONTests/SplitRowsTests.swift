@testable import ForziumJSON
import ForziumTesting
import Testing

/// `contiguousRows` with two threads (`JSONScanner.splitRows`): whole and streamed, the same value, literals and errors
/// as the one-thread parse.
@Suite("Parser: a matrix's rows on two threads")
struct SplitRowsTests {
    static func options(threads: Int) -> JSONParser.Options {
        var options = JSONParser.Options()
        options.contiguousRows = true
        options.threads = threads
        return options
    }

    /// The two-thread verdict on `document`, whole and streamed `chunks` at a time, against the one-thread whole parse.
    static func agree(_ document: [UInt8], chunks: [[Int]] = [[65_536], [1 << 20], [4093, 7]]) -> Bool {
        let reference = wholeParse(document, options: options(threads: 1))
        var verdicts: [Result<JSONValue?, JSONParseError>] = [wholeParse(document, options: options(threads: 2)).map { $0 }]
        for chunking in chunks {
            let (streamed, window) = streamedParse(document, chunks: chunking, options: options(threads: 2))
            if window.wentBack { return false }
            verdicts.append(streamed)
        }
        for verdict in verdicts {
            switch (reference, verdict) {
            case (.success(let a), .success(let b?)): if !(a == b && text(a) == text(b)) { return false }
            case (.failure(let a), .failure(let b)): if a != b { return false }
            default: return false
            }
        }
        return true
    }

    @Test("A large matrix request: the helper's blocks are taken, and the value is the one-thread value")
    func takesBlocks() throws {
        let document = StreamingParseTests.matrixRequest(rows: 1200, cols: 128, seed: 21)
        let before = JSONScanner.splitBlocksTaken.load(ordering: .relaxed)
        #expect(Self.agree(document))
        #expect(JSONScanner.splitBlocksTaken.load(ordering: .relaxed) > before)
        guard case .object(let object) = try JSONParser(options: Self.options(threads: 2)).parse(document),
              case .object(let params)? = object["params"], case .rows(let rows)? = params["data"] else {
            Issue.record("no contiguous rows")
            return
        }
        #expect(rows.rows == 1200 && rows.cols == 128)
    }

    @Test("Rows that break the pattern anywhere (ragged, a string, a nested array, an object): the one-thread value")
    func patternBreaks() {
        var rng = SplitMix64(seed: 5)
        let request = StreamingParseTests.matrixRequest(rows: 900, cols: 100, seed: 8)
        // Replace one row's text at a random row boundary with something else, keeping the document valid.
        let text = String(decoding: request, as: UTF8.self)
        let replacements = ["[1,2]", #"[1,"x",3]"#, "[[1],[2]]", #"{"a":1}"#, "[]", "[1e999,-0,NaN]"]
        for round in 0..<12 {
            let parts = text.components(separatedBy: "],[")
            let index = 1 + Int(rng.next() % UInt64(parts.count - 2))
            var rebuilt = parts
            rebuilt[index] = String(replacements[round % replacements.count].dropFirst().dropLast())
            let document = Array(rebuilt.joined(separator: "],[").utf8)
            #expect(Self.agree(document), "round \(round): row \(index) replaced")
        }
    }

    @Test("Errors and cuts deep in a long matrix line: the same error (offset, message) as one thread")
    func errors() {
        let request = StreamingParseTests.matrixRequest(rows: 900, cols: 100, seed: 13)
        var rng = SplitMix64(seed: 77)
        let strays: [UInt8] = [UInt8(ascii: "x"), UInt8(ascii: ","), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "-"),
                               UInt8(ascii: " "), UInt8(ascii: "."), 0]
        for _ in 0..<30 {
            var document = request
            // Mostly in the second half of a block, where the helper reads.
            let place = Int(rng.next() % UInt64(document.count))
            document[place] = strays[Int(rng.next() % UInt64(strays.count))]
            if rng.next() % 4 == 0 { document = Array(document[..<Int(rng.next() % UInt64(document.count))]) }
            #expect(Self.agree(document, chunks: [[65_536], [1 << 20]]), "stray at \(place)")
        }
    }

    @Test("Whitespace between rows and inside them; rows of one column; a matrix just over the block minimum")
    func shapes() {
        func matrix(rows: Int, cols: Int, separator: String, inner: String) -> [UInt8] {
            var rng = SplitMix64(seed: UInt64(rows * 31 + cols))
            let body = (0..<rows).map { _ in
                "[" + inner + (0..<cols).map { _ in "\(Double(bitPattern: rng.next() >> 2))" }.joined(separator: "," + inner) + inner + "]"
            }.joined(separator: separator)
            return Array(("[" + body + "]").utf8)
        }
        #expect(Self.agree(matrix(rows: 3000, cols: 8, separator: " ,\n ", inner: " ")))
        #expect(Self.agree(matrix(rows: 8000, cols: 1, separator: ",", inner: "")))
        #expect(Self.agree(matrix(rows: 600, cols: 9, separator: ",", inner: "")))
        #expect(Self.agree(matrix(rows: 2, cols: 20_000, separator: ",", inner: "")))
    }
}
