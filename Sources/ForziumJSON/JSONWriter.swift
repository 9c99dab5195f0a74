// API shape only; the JSON codec work replaces the bodies.

/// Writes compact JSON (no whitespace) straight into a byte buffer.
/// Non-finite numbers are written as `null`; doubles print as the shortest text that round-trips.
public enum JSONWriter {
    public static func write(_ value: JSONValue, into buffer: inout [UInt8]) {
        fatalError("JSON writer not written yet")
    }

    /// Shortest round-trip text of `value` (`2.0` for integral values); `null` when not finite.
    public static func writeDouble(_ value: Double, into buffer: inout [UInt8]) {
        fatalError("JSON writer not written yet")
    }

    public static func bytes(_ value: JSONValue) -> [UInt8] {
        var buffer: [UInt8] = []
        write(value, into: &buffer)
        return buffer
    }

    public static func string(_ value: JSONValue) -> String {
        String(decoding: bytes(value), as: UTF8.self)
    }
}
