import NIOCore
import NIOEmbedded
import Testing
@testable import ForziumGatewayCore

@Suite("Connection registry: the limit and whom it evicts")
struct ConnectionRegistryTests {
    private func victim(_ admission: ConnectionRegistry.Admission) -> (any Channel)? {
        if case .admittedEvicting(let channel) = admission { return channel }
        return nil
    }

    private func isRefused(_ admission: ConnectionRegistry.Admission) -> Bool {
        if case .refused = admission { return true }
        return false
    }

    @Test func neverUsedGoFirstThenTheLongestIdleAndBusyOnesNever() {
        let registry = ConnectionRegistry(limit: 3)
        let first = EmbeddedChannel(), second = EmbeddedChannel(), third = EmbeddedChannel()
        let (a, admittedA) = registry.opened(first)
        let (b, _) = registry.opened(second)
        let (_, _) = registry.opened(third)
        guard case .admitted = admittedA else { Issue.record("below the limit a connection is admitted"); return }
        a.busy()
        a.idle(at: .uptimeNanoseconds(2_000))
        b.busy()
        b.idle(at: .uptimeNanoseconds(1_000))

        // The never-used connection goes first, though the others have been idle longer.
        let fourth = EmbeddedChannel()
        let (d, admittedD) = registry.opened(fourth)
        #expect(victim(admittedD) === third)
        d.busy()

        // Then the connection idle the longest since its last response: `second`, idle since 1 µs.
        let (e, admittedE) = registry.opened(EmbeddedChannel())
        #expect(victim(admittedE) === second)
        e.busy()

        // A connection busy again is no candidate: `first` turns busy, and with every connection busy the
        // newcomer is refused.
        a.busy()
        #expect(isRefused(registry.opened(EmbeddedChannel()).1))

        // A closed connection frees its place without evicting anyone.
        registry.closed(fourth)
        guard case .admitted = registry.opened(EmbeddedChannel()).1 else {
            Issue.record("a closed connection's place is free"); return
        }
    }

    @Test func aNeverUsedConnectionThatTurnedBusyIsNotEvictedAsNeverUsed() {
        let registry = ConnectionRegistry(limit: 2)
        let first = EmbeddedChannel(), second = EmbeddedChannel()
        let (a, _) = registry.opened(first)
        let (_, _) = registry.opened(second)
        a.busy()
        // `first` is older but now used and busy: the never-used `second` goes.
        #expect(victim(registry.opened(EmbeddedChannel()).1) === second)
    }
}
