/// The one version of Forzium's executables: `--version` of the gateway and both engines, `engine.info`, the
/// gateway's `GET /` and its `forzium_build_info` metric, and the packaging script's tarball name.
public enum ForziumVersion {
    public static let string = "0.2.0"
}
