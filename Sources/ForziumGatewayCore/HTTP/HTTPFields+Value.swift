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
        for (key, value) in self where key.utf8.count == name.utf8.count
            && zip(key.utf8, name.utf8).allSatisfy({ $0 | 0x20 == $1 }) {
            guard let first = found else { found = value; continue }
            found = first + ", " + value
        }
        return found
    }
}
