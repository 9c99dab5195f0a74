/// The operations of the catalogue, by their method names.
public enum MatrixOperation: String, Sendable, CaseIterable {
    case multiply
    case add
    case matmul
    case transpose
    case elementwiseAdd = "elementwise_add"
    case elementwiseSub = "elementwise_sub"
    case elementwiseMul = "elementwise_mul"
    case elementwiseDiv = "elementwise_div"
    case conv2d
    case maxPool2d = "max_pool2d"
    case normalize
    case reshape
    case sum
    case mean
    case min
    case max

    /// The operation whose name (raw value) is `name`: one hash lookup, where `init(rawValue:)` compares the name with
    /// each case's in turn (about 3 % of an engine's instructions for a small request).
    static func named(_ name: String) -> MatrixOperation? { byName[name] }

    private static let byName = Dictionary(uniqueKeysWithValues: allCases.map { ($0.rawValue, $0) })

    /// The operation's own parameters (besides `data`), in documentation order.
    var parameters: [ParameterSpec] {
        switch self {
        case .multiply: [ParameterSpec("factor", .number(default: 1))]
        case .add: [ParameterSpec("addend", .number(default: 0))]
        case .matmul: [ParameterSpec("matrix_b", .matrix)]
        case .transpose: []
        case .elementwiseAdd, .elementwiseSub, .elementwiseMul, .elementwiseDiv: [ParameterSpec("other", .matrix)]
        case .conv2d: [ParameterSpec("kernel", .matrix)]
        case .maxPool2d: [ParameterSpec("size", .positiveInteger)]
        case .normalize: [ParameterSpec("mode", .normalizeMode)]
        case .reshape: [ParameterSpec("rows", .positiveInteger), ParameterSpec("cols", .positiveInteger)]
        case .sum, .mean, .min, .max: [ParameterSpec("axis", .axis)]
        }
    }

    var elementwiseOp: ElementwiseOp? {
        switch self {
        case .elementwiseAdd: .add
        case .elementwiseSub: .sub
        case .elementwiseMul: .mul
        case .elementwiseDiv: .div
        default: nil
        }
    }

    var reductionOp: ReductionOp? {
        switch self {
        case .sum: .sum
        case .mean: .mean
        case .min: .min
        case .max: .max
        default: nil
        }
    }
}

/// One parameter of an operation and how it is read.
struct ParameterSpec {
    enum Kind {
        /// A matrix; required.
        case matrix
        /// Any JSON number (the NaN/Infinity extension included); optional with a default.
        case number(default: Double)
        /// An integer ≥ 1 (an integral number such as `2.0` counts); required.
        case positiveInteger
        /// `null`, `0` or `1`; optional, default `null`.
        case axis
        /// `"minmax"` or `"l2"`; optional, default `"minmax"`.
        case normalizeMode
    }

    var name: String
    var kind: Kind

    init(_ name: String, _ kind: Kind) {
        self.name = name
        self.kind = kind
    }

    var isRequired: Bool {
        switch kind {
        case .matrix, .positiveInteger: true
        case .number, .axis, .normalizeMode: false
        }
    }
}
