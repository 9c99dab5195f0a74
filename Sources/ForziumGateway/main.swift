import ForziumGatewayCore

// Parse and run explicitly so the async `run()` is the one called.
do {
    var command = try GatewayCommand.parseAsRootWithEnvironment()
    if var asyncCommand = command as? any AsyncParsableCommandRunnable {
        try await asyncCommand.runAsync()
    } else {
        try command.run()
    }
} catch {
    GatewayCommand.exit(withError: error)
}
