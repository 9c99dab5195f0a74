import Foundation
import ForziumJSON
import ForziumTesting
import Testing

/// Hands a document to the parser a few bytes at a time, as a line arriving over a pipe does (read sizes cycle through
/// `chunks`), and overwrites with zeros every byte the parser says it is done with (as `MADV_DONTNEED` does to the
/// pages): a parser that read a released byte again would see a NUL, which no JSON text contains.
final class ChunkedWindow: JSONByteWindow {
    private let storage: UnsafeMutablePointer<UInt8>
    let count: Int
    let chunks: [Int]
    private var nextChunk = 0
    private(set) var available = 0
    /// Bytes below this were zeroed.
    private(set) var released = 0
    /// Most bytes arrived and not yet released at any time.
    private(set) var mostHeld = 0
    /// A `keepFrom` below bytes already released (the parser went back on its word).
    private(set) var wentBack = false

    init(_ document: [UInt8], chunks: [Int]) {
        count = document.count
        storage = .allocate(capacity: max(1, count))
        storage.initialize(from: document, count: count)
        self.chunks = chunks
        arrive()
    }

    deinit { storage.deallocate() }

    var bytes: UnsafePointer<UInt8> { UnsafePointer(storage) }
    var isComplete: Bool { available == count }
    var isAbandoned: Bool { false }

    private func arrive() {
        available = min(count, available + chunks[nextChunk % chunks.count])
        nextChunk += 1
        mostHeld = max(mostHeld, available - released)
    }

    func advance(keepFrom: Int, target: Int) {
        if keepFrom < released { wentBack = true }
        let upTo = min(keepFrom, available)
        if upTo > released {
            (storage + released).update(repeating: 0, count: upTo - released)
            released = upTo
        }
        while available < target && !isComplete { arrive() }
    }
}

/// The streamed parse of `document` (read `chunks` bytes at a time), or its error.
func streamedParse(_ document: [UInt8], chunks: [Int], options: JSONParser.Options) -> (Result<JSONValue?, JSONParseError>, ChunkedWindow) {
    let window = ChunkedWindow(document, chunks: chunks)
    let result = Result { () throws(JSONParseError) -> JSONValue? in try JSONParser(options: options).parse(window: window) }
    return (result, window)
}

func wholeParse(_ document: [UInt8], options: JSONParser.Options) -> Result<JSONValue, JSONParseError> {
    Result { () throws(JSONParseError) -> JSONValue in try JSONParser(options: options).parse(document) }
}

/// The compact text of a value (literals included, which `==` ignores).
func text(_ value: JSONValue) -> [UInt8] {
    var out: [UInt8] = []
    JSONWriter.write(value, into: &out)
    return out
}

@Suite("Parser: streamed input (parse while reading)")
struct StreamingParseTests {
    static var rows: JSONParser.Options {
        var options = JSONParser.Options()
        options.contiguousRows = true
        return options
    }

    static let optionSets: [JSONParser.Options] = [JSONParser.Options(), rows]

    /// Read patterns: byte by byte, small primes, a mix, and large reads.
    static let chunkings: [[Int]] = [[1], [2], [7], [4096, 1, 17, 3], [65_536], [1 << 20]]

    /// A matrix request line of `rows × cols` random doubles (mixed spellings: exponents, integers, negative zero).
    static func matrixRequest(rows: Int, cols: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        var text = #"{"jsonrpc":"2.0","id":12345678901234567890,"method":"matmul","params":{"data":["#
        for r in 0..<rows {
            text += r == 0 ? "[" : ",["
            for c in 0..<cols {
                if c > 0 { text += "," }
                switch rng.next() % 5 {
                case 0: text += String(Int64(bitPattern: rng.next()) % 1000)
                case 1: text += "-0"
                case 2: text += "\(Double(bitPattern: rng.next() >> 2))"
                default: text += "\(Double(rng.next() % 2_000_000) / 1024 - 977)e\(Int(rng.next() % 40) - 20)"
                }
            }
            text += "]"
        }
        text += #"],"matrix_b": [ [1, 2.5] , [ 3 ,4e1 ] ] }}"#
        return Array(text.utf8)
    }

