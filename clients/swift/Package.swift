// swift-tools-version:6.0
// The code generator for Sources/ForziumClient/Generated, kept out of the Forzium package so that building Forzium
// never builds it (scripts/gen-swift-client.sh builds this package on its own).
import PackageDescription

let package = Package(
    name: "forzium-openapi-generator",
    dependencies: [
        .package(url: "https://github.com/apple/swift-openapi-generator", exact: "1.14.3"),
    ],
    targets: []
)
