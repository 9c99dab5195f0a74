import Metrics
import NIOConcurrencyHelpers
import Prometheus
import ForziumRPC

/// The gateway's metrics, recorded through swift-metrics into its own Prometheus registry (no global bootstrap,
/// so several gateways can live in one test process).
public final class GatewayMetrics: Sendable {
    /// Where every metric lands; `/metrics` renders it.
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let queueDepth: Metrics.Gauge
    private let inFlight: Metrics.Gauge
    private let enginesReady: Metrics.Gauge

    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(250), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30),
        ]
        self.registry = registry
        self.factory = factory
        self.queueDepth = Metrics.Gauge(label: "forzium_queue_depth", factory: factory)
        self.inFlight = Metrics.Gauge(label: "forzium_engine_in_flight", factory: factory)
        self.enginesReady = Metrics.Gauge(label: "forzium_engines_ready", factory: factory)
        // Constant 1; the labels say what runs (Prometheus' `*_build_info` convention).
        Metrics.Gauge(label: "forzium_build_info", dimensions: [("version", ForziumVersion.string)], factory: factory).record(1)
    }

    private struct RequestKey: Hashable {
        var route: String
        var method: String
        var status: Int
    }

    /// Metric handles per label set, so a request costs one dictionary lookup, not a registry lookup per metric.
    private let requestHandles = NIOLockedValueBox([RequestKey: RequestRecorder]())

    /// Counts one finished request and records its latency.
    public func recordRequest(route: String, method: String, status: Int, duration: Duration) {
        requestRecorder(route: route, method: method, status: status).record(duration)
    }

    /// The request metrics of one label set: a caller that records the same labels for every request keeps this
    /// instead of looking the handles up (under a lock shared by every event loop) each time.
    public struct RequestRecorder: Sendable {
        let counter: Metrics.Counter
        let timer: Metrics.Timer

        public func record(_ duration: Duration) {
            record(nanoseconds: duration.nanoseconds)
        }

        public func record(nanoseconds: Int64) {
            counter.increment()
            timer.recordNanoseconds(nanoseconds)
        }
    }

    public func requestRecorder(route: String, method: String, status: Int) -> RequestRecorder {
        let key = RequestKey(route: route, method: method, status: status)
        return requestHandles.withLockedValue { handles in
            if let existing = handles[key] { return existing }
            let made = RequestRecorder(
                counter: Metrics.Counter(label: "forzium_http_requests_total",
                                         dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory),
                timer: Metrics.Timer(label: "forzium_http_request_duration_seconds", dimensions: [("route", route)], factory: factory))
            handles[key] = made
            return made
        }
    }

    /// Counts one engine restart, labelled by why.
    public func recordEngineRestart(reason: String) {
        Metrics.Counter(label: "forzium_engine_restarts_total", dimensions: [("reason", reason)], factory: factory).increment()
    }

    /// Counts a request whose caller gave up (deadline, client gone): `where` is `queue` (it just left the queue) or
    /// `engine` (its engine was sent `$/cancelRequest`, or it was withdrawn before being written).
    public func recordAbandoned(where place: String) {
        Metrics.Counter(label: "forzium_requests_abandoned_total", dimensions: [("where", place)], factory: factory).increment()
    }

    /// Counts a request moved to another engine (or back to the queue) because it was not completely written to its
    /// engine when that engine died, was replaced or stopped answering.
    public func recordReroute() {
        Metrics.Counter(label: "forzium_requests_rerouted_total", factory: factory).increment()
    }

    /// Current pool figures.
    public func recordPool(queueDepth: Int, inFlight: Int, enginesReady: Int) {
        self.queueDepth.record(queueDepth)
        self.inFlight.record(inFlight)
        self.enginesReady.record(enginesReady)
    }

    /// The Prometheus text exposition.
    public func render() -> [UInt8] {
        var out: [UInt8] = []
        registry.emit(into: &out)
        return out
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (s, atto) = components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }
    var milliseconds: Double { Double(nanoseconds) / 1e6 }
}
