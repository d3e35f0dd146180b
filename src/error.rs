//! The crate's error type.
//!
//! Every fallible public function returns [`Result<T>`](crate::Result). The
//! messages follow PyTorch's wording where PyTorch has a message for the same
//! mistake, and always name the offending value.

use std::fmt;

/// Everything a caller of `nninit` can get wrong.
///
/// The enum is `#[non_exhaustive]`: later versions add variants. Match on the
/// variants you handle and keep a wildcard arm; use `Display` for the message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The element count (or byte size) of a shape does not fit in memory
    /// addressing: `shape.iter().product()` overflows, or the bytes exceed
    /// `isize::MAX`.
    ShapeOverflow {
        /// The shape that was asked for.
        shape: Vec<usize>,
    },
    /// The allocator could not provide `bytes` bytes.
    OutOfMemory {
        /// Size of the failed allocation.
        bytes: usize,
    },
    /// A buffer of `len` elements cannot be viewed with `shape`.
    ShapeDataMismatch {
        /// The requested shape.
        shape: Vec<usize>,
        /// The number of elements supplied.
        len: usize,
    },
    /// Two tensors that must have the same shape do not.
    ShapeMismatch {
        /// The operation that compared them.
        op: &'static str,
        /// Shape of the tensor operated on.
        left: Vec<usize>,
        /// Shape of the other operand.
        right: Vec<usize>,
    },
    /// An index has the wrong number of coordinates for the tensor.
    IndexRank {
        /// Coordinates given.
        given: usize,
        /// Dimensions of the tensor.
        dims: usize,
    },
    /// A coordinate is past the end of its dimension.
    IndexOutOfRange {
        /// The coordinate.
        index: usize,
        /// The dimension it indexes.
        dim: usize,
        /// The size of that dimension.
        size: usize,
    },
    /// An operation needs at least one dimension and got a 0-d tensor.
    ZeroDim {
        /// The operation.
        op: &'static str,
    },
    /// A row range `start..end` is not inside `0..=size` or is reversed.
    RangeOutOfBounds {
        /// Start of the range.
        start: usize,
        /// End of the range.
        end: usize,
        /// Size of the dimension.
        size: usize,
    },
    /// A uniform bound is not a finite `f32` (PyTorch: `from is out of bounds for float`).
    UniformBoundOutOfRange {
        /// `"from"` or `"to"`.
        which: &'static str,
        /// The offending value.
        value: f64,
    },
    /// `from > to` in a uniform fill.
    UniformRange {
        /// Lower bound.
        from: f64,
        /// Upper bound.
        to: f64,
    },
    /// `to - from` overflows `f32`.
    UniformWidth {
        /// Lower bound.
        from: f64,
        /// Upper bound.
        to: f64,
    },
    /// The standard deviation of a normal fill is negative, NaN or infinite.
    NormalStd {
        /// The offending value.
        std: f64,
    },
    /// The mean of a normal fill is not a finite `f32`.
    NormalMean {
        /// The offending value.
        mean: f64,
    },
    /// Some normal sample would overflow `f32`: `|mean| + 6.56·std` is too large.
    NormalRange {
        /// The mean.
        mean: f64,
        /// The standard deviation.
        std: f64,
    },
    /// A fill value is not representable: a constant that overflows `f32`.
    ConstantOutOfRange {
        /// The offending value.
        value: f64,
    },
    /// A threshold for masking is NaN.
    Threshold {
        /// The offending value.
        threshold: f64,
    },
    // ---- init ----------------------------------------------------------
    /// [`calculate_gain`](crate::init::calculate_gain) or a parse of a name it
    /// does not know.
    UnsupportedNonlinearity {
        /// The name given.
        name: String,
    },
    /// A leaky-ReLU negative slope that is not a finite number.
    NegativeSlope {
        /// The slope given.
        value: f64,
    },
    /// Fans need at least two dimensions.
    FanDims {
        /// Dimensions of the tensor.
        dims: usize,
    },
    /// A fan mode other than `fan_in` or `fan_out`.
    UnsupportedMode {
        /// The mode given.
        mode: String,
    },
    /// A gain that is not a finite number.
    Gain {
        /// The gain given.
        gain: f64,
    },
    /// A shard `[offset, offset + len)` that does not fit in the full tensor.
    ShardOutOfRange {
        /// First element of the shard.
        offset: u64,
        /// Elements in the shard.
        len: usize,
        /// Elements in the full tensor.
        numel: usize,
    },
    /// An initializer that works only on some numbers of dimensions
    /// ([`eye_`](crate::init::eye_): 2, [`dirac_`](crate::init::dirac_): 3, 4
    /// or 5, [`orthogonal_`](crate::init::orthogonal_): 2 or more,
    /// [`sparse_`](crate::init::sparse_): 2). The message is PyTorch's, e.g.
    /// `Only tensors with 2 dimensions are supported`.
    InitDims {
        /// The initializer (`"eye_"`, …).
        init: &'static str,
        /// The supported numbers of dimensions as PyTorch words them:
        /// `"2"`, `"3, 4, or 5"`, `"2 or more"`.
        supported: &'static str,
        /// Dimensions of the tensor given.
        dims: usize,
    },
    /// [`dirac_`](crate::init::dirac_) with `groups == 0`.
    DiracGroups {
        /// The groups given.
        groups: usize,
    },
    /// [`dirac_`](crate::init::dirac_) on a tensor whose dimension 0 is not a
    /// multiple of `groups` (PyTorch's message: `dim 0 must be divisible by
    /// groups`).
    DiracDivisible {
        /// Size of dimension 0.
        dim0: usize,
        /// The groups given.
        groups: usize,
    },
    /// [`sparse_`](crate::init::sparse_) with a sparsity outside `[0, 1]` or
    /// NaN.
    Sparsity {
        /// The sparsity given.
        sparsity: f64,
    },
    /// [`Init::fill_shard`](crate::init::Init::fill_shard) of an initializer
    /// whose values depend on the whole tensor (orthogonal, sparse) or that is
    /// defined only for whole tensors (eye, dirac).
    NotShardable {
        /// The initializer (`"orthogonal_"`, …).
        init: &'static str,
    },
    /// The standard deviation of a truncated normal is not positive, is
    /// NaN or infinite, or does not fit in `f32`.
    TruncNormalStd {
        /// The offending value.
        std: f64,
    },
    /// The mean of a truncated normal is not a finite `f32`.
    TruncNormalMean {
        /// The offending value.
        mean: f64,
    },
    /// A bound of a truncated normal is NaN.
    TruncNormalBound {
        /// `"a"` or `"b"`.
        which: &'static str,
        /// The offending value.
        value: f64,
    },
    /// `a >= b` in a truncated normal.
    TruncNormalRange {
        /// Lower bound.
        a: f64,
        /// Upper bound.
        b: f64,
    },
    /// No `f32` lies in `[a, b]` (the window is narrower than the float
    /// spacing there, or outside the `f32` range).
    TruncNormalNoFloat {
        /// Lower bound.
        a: f64,
        /// Upper bound.
        b: f64,
    },
    /// The window lies entirely more than 37 standard deviations from the
    /// mean (its probability is below `Φ(−37) ≈ 6e-300`), or samples could
    /// overflow `f32`.
    TruncNormalWindow {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
        /// Lower bound.
        a: f64,
        /// Upper bound.
        b: f64,
    },
    /// A window PyTorch's `p <= 0.3` rejection sampler of `trunc_normal_`
    /// cannot sample in `f32` (its acceptance test overflows, so PyTorch
    /// would loop forever); torch-exact generators only.
    TorchTruncNormalWindow {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
        /// Lower bound.
        a: f64,
        /// Upper bound.
        b: f64,
    },
    // ---- nn ------------------------------------------------------------
    /// A matrix product whose inner dimensions differ (PyTorch's text).
    MatmulShape {
        /// `[rows, cols]` of the left operand (`mat1`).
        left: [usize; 2],
        /// `[rows, cols]` of the right operand (`mat2`).
        right: [usize; 2],
    },
    /// The output of a GEMM is not `A.rows × B.cols`.
    GemmOutputShape {
        /// `[rows, cols]` the product has.
        expected: [usize; 2],
        /// `[rows, cols]` of the output given.
        found: [usize; 2],
    },
    /// A strided matrix view reaches outside its buffer.
    MatrixView {
        /// Rows of the view.
        rows: usize,
        /// Columns of the view.
        cols: usize,
        /// Distance between rows, in elements.
        row_stride: usize,
        /// Distance between columns, in elements.
        col_stride: usize,
        /// Elements in the buffer.
        len: usize,
    },
    /// A matrix operation was given a tensor that is not 2-D.
    MatrixDims {
        /// The tensor's shape.
        shape: Vec<usize>,
    },
    /// `linear` was given a 0-d input or a weight that is not 2-D.
    LinearDims {
        /// Dimensions of the input.
        input: usize,
        /// Dimensions of the weight.
        weight: usize,
    },
    /// A bias whose shape is not `[out_features]`.
    BiasShape {
        /// `out_features` of the weight.
        expected: usize,
        /// The bias's shape.
        found: Vec<usize>,
    },
    /// A parameter of a lazy module was used before its shape was inferred.
    UninitializedParameter,
    /// A child module name that PyTorch's `add_module` rejects.
    ModuleName {
        /// The name given.
        name: String,
        /// Why it is rejected (the message's wording).
        problem: ModuleNameProblem,
    },
    /// A child index past the end of a container.
    ChildIndex {
        /// The index given.
        index: usize,
        /// Children in the container.
        len: usize,
    },
    /// A child or module is not of the type asked for.
    ModuleType {
        /// The module's path (`0.1`), or empty for the module itself.
        path: String,
        /// The type asked for.
        expected: &'static str,
        /// The module's type name.
        found: String,
    },
    /// `load_state_dict` found keys missing, unexpected keys, or shape
    /// mismatches (PyTorch's text, one line per problem).
    LoadStateDict {
        /// The module's type name (`Sequential`).
        module: String,
        /// Keys of the model absent from the state dict (strict mode only).
        missing: Vec<String>,
        /// Keys of the state dict the model does not have (strict mode only).
        unexpected: Vec<String>,
        /// `(key, shape in the state dict, shape in the model)`.
        size_mismatch: Vec<(String, Vec<usize>, Vec<usize>)>,
    },
    /// `backward` was called without a training-mode `forward` before it.
    BackwardBeforeForward {
        /// The module's type name.
        module: String,
    },
    /// A module type has no backward (a user module that does not implement it).
    BackwardUnsupported {
        /// The module's type name.
        module: String,
    },
    /// A gradient whose shape differs from the tensor it is the gradient of.
    GradShape {
        /// What the gradient is for (`grad_output of Linear`).
        what: String,
        /// The expected shape.
        expected: Vec<usize>,
        /// The gradient's shape.
        found: Vec<usize>,
    },
    /// A bad optimizer hyper-parameter: negative, or not finite (PyTorch's
    /// text, `Invalid learning rate: -0.1`).
    Hyperparameter {
        /// The parameter as PyTorch's message names it (`learning rate`,
        /// `momentum value`, `weight_decay value`, `dampening value`).
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// `nesterov` without momentum, or with dampening.
    Nesterov,
    // ---- io ------------------------------------------------------------
    /// A file or byte string is not in the expected format.
    Format {
        /// The format (`npy`, `safetensors`).
        format: &'static str,
        /// What is wrong, naming the offending value.
        reason: String,
    },
    /// An I/O operation failed.
    Io {
        /// The kind of failure.
        kind: std::io::ErrorKind,
        /// The operating system's message.
        message: String,
    },
    /// A kernel instruction set was requested that this CPU does not have.
    IsaUnsupported {
        /// Name of the instruction set.
        isa: &'static str,
    },
    /// A tensor or buffer of one dtype was used where another is needed.
    Dtype {
        /// What was used (`this buffer`, `indices`).
        what: String,
        /// The dtype needed.
        expected: &'static str,
        /// The dtype found.
        found: &'static str,
    },
    // ---- layers (conv, norm, pool, embedding, dropout) ---------------------
    /// An input of the wrong number of dimensions for a layer.
    InputDims {
        /// PyTorch's wording of what was expected (`3D (unbatched) or 4D
        /// (batched) input to conv2d`).
        expected: &'static str,
        /// The input's shape.
        shape: Vec<usize>,
    },
    /// A convolution's input has the wrong channel count.
    ConvChannels {
        /// Groups of the convolution.
        groups: usize,
        /// Shape of the weight.
        weight: Vec<usize>,
        /// Shape of the input.
        input: Vec<usize>,
        /// Channels the weight expects.
        expected: usize,
    },
    /// A (dilated) kernel larger than the padded input.
    KernelTooLarge {
        /// Padded input size per channel.
        padded: Vec<usize>,
        /// Effective (dilated) kernel size.
        kernel: Vec<usize>,
    },
    /// A bad option of a layer, with PyTorch's message
    /// (`groups must be a positive integer`,
    /// `padding='same' is not supported for strided convolutions`, ...).
    LayerOption {
        /// The message.
        message: &'static str,
    },
    /// A padding string other than `same` and `valid`.
    PaddingString {
        /// What was given.
        padding: String,
    },
    /// A batch normalization's input has the wrong number of dimensions.
    NormInputDims {
        /// What the layer takes (`4D`, `2D or 3D`).
        expected: &'static str,
        /// The input's dimensions.
        got: usize,
    },
    /// A normalization layer's input has the wrong number of features.
    NormFeatures {
        /// Features of the input.
        got: usize,
        /// Features of the layer.
        expected: usize,
    },
    /// Training-mode batch statistics from a single value per channel.
    SingleValuePerChannel {
        /// The input's shape.
        shape: Vec<usize>,
    },
    /// A `LayerNorm` input whose trailing dimensions are not
    /// `normalized_shape`.
    LayerNormShape {
        /// The layer's `normalized_shape`.
        normalized: Vec<usize>,
        /// The input's shape.
        input: Vec<usize>,
    },
    /// An index of an `Embedding` outside `0..num_embeddings`.
    EmbeddingIndex {
        /// The index.
        index: i64,
        /// Rows of the table.
        num_embeddings: usize,
    },
    /// A `padding_idx` outside `-num_embeddings..num_embeddings`.
    PaddingIdx {
        /// The index.
        padding_idx: i64,
        /// Rows of the table.
        num_embeddings: usize,
    },
    /// A dropout probability outside `[0, 1]`.
    DropoutP {
        /// The probability.
        p: f64,
    },
    /// Pooling padding larger than half the effective kernel.
    PoolPadding {
        /// The padding.
        pad: usize,
        /// The kernel size.
        kernel: usize,
        /// The dilation.
        dilation: usize,
    },
    /// A pooling output with a zero-sized dimension.
    PoolOutputTooSmall {
        /// Input size (channels, height, width).
        input: [usize; 3],
        /// Output size.
        output: [usize; 3],
    },
    /// A dimension index outside `[-dims, dims - 1]`.
    DimOutOfRange {
        /// The dimension given.
        dim: isize,
        /// The number of dimensions.
        dims: usize,
    },
    /// A `GELU` approximation other than `none` and `tanh`.
    GeluApproximate {
        /// What was given.
        approximate: String,
    },
    /// A module without a forward (a checkpoint plan) was run.
    NoForward {
        /// The module's type.
        module: &'static str,
    },
    /// A checkpoint directory that is incomplete or inconsistent.
    Checkpoint {
        /// The file concerned.
        file: String,
        /// What is wrong, naming the tensor where there is one.
        reason: String,
    },
    /// A rank and world size that do not make sense.
    Rank {
        /// The rank as given.
        rank: String,
        /// The world size as given.
        size: String,
    },
    // ---- torch-exact generator --------------------------------------------
    /// Bytes that are not a valid PyTorch CPU generator state.
    RngState {
        /// What is wrong (PyTorch's wording where it has one).
        reason: String,
    },
    /// A module was built on meta from a torch-exact generator, whose
    /// serial stream cannot be deferred.
    MetaTorchGenerator,
    /// A parameter on meta was used before it was materialized.
    MetaParameter {
        /// Its name, when known.
        name: String,
    },
    /// An operation that needs a torch-exact generator was given, or found
    /// as the global generator, a counter-based one.
    NotTorchGenerator {
        /// The operation.
        op: &'static str,
    },
    /// A tensor converted to an `ndarray` array of a fixed number of
    /// dimensions (`Array2<f32>`, …) has another number of dimensions
    /// (feature `ndarray`).
    ArrayDims {
        /// The dimensions of the array asked for.
        expected: usize,
        /// The shape of the tensor.
        shape: Vec<usize>,
    },
}

