import CForziumCPU

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The instruction set the SIMD kernels run on, chosen once at start-up.
///
/// - `avx2`: AVX2 + FMA, `SIMD4<Double>` (YMM) — ForziumKernelsSIMD itself, compiled for `haswell`;
/// - `avx512`: AVX-512 F/DQ/BW/VL, `SIMD8<Double>` (ZMM) matmul micro-kernel — ForziumKernelsAVX512, compiled for
///   `skylake-avx512`; the other kernels are memory-bound and stay on the AVX2 code.
///
/// Both give bit-identical results (the matmul blocking over k is the same), so the choice changes speed only.
public enum SIMDISA: String, Sendable, CaseIterable, CustomStringConvertible {
    case avx2
    case avx512

    /// Doubles per vector register of the matmul micro-kernel.
    public var vectorWidth: Int {
        switch self {
        case .avx2: 4
        case .avx512: 8
        }
    }

    public var description: String { rawValue }

    /// Whether this CPU (cpuid) and OS (xgetbv: the register state is saved on context switches) support it.
    public var isSupported: Bool {
        switch self {
        case .avx2: forzium_cpu_has_avx2_fma() != 0
        case .avx512: forzium_cpu_has_avx512() != 0
        }
    }

    /// The widest supported ISA, or nil when even AVX2 + FMA is missing.
    public static var best: SIMDISA? {
        if SIMDISA.avx512.isSupported { return .avx512 }
        if SIMDISA.avx2.isSupported { return .avx2 }
        return nil
    }

    /// Every ISA this machine can run (for tests that run each path).
    public static var supported: [SIMDISA] { allCases.filter(\.isSupported) }

    /// The environment variable that picks an ISA when no `--isa` flag is given.
    public static let environmentVariable = "FORZIUM_ISA"

    /// Why an ISA request cannot be honoured.
    public enum SelectionError: Error, CustomStringConvertible {
        case unknown(String)
        case unsupported(SIMDISA)
        case noAVX2

        public var description: String {
            switch self {
            case .unknown(let name): "unknown ISA \"\(name)\" (expected auto, avx2 or avx512)"
            case .unsupported(let isa): "this CPU or OS does not support \(isa)"
            case .noAVX2: "this CPU lacks AVX2 and/or FMA"
            }
        }
    }

    /// Resolves a request: `flag` (`--isa`) first, then `$FORZIUM_ISA`, else `auto` (the widest supported).
    /// An explicit request for an ISA this machine lacks is an error, never a silent downgrade.
    public static func select(flag: String?, environment: String? = SIMDISA.environmentValue) throws -> SIMDISA {
        let request = (flag ?? environment ?? "auto").lowercased()
        if request == "auto" || request.isEmpty {
            guard let best else { throw SelectionError.noAVX2 }
            return best
        }
        guard let isa = SIMDISA(rawValue: request) else { throw SelectionError.unknown(request) }
        guard isa.isSupported else { throw SelectionError.unsupported(isa) }
        return isa
    }

    /// `$FORZIUM_ISA`, if set.
    public static var environmentValue: String? {
        getenv(environmentVariable).map { String(cString: $0) }
    }
}
