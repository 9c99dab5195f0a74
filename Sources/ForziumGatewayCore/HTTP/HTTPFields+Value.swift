import HTTPTypes

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
