import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The `Date` field of responses the gateway writes itself (RFC 9110 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37
/// GMT`), formatted once per second by each thread that asks (no lock shared by the event loops).
enum HTTPDate {
    private final class Cache {
        var second = -1
        var text = ""
    }

    /// One cache per thread (`ThreadSpecificVariable` is safe to share; its values are not shared).
    nonisolated(unsafe) private static let cache = ThreadSpecificVariable<Cache>()
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func now() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let second = Int(now.tv_sec)
        let cached: Cache
        if let existing = cache.currentValue {
            cached = existing
        } else {
            cached = Cache()
            cache.currentValue = cached
        }
        if cached.second != second {
            cached.second = second
            cached.text = format(second)
        }
        return cached.text
    }

    static func format(_ secondsSinceEpoch: Int) -> String {
        var time = time_t(secondsSinceEpoch)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
