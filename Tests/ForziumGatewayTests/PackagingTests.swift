#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ForziumRPC
import Testing

/// The tarball `scripts/package.sh` writes. `scripts/test.sh` builds it (into `.build-static/dist`) before the suite
/// runs, so the suite never compiles while timing-sensitive tests run beside it; run alone, the test builds it.
private func packagedTarball() throws -> String {
    var info = utsname()
    uname(&info)
    let arch = withUnsafeBytes(of: &info.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    let out = repositoryRoot.appendingPathComponent(".build-static/dist").path
    let tarball = "\(out)/forzium-\(ForziumVersion.string)-linux-\(arch).tar.gz"
    if !FileManager.default.fileExists(atPath: tarball) {
        let built = try runCommand("/bin/bash", [repositoryRoot.appendingPathComponent("scripts/package.sh").path, "--out", out],
                                   directory: repositoryRoot.path, timeout: 1800)
        guard built.status == 0 else { throw HTTPClientError(description: "package.sh failed:\n\(built.stderr.suffix(3000))") }
    }
    return tarball
}

/// The folder holding the toolchain's Swift runtime (`libswiftCore.so`), as the dynamically linked debug build finds it.
private func toolchainLibraryDirectory() throws -> String? {
    let out = try runCommand("/usr/bin/ldd", [buildDirectory + "/forzium-engine"], timeout: 30)
    guard let line = out.stdout.split(separator: "\n").first(where: { $0.contains("libswiftCore.so") }),
          let arrow = line.range(of: "=> ") else { return nil }
    let path = line[arrow.upperBound...].split(separator: " ").first.map(String.init) ?? ""
    return path.isEmpty ? nil : (path as NSString).deletingLastPathComponent
}

/// Swift runtime and other libraries the packaged binaries must not load from the system.
private let bundledLibraryNames = ["libswift", "libFoundation", "libdispatch", "libBlocksRuntime", "libjansson"]

@Suite("Self-contained tarball (scripts/package.sh)", .serialized)
struct PackagingTests {
    @Test func unpackedBinariesNeedNoSwiftRuntimeAndServeWithTheToolchainHidden() throws {
        let tarball = try packagedTarball()
        let unpack = (buildDirectory as NSString).deletingLastPathComponent + "/test-unpack-\(getpid())"
        try? FileManager.default.removeItem(atPath: unpack)
        try FileManager.default.createDirectory(atPath: unpack, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: unpack) }
        #expect(try runCommand("/bin/tar", ["-xzf", tarball, "-C", unpack], timeout: 120).status == 0)
        let root = unpack + "/" + ((tarball as NSString).lastPathComponent as NSString).deletingPathExtension
            .replacingOccurrences(of: ".tar", with: "")
        for file in ["bin/forzium-gateway", "bin/forzium-engine", "bin/forzium-engine-simd", "schemas/methods", "README.md",
                     "deploy/nginx/forzium.conf", "deploy/systemd/forzium-gateway.service", "deploy/Containerfile", "VERSION"] {
            #expect(FileManager.default.fileExists(atPath: root + "/" + file), "\(file) missing from the tarball")
        }

        // 1. ldd names no Swift runtime library (nor libjansson) for any binary.
        for name in ["forzium-gateway", "forzium-engine", "forzium-engine-simd"] {
            let ldd = try runCommand("/usr/bin/ldd", [root + "/bin/" + name], timeout: 30)
            #expect(ldd.status == 0)
            for library in bundledLibraryNames {
                #expect(!ldd.stdout.contains(library), "\(name) links \(library) dynamically:\n\(ldd.stdout)")
            }
            let version = try runCommand(root + "/bin/" + name, ["--version"], timeout: 30)
            #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == ForziumVersion.string)
        }

        // 2. The unpacked gateway serves /compute with the toolchain's library folder out of reach: in a private mount
        // namespace with an empty tmpfs over that folder (where the kernel allows it), with no library path either.
        let hidden = try toolchainLibraryDirectory()
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "LD_LIBRARY_PATH")
        environment["PATH"] = "/usr/bin:/bin"
        var executable = root + "/bin/forzium-gateway"
        var hiding = false
        if let hidden, FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"),
           try runCommand("/usr/bin/unshare", ["-m", "/bin/sh", "-c", "mount -t tmpfs tmpfs '\(hidden)'"], timeout: 30).status == 0 {
            // Control: in such a namespace the dynamically linked debug engine cannot start at all.
            let control = try runCommand("/usr/bin/unshare", ["-m", "/bin/sh", "-c",
                                                              "mount -t tmpfs tmpfs '\(hidden)' && exec '\(buildDirectory)/forzium-engine' --version"],
                                         environment: environment, timeout: 30)
            #expect(control.status != 0 && control.stderr.contains("libswift"), "hiding the toolchain did not work: \(control.stderr)")
            let wrapper = unpack + "/gateway-without-toolchain.sh"
            try """
                #!/bin/sh
                exec /usr/bin/unshare -m /bin/sh -c 'mount -t tmpfs tmpfs "$0" && exec "$@"' '\(hidden)' '\(root)/bin/forzium-gateway' "$@"
                """.write(toFile: wrapper, atomically: true, encoding: .utf8)
            chmod(wrapper, 0o755)
            executable = wrapper
            hiding = true
        }
        let gateway = try GatewayProcess(engine: nil, environment: environment, executable: executable)
        defer { gateway.stop() }
        let reply = try gateway.client.request("POST", "/compute",
                                               body: json(#"{"data":[[1,2],[3,4]],"operation":"matmul","parameters":{"matrix_b":[[1,0],[0,1]]}}"#))
        #expect(reply.status == 200, "\(reply.text)")
        #expect(reply.text.hasPrefix(#"{"result":[[1.0,2.0],[3.0,4.0]]"#), "\(reply.text)")
        #expect(reply.header("X-Forzium-Engine") == "simd")
        // Whatever the namespace: neither the gateway nor its engine has a Swift runtime library mapped.
        let enginePID = try gateway.slot0().pid
        for pid in [gateway.process.processIdentifier] + (enginePID.map { [$0] } ?? []) {
            let maps = (try? String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)) ?? ""
            #expect(!maps.isEmpty)
            for library in bundledLibraryNames { #expect(!maps.contains(library), "pid \(pid) has \(library) mapped") }
        }
        if !hiding { print("PackagingTests: no mount namespace here; checked ldd and /proc/PID/maps only") }

        // 3. The systemd unit, pointed at the unpacked folder, passes `systemd-analyze verify` (where systemd exists).
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") {
            let unit = try String(contentsOfFile: root + "/deploy/systemd/forzium-gateway.service", encoding: .utf8)
                .replacingOccurrences(of: "/opt/forzium", with: root)
            let path = unpack + "/forzium-gateway.service"
            try unit.write(toFile: path, atomically: true, encoding: .utf8)
            let verify = try runCommand("/usr/bin/systemd-analyze", ["verify", path], timeout: 60)
            #expect(verify.status == 0, "systemd-analyze verify: \(verify.stderr)")
            #expect(!verify.stderr.contains("forzium-gateway.service"), "systemd-analyze verify warns: \(verify.stderr)")
        }
    }
}
