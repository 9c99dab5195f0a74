import NIOConcurrencyHelpers
import NIOCore

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

    private struct Entry {
        let channel: any Channel
        /// Order of arrival, for "oldest first".
        let serial: UInt64
        var idle: Bool
        var used: Bool
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var serial: UInt64 = 0
        var evicted: Int = 0
        var refused: Int = 0
    }

    let limit: Int
    private let state = NIOLockedValueBox(State())

    init(limit: Int) {
        self.limit = limit
    }

    /// Open connections.
    var count: Int { state.withLockedValue { $0.entries.count } }
    /// Connections closed to make room, and newcomers refused, since start.
    var evictions: (evicted: Int, refused: Int) { state.withLockedValue { ($0.evicted, $0.refused) } }

    func opened(_ channel: any Channel) -> Admission {
        let id = ObjectIdentifier(channel)
        return state.withLockedValue { s -> Admission in
            s.serial &+= 1
            guard s.entries.count >= limit else {
                s.entries[id] = Entry(channel: channel, serial: s.serial, idle: true, used: false)
                return .admitted
            }
            // The oldest never-used idle connection, else the oldest idle one.
            var victim: (key: ObjectIdentifier, entry: Entry)?
            for (key, entry) in s.entries where entry.idle {
                guard let current = victim?.entry else { victim = (key, entry); continue }
                if (!entry.used && current.used) || (entry.used == current.used && entry.serial < current.serial) {
                    victim = (key, entry)
                }
            }
            guard let victim else {
                s.refused += 1
                return .refused
            }
            s.entries[victim.key] = nil
            s.evicted += 1
            s.entries[id] = Entry(channel: channel, serial: s.serial, idle: true, used: false)
            return .admittedEvicting(victim.entry.channel)
        }
    }

    /// A request started (`idle == false`) or the last response ended (`idle == true`).
    func setIdle(_ channel: any Channel, _ idle: Bool) {
        let id = ObjectIdentifier(channel)
        state.withLockedValue { s in
            guard s.entries[id] != nil else { return }
            s.entries[id]!.idle = idle
            if !idle { s.entries[id]!.used = true }
        }
    }

    func closed(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        _ = state.withLockedValue { $0.entries.removeValue(forKey: id) }
    }
}