    /// Documents that take every path: rows (regular, ragged, mixed, empty), long strings and numbers, long
    /// whitespace, escapes, literals, the non-finite tokens, deep nesting, a single long flat row.
    static let documents: [[UInt8]] = {
        var docs: [String] = [
            #"[[1,2],[3,4]]"#,
            #"[[1,2],[3]]"#,
            #"[[1,2],[3,"x"],[4,5]]"#,
            #"[[1.50,2],[3,4],"tail"]"#,
            #"[[],[1]]"#,
            #"[[1],[]]"#,
            #"[[[1]],[[2]]]"#,
            #"[[1,2],[3,4],{"a":[[5]]}]"#,
            #"{"a":[[1e400,-0,0.5]],"b":"str\u00e9\"x","c":[true,false,null],"d":NaN,"e":-Infinity,"f":[Infinity]}"#,
            #"  [ [ 1 , 2 ] , [ 3 , 4 ] ]  "#,
            #"[1, 2, "x", 3.0]"#,
            #"-12.5e-3"#,
            #""just a string""#,
            "[" + String(repeating: "[", count: 40) + "1" + String(repeating: "]", count: 40) + "]",
            #"{"s":""# + String(repeating: "abc\\n\\u00e9€", count: 60_000) + #""}"#,
            "[" + String(repeating: "1", count: 100_000) + ".5e-99999,2]",
            "[[1," + String(repeating: " ", count: 300_000) + "2],[3,4]]",
            "[" + (0..<60_000).map { "\($0 * 37 % 1001)" }.joined(separator: ",") + "]",
            "[[" + (0..<60_000).map { "\($0)" }.joined(separator: ",") + "]]",
        ]
        docs.append("[" + (0..<2000).map { "[\($0),\($0 + 1)]" }.joined(separator: ",") + ",[1,\"late\"]]")
        return docs.map { Array($0.utf8) } + [matrixRequest(rows: 300, cols: 120, seed: 7)]
    }()

    @Test("Same value (and literals) as the whole-buffer parse, for every read pattern", arguments: chunkings)
    func sameValues(chunks: [Int]) throws {
        for options in Self.optionSets {
            for document in Self.documents {
                let expected = try wholeParse(document, options: options).get()
                let (result, window) = streamedParse(document, chunks: chunks, options: options)
                let value = try #require(try result.get())
                #expect(value == expected)
                #expect(text(value) == text(expected))
                #expect(!window.wentBack)
            }
        }
    }

