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
        var idle: Bool
        var used: Bool
        /// Bumped each time the connection becomes idle, so stale queue items can be recognised.
        var epoch: UInt64
    }

    /// Idle connections in the order they became idle; items go stale when the connection is used or closed.
    private struct IdleQueue {
        var items: [(id: ObjectIdentifier, epoch: UInt64)] = []
        var head = 0

        mutating func append(_ id: ObjectIdentifier, _ epoch: UInt64) { items.append((id, epoch)) }

        /// The oldest item that is still current.
        mutating func popValid(_ entries: [ObjectIdentifier: Entry], used: Bool) -> ObjectIdentifier? {
            while head < items.count {
                let item = items[head]
                head += 1
                if let entry = entries[item.id], entry.idle, entry.used == used, entry.epoch == item.epoch { return item.id }
            }
            return nil
        }

        /// Drops consumed and stale items once they outnumber the live connections.
        mutating func compact(_ entries: [ObjectIdentifier: Entry], used: Bool) {
            guard items.count - head > 2 * entries.count + 64 || head > 4096 else { return }
            items = items[head...].filter { item in
                guard let entry = entries[item.id] else { return false }
                return entry.idle && entry.used == used && entry.epoch == item.epoch
            }
            head = 0
        }
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var neverUsed = IdleQueue()
        var usedIdle = IdleQueue()

        // The queues are moved out while they read `entries`: passing `entries` along while `self` is being
        // mutated would keep a second reference and make the next change to `entries` copy the whole table.
        mutating func popVictim() -> ObjectIdentifier? {
            var fresh = neverUsed
            neverUsed = IdleQueue()
            defer { neverUsed = fresh }
            if let key = fresh.popValid(entries, used: false) { return key }
            var idle = usedIdle
            usedIdle = IdleQueue()
            defer { usedIdle = idle }
            return idle.popValid(entries, used: true)
        }

        mutating func compact() {
            var fresh = neverUsed
            neverUsed = IdleQueue()
            fresh.compact(entries, used: false)
            neverUsed = fresh
            var idle = usedIdle
            usedIdle = IdleQueue()
            idle.compact(entries, used: true)
            usedIdle = idle
        }
    }

    let limit: Int
    private let state = NIOLockedValueBox(State())

    init(limit: Int) {
        self.limit = limit
    }

    func opened(_ channel: any Channel) -> Admission {
        let id = ObjectIdentifier(channel)
        return state.withLockedValue { s -> Admission in
            var victim: (any Channel)?
            if s.entries.count >= limit {
                // The oldest never-used idle connection, else the one idle the longest.
                guard let key = s.popVictim() else { return .refused }
                victim = s.entries.removeValue(forKey: key)?.channel
            }
            s.entries[id] = Entry(channel: channel, idle: true, used: false, epoch: 0)
            s.neverUsed.append(id, 0)
            s.compact()
            return victim.map { .admittedEvicting($0) } ?? .admitted
        }
    }

    /// A request started (`idle == false`) or the last response ended (`idle == true`).
    func setIdle(_ channel: any Channel, _ idle: Bool) {
        let id = ObjectIdentifier(channel)
        state.withLockedValue { s in
            guard var entry = s.entries[id] else { return }
            entry.idle = idle
            if idle {
                entry.epoch &+= 1
                s.usedIdle.append(id, entry.epoch)
            } else {
                entry.used = true
            }
            s.entries[id] = entry
            if idle { s.compact() }
        }
    }

    func closed(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        state.withLockedValue { s in
            s.entries[id] = nil
            s.compact()
        }
    }
}
