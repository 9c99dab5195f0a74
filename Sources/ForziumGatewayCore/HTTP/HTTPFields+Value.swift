import HTTPTypes
import NIOHTTP1

extension HTTPFields {
    /// `self[name]` without its cost in the usual case. The subscript builds a joined copy of the values for every
    /// lookup of a field that is present (`Content-Length` was read that way five times per request); a field that
    /// occurs once is returned as it is here, and several occurrences are joined as the subscript joins them.
    func value(_ name: HTTPField.Name) -> String? {
        var found: String?
        for field in self where field.name == name {
            if found != nil { return self[name] }
            found = field.value
        }
        return found
    }
}

extension HTTPHeaders {
    /// The value of the field `name` (given in lower case) as `HTTPFields`' subscript gives it once the request is
    /// converted: nil when absent, several occurrences joined with ", ". No allocation for a field that occurs once.
    func value(_ name: String) -> String? {
        var found: String?
        for (key, value) in self where Self.isField(key, named: name) {
            guard let first = found else { found = value; continue }
            found = first + ", " + value
        }
        return found
    }

    /// How many fields are named `name` (given in lower case).
    func count(_ name: String) -> Int {
        var count = 0
        for (key, _) in self where Self.isField(key, named: name) { count += 1 }
        return count
    }

    /// Whether the field name `key` is `name` (given in lower case), ignoring ASCII case; compared over contiguous
    /// bytes (a field name is a token: no byte of it folds onto another by setting bit 5 except letters).
    static func isField(_ key: String, named name: String) -> Bool {
        guard key.utf8.count == name.utf8.count else { return false }
        var key = key, name = name
        return key.withUTF8 { k in
            name.withUTF8 { n in
                for i in 0..<k.count where k[i] | 0x20 != n[i] { return false }
                return true
            }
        }
    }
}
