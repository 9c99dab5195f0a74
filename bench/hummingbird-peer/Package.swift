// swift-tools-version:6.0
// A bare Hummingbird 2 app for the edge benchmark: one POST route that collects the body and echoes it, one GET.
// The gateway's own HTTP stack with nothing of the gateway on top — the ceiling the gateway is measured against.
import PackageDescription

let package = Package(
    name: "HummingbirdPeer",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        .executableTarget(name: "HummingbirdPeer", dependencies: [.product(name: "Hummingbird", package: "hummingbird")]),
    ]
)