/// `Result` with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShapeOverflow { shape } => {
                write!(f, "shape {shape:?} has too many elements to allocate")
            }
            Error::OutOfMemory { bytes } => {
                write!(f, "not enough memory: you tried to allocate {bytes} bytes")
            }
            Error::ShapeDataMismatch { shape, len } => {
                write!(f, "shape '{shape:?}' is invalid for input of size {len}")
            }
            Error::ShapeMismatch { op, left, right } => write!(
                f,
                "{op}: the shape of the other tensor {right:?} must match the shape {left:?}"
            ),
            Error::IndexRank { given, dims } => write!(
                f,
                "too many or too few indices: {given} given for a tensor of dimension {dims}"
            ),
            Error::IndexOutOfRange { index, dim, size } => write!(
                f,
                "index {index} is out of bounds for dimension {dim} with size {size}"
            ),
            Error::ZeroDim { op } => write!(f, "{op}: a 0-d tensor has no dimension to index"),
            Error::RangeOutOfBounds { start, end, size } => write!(
                f,
                "range {start}..{end} is out of bounds for dimension 0 with size {size}"
            ),
            Error::UniformBoundOutOfRange { which, value } => write!(
                f,
                "{which} is out of bounds for float: {which}={}",
                fmt_g(*value)
            ),
            Error::UniformRange { from, to } => write!(
                f,
                "uniform_ expects to return a [from, to) range, but found from={} > to={}",
                fmt_g(*from),
                fmt_g(*to)
            ),
            Error::UniformWidth { from, to } => write!(
                f,
                "uniform_ expects to-from <= std::numeric_limits<float>::max(), but found to={} \
                 and from={} which result in to-from to exceed the limit",
                fmt_g(*to),
                fmt_g(*from)
            ),
            Error::NormalStd { std } => write!(
                f,
                "normal expects std >= 0.0 and finite, but found std {}",
                fmt_g(*std)
            ),
            Error::NormalMean { mean } => write!(
                f,
                "normal expects a finite mean that fits in float, but found mean {}",
                fmt_g(*mean)
            ),
            Error::NormalRange { mean, std } => write!(
                f,
                "normal expects |mean| + 6.56*std to fit in float, but found mean {} and std {}",
                fmt_g(*mean),
                fmt_g(*std)
            ),
            Error::ConstantOutOfRange { value } => write!(
                f,
                "value cannot be converted to type float without overflow: {}",
                fmt_g(*value)
            ),
            Error::Threshold { threshold } => write!(
                f,
                "threshold mask expects a threshold that is not NaN, but found threshold {}",
                fmt_g(*threshold)
            ),
            // ---- init ----
            Error::UnsupportedNonlinearity { name } => write!(f, "Unsupported nonlinearity {name}"),
            Error::NegativeSlope { value } => {
                write!(f, "negative_slope {} not a valid number", fmt_g(*value))
            }
            Error::FanDims { .. } => f.write_str(
                "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions",
            ),
            Error::UnsupportedMode { mode } => write!(
                f,
                "Mode {mode} not supported, please use one of fan_in, fan_out"
            ),
            Error::Gain { gain } => write!(
                f,
                "gain must be a finite number, but found gain {}",
                fmt_g(*gain)
            ),
            Error::ShardOutOfRange { offset, len, numel } => write!(
                f,
                "shard [{offset}, {}) is outside a tensor of {numel} elements",
                (*offset as u128) + (*len as u128)
            ),
            Error::InitDims { supported, .. } => {
                write!(f, "Only tensors with {supported} dimensions are supported")
            }
            Error::DiracGroups { groups } => {
                write!(f, "dirac_ expects groups >= 1, but found groups {groups}")
            }
            Error::DiracDivisible { .. } => f.write_str("dim 0 must be divisible by groups"),
            Error::Sparsity { sparsity } => write!(
                f,
                "sparse_ expects a sparsity in [0, 1], but found sparsity {}",
                fmt_g(*sparsity)
            ),
            Error::NotShardable { init } => write!(
                f,
                "{init} cannot initialize a shard: it needs the whole tensor"
            ),
            Error::TruncNormalStd { std } => write!(
                f,
                "trunc_normal_ expects std > 0.0 and finite, but found std {}",
                fmt_g(*std)
            ),
            Error::TruncNormalMean { mean } => write!(
                f,
                "trunc_normal_ expects a finite mean that fits in float, but found mean {}",
                fmt_g(*mean)
            ),
            Error::TruncNormalBound { which, value } => write!(
                f,
                "trunc_normal_ expects bounds that are not NaN, but found {which}={}",
                fmt_g(*value)
            ),
            Error::TruncNormalRange { a, b } => write!(
                f,
                "trunc_normal_ expects a < b, but found a={} >= b={}",
                fmt_g(*a),
                fmt_g(*b)
            ),
            Error::TruncNormalNoFloat { a, b } => write!(
                f,
                "trunc_normal_ expects [a, b] to contain a float, but found a={} and b={}",
                fmt_g(*a),
                fmt_g(*b)
            ),
            Error::TruncNormalWindow { mean, std, a, b } => write!(
                f,
                "trunc_normal_ expects [a, b] to reach within 37 std of the mean and its samples \
                 to fit in float, but found a={} and b={} with mean {} and std {}",
                fmt_g(*a),
                fmt_g(*b),
                fmt_g(*mean),
                fmt_g(*std)
            ),
            Error::TorchTruncNormalWindow { mean, std, a, b } => write!(
                f,
                "trunc_normal_ (torch-exact) cannot sample [a, b] = [{}, {}] with mean {} and std {}: \
                 PyTorch's rejection test overflows float there and would never accept a value",
                fmt_g(*a),
                fmt_g(*b),
                fmt_g(*mean),
                fmt_g(*std)
            ),
            // ---- nn ----
            // ---- io ----
            Error::MatmulShape { left, right } => write!(
                f,
                "mat1 and mat2 shapes cannot be multiplied ({}x{} and {}x{})",
                left[0], left[1], right[0], right[1]
            ),
            Error::GemmOutputShape { expected, found } => write!(
                f,
                "gemm output must be {}x{}, but found {}x{}",
                expected[0], expected[1], found[0], found[1]
            ),
            Error::MatrixView {
                rows,
                cols,
                row_stride,
                col_stride,
                len,
            } => write!(
                f,
                "a {rows}x{cols} matrix view with strides ({row_stride}, {col_stride}) does not \
                 fit in a buffer of {len} elements"
            ),
            Error::MatrixDims { shape } => {
                write!(f, "expected a 2-D tensor, but found shape {shape:?}")
            }
            Error::LinearDims { input, weight } => write!(
                f,
                "both arguments to linear need to be at least 1D, but they are {input}D and {weight}D"
            ),
            Error::BiasShape { expected, found } => write!(
                f,
                "bias must have shape [{expected}] to match the weight's out_features, but found \
                 shape {found:?}"
            ),
            Error::UninitializedParameter => f.write_str(
                "Can't access an uninitialized parameter. Run a forward pass of the lazy module \
                 first to infer its shape",
            ),
            Error::ModuleName { name, problem } => match problem {
                ModuleNameProblem::Empty => f.write_str("module name can't be empty string \"\""),
                ModuleNameProblem::Dot => {
                    write!(f, "module name can't contain \".\", got: {name}")
                }
                ModuleNameProblem::Duplicate => write!(f, "attribute '{name}' already exists"),
            },
            Error::ChildIndex { index, len } => {
                write!(
                    f,
                    "index {index} is out of range for a module with {len} children"
                )
            }
            Error::ModuleType {
                path,
                expected,
                found,
            } => {
                if path.is_empty() {
                    write!(f, "module is a {found}, not a {expected}")
                } else {
                    write!(f, "module '{path}' is a {found}, not a {expected}")
                }
            }
            Error::LoadStateDict {
                module,
                missing,
                unexpected,
                size_mismatch,
            } => {
                let quote = |keys: &[String]| {
                    keys.iter()
                        .map(|k| format!("\"{k}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let mut lines = Vec::new();
                if !missing.is_empty() {
                    lines.push(format!(
                        "Missing key(s) in state_dict: {}. ",
                        quote(missing)
                    ));
                }
                if !unexpected.is_empty() {
                    lines.push(format!(
                        "Unexpected key(s) in state_dict: {}. ",
                        quote(unexpected)
                    ));
                }
                for (key, from, to) in size_mismatch {
                    lines.push(format!(
                        "size mismatch for {key}: copying a param with shape {} from checkpoint, \
                         the shape in current model is {}.",
                        torch_size(from),
                        torch_size(to)
                    ));
                }
                write!(
                    f,
                    "Error(s) in loading state_dict for {module}:\n\t{}",
                    lines.join("\n\t")
                )
            }
            Error::BackwardBeforeForward { module } => write!(
                f,
                "{module}.backward called without a training forward before it (call train(true) \
                 and forward first)"
            ),
            Error::BackwardUnsupported { module } => {
                write!(f, "{module} does not implement backward")
            }
            Error::GradShape {
                what,
                expected,
                found,
            } => write!(
                f,
                "{what} must have shape {expected:?}, but found shape {found:?}"
            ),
            Error::Hyperparameter { name, value } => {
                write!(f, "Invalid {name}: {}", fmt_g(*value))
            }
            Error::Nesterov => {
                f.write_str("Nesterov momentum requires a momentum and zero dampening")
            }
            Error::Format { format, reason } => write!(f, "invalid {format} data: {reason}"),
            Error::Io { message, .. } => write!(f, "{message}"),
            Error::IsaUnsupported { isa } => {
                write!(f, "the instruction set {isa} is not supported by this CPU")
            }
            Error::RngState { reason } => f.write_str(reason),
            Error::Checkpoint { file, reason } => write!(f, "checkpoint file {file}: {reason}"),
            Error::NoForward { module } => {
                write!(
                    f,
                    "{module} has no forward: it describes a checkpoint to write"
                )
            }
            Error::Rank { rank, size } => write!(
                f,
                "rank {rank} of world size {size}: expected integers with rank < size"
            ),
            Error::InputDims { expected, shape } => {
                write!(f, "Expected {expected}, but got input of size: {shape:?}")
            }
            Error::ConvChannels {
                groups,
                weight,
                input,
                expected,
            } => write!(
                f,
                "Given groups={groups}, weight of size {weight:?}, expected input{input:?} to have \
                 {expected} channels, but got {} channels instead",
                input.get(1).copied().unwrap_or(0)
            ),
            Error::KernelTooLarge { padded, kernel } => {
                let x = |v: &[usize]| {
                    v.iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(" x ")
                };
                write!(
                    f,
                    "Calculated padded input size per channel: ({}). Kernel size: ({}). Kernel size \
                     can't be greater than actual input size",
                    x(padded),
                    x(kernel)
                )
            }
            Error::LayerOption { message } => f.write_str(message),
            Error::PaddingString { padding } => write!(
                f,
                "Invalid padding string '{padding}', should be one of {{'valid', 'same'}}"
            ),
            Error::NormInputDims { expected, got } => {
                write!(f, "expected {expected} input (got {got}D input)")
            }
            Error::NormFeatures { got, expected } => write!(
                f,
                "running_mean should contain {got} elements not {expected}"
            ),
            Error::SingleValuePerChannel { shape } => write!(
                f,
                "Expected more than 1 value per channel when training, got input size {}",
                torch_size(shape)
            ),
            Error::LayerNormShape { normalized, input } => {
                let star: Vec<String> = std::iter::once("*".to_string())
                    .chain(normalized.iter().map(usize::to_string))
                    .collect();
                write!(
                    f,
                    "Given normalized_shape={normalized:?}, expected input with shape [{}], but got \
                     input of size{input:?}",
                    star.join(", ")
                )
            }
            Error::EmbeddingIndex {
                index,
                num_embeddings,
            } => write!(
                f,
                "index out of range in self (index {index}, num_embeddings {num_embeddings})"
            ),
            Error::PaddingIdx {
                padding_idx,
                num_embeddings,
            } => write!(
                f,
                "Padding_idx must be within num_embeddings (padding_idx {padding_idx}, \
                 num_embeddings {num_embeddings})"
            ),
            Error::DropoutP { p } => write!(
                f,
                "dropout probability has to be between 0 and 1, but got {}",
                fmt_g(*p)
            ),
            Error::PoolPadding {
                pad,
                kernel,
                dilation,
            } => write!(
                f,
                "pad should be at most half of effective kernel size, but got pad={pad}, \
                 kernel_size={kernel} and dilation={dilation}"
            ),
            Error::PoolOutputTooSmall { input, output } => write!(
                f,
                "Given input size: ({}x{}x{}). Calculated output size: ({}x{}x{}). Output size is \
                 too small",
                input[0], input[1], input[2], output[0], output[1], output[2]
            ),
            Error::DimOutOfRange { dim, dims } => {
                let d = (*dims).max(1) as isize;
                write!(
                    f,
                    "Dimension out of range (expected to be in range of [{}, {}], but got {dim})",
                    -d,
                    d - 1
                )
            }
            Error::GeluApproximate { approximate } => write!(
                f,
                "approximate argument must be either none or tanh, but got {approximate:?}"
            ),
            Error::Dtype {
                what,
                expected,
                found,
            } => write!(f, "{what} has dtype {found}, expected {expected}"),
            Error::MetaTorchGenerator => f.write_str(
                "building on meta needs a counter-based generator: a torch-exact generator's \
                 stream is serial and cannot be deferred",
            ),
            Error::MetaParameter { name } => write!(
                f,
                "parameter {name} is on meta: materialize it (nninit::nn::meta::materialize) or \
                 load a state dict into it first"
            ),
            Error::NotTorchGenerator { op } => write!(
                f,
                "{op} needs a torch-exact generator, but the generator is counter-based \
                 (use nninit::torch::manual_seed or Generator::torch)"
            ),
            Error::ArrayDims { expected, shape } => write!(
                f,
                "cannot convert a tensor of shape {shape:?} ({} dimensions) to an array of \
                 {expected} dimensions",
                shape.len()
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

/// Formats a double the way C++'s `std::ostream` does by default (`%g` with
/// six significant digits), which is how PyTorch's C++ checks print numbers:
/// `2`, `0.5`, `-1`, `1e-05`, `3e+38`, `nan`, `inf`.
/// Why a child module name is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleNameProblem {
    /// The name is empty.
    Empty,
    /// The name contains a `.` (which separates path components).
    Dot,
    /// A child of that name exists already.
    Duplicate,
}

/// `torch.Size([8, 4])`, as PyTorch prints shapes in its messages.
fn torch_size(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("torch.Size([{}])", dims.join(", "))
}

pub(crate) fn fmt_g(v: f64) -> String {
    const PRECISION: i32 = 6;
    if v.is_nan() {
        return "nan".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Round to six significant digits first: the exponent after rounding
    // decides between fixed and scientific notation, as in C.
    let sci = format!("{:.*e}", (PRECISION - 1) as usize, v);
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` output has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    if !(-4..PRECISION).contains(&exp) {
        let mantissa = trim_fraction_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (PRECISION - 1 - exp).max(0) as usize;
        trim_fraction_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn trim_fraction_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmt_g_matches_cpp_ostream() {
        let cases: &[(f64, &str)] = &[
            (2.0, "2"),
            (-1.0, "-1"),
            (0.5, "0.5"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (3e38, "3e+38"),
            (123456.0, "123456"),
            (1234567.0, "1.23457e+06"),
            (999999.5, "1e+06"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0 / 3.0, "0.333333"),
            (f32::MAX as f64, "3.40282e+38"),
        ];
        for &(v, want) in cases {
            assert_eq!(fmt_g(v), want, "fmt_g({v:?})");
        }
    }

    #[test]
    fn messages_name_the_value() {
        let e = Error::UniformRange { from: 2.0, to: 1.0 };
        assert_eq!(
            e.to_string(),
            "uniform_ expects to return a [from, to) range, but found from=2 > to=1"
        );
        let e = Error::NormalStd { std: -1.0 };
        assert_eq!(
            e.to_string(),
            "normal expects std >= 0.0 and finite, but found std -1"
        );
    }
}
