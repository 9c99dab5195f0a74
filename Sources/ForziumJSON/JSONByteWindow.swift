/// The bytes of one document that arrive while it is being parsed (`JSONParser.parse(window:)`), e.g. a long protocol
/// line still streaming in.
///
/// The document lives at one fixed address, `bytes`, byte `i` at `bytes + i`, but only `bytes[0..<available]` has
/// arrived; the parser asks for more with `advance(keepFrom:target:)` and says each time below which offset it will
/// never read again, so the window can hand those bytes (pages) back: a document need not ever be resident whole.
/// The document holds no LF (it is one line of a line-delimited stream), so parse errors are reported at line 1.
public protocol JSONByteWindow: AnyObject {
    /// Where the document starts (fixed for the whole parse).
    var bytes: UnsafePointer<UInt8> { get }
    /// Bytes of the document readable now.
    var available: Int { get }
    /// Whether `available` covers the whole document (no more bytes will come).
    var isComplete: Bool { get }
    /// Whether the document will not be used whatever it holds (e.g. its line turned out to be over the length limit):
    /// the parser then stops at once, with an error, instead of reading on.
    var isAbandoned: Bool { get }
    /// Reads on until at least `target` bytes are available or the document is complete (it must do one or the other
    /// before returning). Bytes below `keepFrom` will not be read again.
    func advance(keepFrom: Int, target: Int)
}
