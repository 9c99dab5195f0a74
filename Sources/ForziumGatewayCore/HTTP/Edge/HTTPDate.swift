import CForziumSystem

/// The `Date` field of responses the gateway writes itself (RFC 9110 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37
/// GMT`), formatted once per second by each thread that asks, into a buffer of that thread's own (no lock shared by the
/// event loops; `forzium_http_date_now`).
enum HTTPDate {
    /// Every value has this many bytes.
    static let length = Int(FORZIUM_HTTP_DATE_LENGTH)

    /// The current value's bytes, lent for the call (they belong to this thread).
    @inline(__always)
    static func withNow<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        try body(UnsafeRawBufferPointer(start: forzium_http_date_now(), count: length))
    }

    static func now() -> String {
        withNow { String(decoding: $0, as: UTF8.self) }
    }

    /// The value for `secondsSinceEpoch`.
    static func format(_ secondsSinceEpoch: Int) -> String {
        String(unsafeUninitializedCapacity: length) {
            forzium_http_date_format(Int64(secondsSinceEpoch), $0.baseAddress!)
            return length
        }
    }
}