    @Test("Matrices become one contiguous buffer; anything else stays as before")
    func contiguousRows() throws {
        let rows = try JSONParser(options: Self.rows)
        guard case .rows(let matrix) = try rows.parse(#"[[1,2,3],[4,5,6]]"#) else {
            Issue.record("not parsed as rows")
            return
        }
        #expect(matrix.rows == 2 && matrix.cols == 3 && matrix.storage == [1, 2, 3, 4, 5, 6])
        guard case .object(let request) = try rows.parse(Self.matrixRequest(rows: 30, cols: 20, seed: 1)),
              case .object(let params)? = request["params"], case .rows(let data)? = params["data"] else {
            Issue.record("request matrix not parsed as rows")
            return
        }
        #expect(data.rows == 30 && data.cols == 20)
        // Ragged, mixed, empty rows: the ordinary array of rows, equal to the plain parse, literals kept.
        for text in [#"[[1,2],[3]]"#, #"[[1,2],[3,"x"]]"#, #"[[1],[]]"#, #"[[1],2]"#] {
            let value = try rows.parse(text)
            guard case .array = value else {
                Issue.record("\(text) should stay an array")
                continue
            }
            #expect(value == (try JSONParser().parse(text)))
        }
        #expect(text(try rows.parse(#"[[1,2],[3,"x",1.50]]"#)) == Array(#"[[1.0,2.0],[3,"x",1.50]]"#.utf8))
        // Equality and hashing agree with the array of rows.
        let plain = try JSONParser().parse(#"[[1,2],[3,4]]"#)
        let contiguous = try rows.parse(#"[[1,2],[3,4]]"#)
        #expect(plain == contiguous && contiguous == plain)
        #expect(plain.hashValue == contiguous.hashValue)
        #expect(contiguous.arrayCount == 2 && contiguous[1] == .numbers([3, 4]))
        #expect(contiguous != (try rows.parse(#"[[1,2],[3,5]]"#)))
    }

    @Test("Only whitespace is a blank line (nil), whatever the read pattern", arguments: chunkings)
    func blank(chunks: [Int]) throws {
        for document in ["", " ", " \t\r ", String(repeating: " ", count: 200_000)] {
            let (result, _) = streamedParse(Array(document.utf8), chunks: chunks, options: Self.rows)
            #expect(try result.get() == nil)
        }
    }

    /// Both parses' verdicts on `document`: the same value, or the same error (offset, line, column, message).
    static func checkSameVerdict(_ document: [UInt8], chunks: [Int], options: JSONParser.Options) -> Bool {
        let (streamed, window) = streamedParse(document, chunks: chunks, options: options)
        if window.wentBack { return false }
        switch (wholeParse(document, options: options), streamed) {
        case (.success(let a), .success(let b?)): return a == b && text(a) == text(b)
        case (.failure(let a), .failure(let b)): return a == b
        case (.failure(let a), .success(nil)): return a.message.contains("expected a JSON value") && document.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
        default: return false
        }
    }

    @Test("Errors anywhere, split across reads at every position: the same error as the whole-buffer parse")
    func errorsAcrossBoundaries() throws {
        let base = Array(#"{"a":[[1,-2.5e3],[3,4]],"s":"x\u00e9\ud83d\ude00y","t":[true,null,false],"n":-0.0}"#.utf8)
        var documents: [[UInt8]] = []
        // Every prefix (unexpected end at every place), and a stray byte at every place.
        for cut in 0..<base.count { documents.append(Array(base[..<cut])) }
        for place in 0..<base.count {
            for stray: UInt8 in [UInt8(ascii: "@"), UInt8(ascii: "0"), UInt8(ascii: "\""), UInt8(ascii: "]"), 0x01, 0xC3, 0xFF, UInt8(ascii: " ")] {
                var copy = base
                copy[place] = stray
                documents.append(copy)
            }
        }
        documents += [
            Array("[1,2,]".utf8), Array("[01]".utf8), Array("[1.]".utf8), Array("[1e]".utf8), Array("[-]".utf8),
            Array("\u{FEFF}[1]".utf8), Array(#"["\ud800"]"#.utf8), Array(#"["\ud800\u0041"]"#.utf8), Array("[tru]".utf8),
            Array("[1] 2".utf8), Array("[[1,2],[3,4],]".utf8), Array("[[1,2] [3,4]]".utf8), Array("[[1,2],[3,4]".utf8),
            Array("[Infinit]".utf8), Array("[-Infinity, NaN, -NaN]".utf8),
        ]
        for document in documents {
            for chunks in [[1], [2], [3], [5], [11], [4096]] {
                for options in Self.optionSets {
                    #expect(Self.checkSameVerdict(document, chunks: chunks, options: options),
                            "\(String(decoding: document, as: UTF8.self)) read \(chunks) at a time")
                }
            }
        }
    }

    @Test("Errors deep in a long matrix line, at and around read boundaries")
    func errorsInLongLine() throws {
        let request = Self.matrixRequest(rows: 200, cols: 100, seed: 3)
        var rng = SplitMix64(seed: 99)
        for _ in 0..<40 {
            var document = request
            let place = Int(rng.next() % UInt64(document.count))
            document[place] = [UInt8(ascii: "x"), UInt8(ascii: ","), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "-")][Int(rng.next() % 5)]
            let cut = rng.next() % 4 == 0 ? Int(rng.next() % UInt64(document.count)) : document.count
            document = Array(document[..<cut])
            for chunks in [[65_536], [1000, 7], [(place % 4093) + 1]] {
                for options in Self.optionSets {
                    #expect(Self.checkSameVerdict(document, chunks: chunks, options: options))
                }
            }
        }
    }

    static let suite = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("../shared/testdata/jsontestsuite/test_parsing").standardizedFileURL

    @Test("JSONTestSuite: every one-line file gets the same verdict streamed as whole",
          .enabled(if: FileManager.default.fileExists(atPath: suite.path), "needs ../shared/testdata/jsontestsuite"))
    func jsonTestSuite() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.suite.path).filter { $0.hasSuffix(".json") }
        var checked = 0
        for name in files {
            let bytes = Array(try Data(contentsOf: Self.suite.appendingPathComponent(name)))
            if bytes.contains(0x0A) { continue }  // a stream's line holds no LF
            for chunks in [[1], [3], [4096]] {
                for options in Self.optionSets {
                    #expect(Self.checkSameVerdict(bytes, chunks: chunks, options: options), "\(name) read \(chunks) at a time")
                }
            }
            checked += 1
        }
        #expect(checked > 250)
    }

    @Test("A long matrix line is never held whole: what is held stays about one read window")
    func boundedWindow() throws {
        let document = Self.matrixRequest(rows: 600, cols: 600, seed: 5)
        #expect(document.count > 3 << 20)
        let (result, window) = streamedParse(document, chunks: [65_536], options: Self.rows)
        let value = try #require(try result.get())
        #expect(value == (try JSONParser().parse(document)))
        #expect(window.mostHeld < 1 << 20)
        #expect(!window.wentBack)
    }
}
