// swift-tools-version:6.0
// Bare peers for the edge benchmark: a Hummingbird 2 app and a SwiftNIO HTTP/1 server, each with one POST route that
// collects the body and echoes it and one GET.
// The gateway's own HTTP stack with nothing of the gateway on top — the ceiling the gateway is measured against.
import PackageDescription

let package = Package(
    name: "HummingbirdPeer",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
    ],
    targets: [
        .executableTarget(name: "HummingbirdPeer", dependencies: [.product(name: "Hummingbird", package: "hummingbird")]),
        // The same two routes on SwiftNIO's HTTP/1 pipeline directly (no Hummingbird, no async): the floor under it.
        .executableTarget(name: "NIOPeer", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
    ]
)
