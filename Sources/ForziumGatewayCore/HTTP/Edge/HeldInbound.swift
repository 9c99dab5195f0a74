/// What reaches a handler of the channel pipeline while it owes an answer (a pipelining client sending its next
/// requests, or its end of input): kept in order to be taken up once the answer is written, with the read it paused.
/// Reads pause only once something is held — pausing on every answer would cost two epoll changes per request.
struct HeldInbound<Part> {
    enum Item {
        case part(Part)
        case inputClosed
    }

    private var items: [Item] = []
    private var readPending = false

    var isEmpty: Bool { items.isEmpty }

    mutating func append(_ item: Item) { items.append(item) }

    mutating func removeAll() { items.removeAll() }

    /// The oldest held item, removed.
    mutating func next() -> Item? { items.isEmpty ? nil : items.removeFirst() }

    /// Whether a `read` may go on now (nothing held, and the caller not `paused`); if not, it is remembered for
    /// `resumesRead`.
    mutating func allowsRead(paused: Bool = false) -> Bool {
        if items.isEmpty, !paused { return true }
        readPending = true
        return false
    }

    /// True, once, when nothing is held any more and a read waits.
    mutating func resumesRead() -> Bool {
        guard items.isEmpty, readPending else { return false }
        readPending = false
        return true
    }
}
