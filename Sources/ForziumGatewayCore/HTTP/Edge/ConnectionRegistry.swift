import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// Every open HTTP connection of the server, for the connection limit. Beyond the limit the oldest idle connection
/// (never-used ones first) is closed to make room, so thousands of parked sockets cannot lock out a real client;
/// when every connection is busy the newcomer is refused.
final class ConnectionRegistry: Sendable {
    /// What to do with a connection that has just been accepted.
    enum Admission {
        case admitted
        /// Admitted; the given connection was chosen to make room and must be closed.
        case admittedEvicting(any Channel)
        /// Over the limit with nothing idle to evict.
        case refused
    }

    /// One connection's standing: its own event loop marks it busy or idle with one atomic store (no lock shared
    /// with the other loops on a request's path); the registry reads it only when it must choose a connection to
    /// evict.
    final class Ticket: Sendable {
        fileprivate let channel: any Channel
        /// Bit 0: idle. Bit 1: used (has had a request). Above: when it last turned idle (uptime nanoseconds).
        private let word = Atomic<UInt64>(idleBit)
        private static let idleBit: UInt64 = 1
        private static let usedBit: UInt64 = 2

        fileprivate init(channel: any Channel) { self.channel = channel }

        /// A request started.
        func busy() { word.store(Self.usedBit, ordering: .relaxed) }

        /// The last response ended at `now`.
        func idle(at now: NIODeadline) {
            word.store(now.uptimeNanoseconds << 2 | Self.usedBit | Self.idleBit, ordering: .relaxed)
        }

        fileprivate var isNeverUsedIdle: Bool { word.load(ordering: .relaxed) == Self.idleBit }

        /// When it turned idle after a request, or nil (busy, or never used).
        fileprivate var usedIdleSince: UInt64? {
            let w = word.load(ordering: .relaxed)
            return w & (Self.idleBit | Self.usedBit) == Self.idleBit | Self.usedBit ? w >> 2 : nil
        }
    }

    private struct State {
        var entries: [ObjectIdentifier: Ticket] = [:]
        /// Connections in the order they opened; an item goes stale once its connection is used or closed.
        var neverUsed: [ObjectIdentifier] = []
        var head = 0

        /// The oldest never-used idle connection, else the one idle the longest after a request (a scan, only when
        /// the limit is reached and every never-used connection is gone).
        mutating func popVictim() -> ObjectIdentifier? {
            while head < neverUsed.count {
                let id = neverUsed[head]
                head += 1
                if entries[id]?.isNeverUsedIdle == true { return id }
            }
            var best: (id: ObjectIdentifier, since: UInt64)?
            for (id, ticket) in entries {
                guard let since = ticket.usedIdleSince else { continue }
                if best.map({ since < $0.since }) ?? true { best = (id, since) }
            }
            return best?.id
        }

        /// Drops consumed and stale items once they outnumber the live connections.
        mutating func compact() {
            guard neverUsed.count - head > 2 * entries.count + 64 || head > 4096 else { return }
            let live = entries
            neverUsed = neverUsed[head...].filter { live[$0]?.isNeverUsedIdle == true }
            head = 0
        }
    }

    let limit: Int
    private let state = NIOLockedValueBox(State())

    init(limit: Int) {
        self.limit = limit
    }

    /// Registers a new connection: its ticket, and whether it may stay.
    func opened(_ channel: any Channel) -> (Ticket, Admission) {
        let id = ObjectIdentifier(channel)
        let ticket = Ticket(channel: channel)
        let admission = state.withLockedValue { s -> Admission in
            var victim: (any Channel)?
            if s.entries.count >= limit {
                guard let key = s.popVictim() else { return .refused }
                victim = s.entries.removeValue(forKey: key)?.channel
            }
            s.entries[id] = ticket
            s.neverUsed.append(id)
            s.compact()
            return victim.map { .admittedEvicting($0) } ?? .admitted
        }
        return (ticket, admission)
    }

    func closed(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        state.withLockedValue { s in
            s.entries[id] = nil
            s.compact()
        }
    }
}
