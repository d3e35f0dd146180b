//! The crate's error type.
//!
//! Every fallible public function returns [`Result<T>`](crate::Result). The
//! messages follow PyTorch's wording where PyTorch has a message for the same
//! mistake, and always name the offending value.

/// Everything a caller of `nninit` can get wrong.
///
/// The enum is `#[non_exhaustive]`: later versions add variants. Match on the
/// variants you handle and keep a wildcard arm; use `Display` for the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The element count (or byte size) of a shape does not fit in memory
    /// addressing: `shape.iter().product()` overflows, or the bytes exceed
    /// `isize::MAX`.
    #[error("shape {shape:?} has too many elements to allocate")]
    ShapeOverflow {
        /// The shape that was asked for.
        shape: Vec<usize>,
    },
    /// The allocator could not provide `bytes` bytes.
    #[error("not enough memory: you tried to allocate {bytes} bytes")]
    OutOfMemory {
        /// Size of the failed allocation.
        bytes: usize,
    },
    /// A buffer of `len` elements cannot be viewed with `shape`.
    #[error("shape '{shape:?}' is invalid for input of size {len}")]
    ShapeDataMismatch {
        /// The requested shape.
        shape: Vec<usize>,
        /// The number of elements supplied.
        len: usize,
    },
    /// Two tensors that must have the same shape do not.
    #[error("{op}: the shape of the other tensor {right:?} must match the shape {left:?}")]
    ShapeMismatch {
        /// The operation that compared them.
        op: &'static str,
        /// Shape of the tensor operated on.
        left: Vec<usize>,
        /// Shape of the other operand.
        right: Vec<usize>,
    },
    /// An index has the wrong number of coordinates for the tensor.
    #[error("too many or too few indices: {given} given for a tensor of dimension {dims}")]
    IndexRank {
        /// Coordinates given.
        given: usize,
        /// Dimensions of the tensor.
        dims: usize,
    },
    /// A coordinate is past the end of its dimension.
    #[error("index {index} is out of bounds for dimension {dim} with size {size}")]
    IndexOutOfRange {
        /// The coordinate.
        index: usize,
        /// The dimension it indexes.
        dim: usize,
        /// The size of that dimension.
        size: usize,
    },
    /// An operation needs at least one dimension and got a 0-d tensor.
    #[error("{op}: a 0-d tensor has no dimension to index")]
    ZeroDim {
        /// The operation.
        op: &'static str,
    },
    /// A row range `start..end` is not inside `0..=size` or is reversed.
    #[error("range {start}..{end} is out of bounds for dimension 0 with size {size}")]
    RangeOutOfBounds {
        /// Start of the range.
        start: usize,
        /// End of the range.
        end: usize,
        /// Size of the dimension.
        size: usize,
    },
    /// A uniform bound is not a finite `f32` (PyTorch: `from is out of bounds for float`).
    #[error("{which} is out of bounds for float: {which}={}", fmt_g(*.value))]
    UniformBoundOutOfRange {
        /// `"from"` or `"to"`.
        which: &'static str,
        /// The offending value.
        value: f64,
    },
    /// `from > to` in a uniform fill.
    #[error("uniform_ expects to return a [from, to) range, but found from={} > to={}", fmt_g(*.from), fmt_g(*.to))]
    UniformRange {
        /// Lower bound.
        from: f64,
        /// Upper bound.
        to: f64,
    },
    /// `to - from` overflows `f32`.
    #[error("uniform_ expects to-from <= std::numeric_limits<float>::max(), but found to={} and from={} which result in to-from to exceed the limit", fmt_g(*.to), fmt_g(*.from))]
    UniformWidth {
        /// Lower bound.
        from: f64,
        /// Upper bound.
        to: f64,
    },
    /// The standard deviation of a normal fill is negative, NaN or infinite.
    #[error("normal expects std >= 0.0 and finite, but found std {}", fmt_g(*.std))]
    NormalStd {
        /// The offending value.
        std: f64,
    },
    /// The mean of a normal fill is not a finite `f32`.
    #[error("normal expects a finite mean that fits in float, but found mean {}", fmt_g(*.mean))]
    NormalMean {
        /// The offending value.
        mean: f64,
    },
    /// Some normal sample would overflow `f32`: `|mean| + 6.56·std` is too large.
    #[error("normal expects |mean| + 6.56*std to fit in float, but found mean {} and std {}", fmt_g(*.mean), fmt_g(*.std))]
    NormalRange {
        /// The mean.
        mean: f64,
        /// The standard deviation.
        std: f64,
    },
    /// A fill value is not representable: a constant that overflows `f32`.
    #[error("value cannot be converted to type float without overflow: {}", fmt_g(*.value))]
    ConstantOutOfRange {
        /// The offending value.
        value: f64,
    },
    /// A threshold for masking is NaN.
    #[error("threshold mask expects a threshold that is not NaN, but found threshold {}", fmt_g(*.threshold))]
    Threshold {
        /// The offending value.
        threshold: f64,
    },
    // ---- init ----------------------------------------------------------
    /// [`calculate_gain`](crate::init::calculate_gain) or a parse of a name it
    /// does not know.
    #[error("Unsupported nonlinearity {name}")]
    UnsupportedNonlinearity {
        /// The name given.
        name: String,
    },
    /// A leaky-ReLU negative slope that is not a finite number.
    #[error("negative_slope {} not a valid number", fmt_g(*.value))]
    NegativeSlope {
        /// The slope given.
        value: f64,
    },
    /// Fans need at least two dimensions.
    #[error("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")]
    FanDims {
        /// Dimensions of the tensor.
        dims: usize,
    },
    /// A fan mode other than `fan_in` or `fan_out`.
    #[error("Mode {mode} not supported, please use one of fan_in, fan_out")]
    UnsupportedMode {
        /// The mode given.
        mode: String,
    },
    /// A gain that is not a finite number.
    #[error("gain must be a finite number, but found gain {}", fmt_g(*.gain))]
    Gain {
        /// The gain given.
        gain: f64,
    },
    /// A shard `[offset, offset + len)` that does not fit in the full tensor.
    #[error("shard [{offset}, {}) is outside a tensor of {numel} elements", (*.offset as u128) + (*.len as u128))]
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
    #[error("Only tensors with {supported} dimensions are supported")]
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
    #[error("dirac_ expects groups >= 1, but found groups {groups}")]
    DiracGroups {
        /// The groups given.
        groups: usize,
    },
    /// [`dirac_`](crate::init::dirac_) on a tensor whose dimension 0 is not a
    /// multiple of `groups` (PyTorch's message: `dim 0 must be divisible by
    /// groups`).
    #[error("dim 0 must be divisible by groups")]
    DiracDivisible {
        /// Size of dimension 0.
        dim0: usize,
        /// The groups given.
        groups: usize,
    },
    /// [`sparse_`](crate::init::sparse_) with a sparsity outside `[0, 1]` or
    /// NaN.
    #[error("sparse_ expects a sparsity in [0, 1], but found sparsity {}", fmt_g(*.sparsity))]
    Sparsity {
        /// The sparsity given.
        sparsity: f64,
    },
    /// [`Init::fill_shard`](crate::init::Init::fill_shard) of an initializer
    /// whose values depend on the whole tensor (orthogonal, sparse) or that is
    /// defined only for whole tensors (eye, dirac).
    #[error("{init} cannot initialize a shard: it needs the whole tensor")]
    NotShardable {
        /// The initializer (`"orthogonal_"`, …).
        init: &'static str,
    },
    /// The standard deviation of a truncated normal is not positive, is
    /// NaN or infinite, or does not fit in `f32`.
    #[error("trunc_normal_ expects std > 0.0 and finite, but found std {}", fmt_g(*.std))]
    TruncNormalStd {
        /// The offending value.
        std: f64,
    },
    /// The mean of a truncated normal is not a finite `f32`.
    #[error("trunc_normal_ expects a finite mean that fits in float, but found mean {}", fmt_g(*.mean))]
    TruncNormalMean {
        /// The offending value.
        mean: f64,
    },
    /// A bound of a truncated normal is NaN.
    #[error("trunc_normal_ expects bounds that are not NaN, but found {which}={}", fmt_g(*.value))]
    TruncNormalBound {
        /// `"a"` or `"b"`.
        which: &'static str,
        /// The offending value.
        value: f64,
    },
    /// `a >= b` in a truncated normal.
    #[error("trunc_normal_ expects a < b, but found a={} >= b={}", fmt_g(*.a), fmt_g(*.b))]
    TruncNormalRange {
        /// Lower bound.
        a: f64,
        /// Upper bound.
        b: f64,
    },
    /// No `f32` lies in `[a, b]` (the window is narrower than the float
    /// spacing there, or outside the `f32` range).
    #[error("trunc_normal_ expects [a, b] to contain a float, but found a={} and b={}", fmt_g(*.a), fmt_g(*.b))]
    TruncNormalNoFloat {
        /// Lower bound.
        a: f64,
        /// Upper bound.
        b: f64,
    },
    /// The window lies entirely more than 37 standard deviations from the
    /// mean (its probability is below `Φ(−37) ≈ 6e-300`), or samples could
    /// overflow `f32`.
    #[error("trunc_normal_ expects [a, b] to reach within 37 std of the mean and its samples to fit in float, but found a={} and b={} with mean {} and std {}", fmt_g(*.a), fmt_g(*.b), fmt_g(*.mean), fmt_g(*.std))]
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
    #[error("trunc_normal_ (torch-exact) cannot sample [a, b] = [{}, {}] with mean {} and std {}: PyTorch's rejection test overflows float there and would never accept a value", fmt_g(*.a), fmt_g(*.b), fmt_g(*.mean), fmt_g(*.std))]
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
    #[error("mat1 and mat2 shapes cannot be multiplied ({}x{} and {}x{})", .left[0], .left[1], .right[0], .right[1])]
    MatmulShape {
        /// `[rows, cols]` of the left operand (`mat1`).
        left: [usize; 2],
        /// `[rows, cols]` of the right operand (`mat2`).
        right: [usize; 2],
    },
    /// The output of a GEMM is not `A.rows × B.cols`.
    #[error("gemm output must be {}x{}, but found {}x{}", .expected[0], .expected[1], .found[0], .found[1])]
    GemmOutputShape {
        /// `[rows, cols]` the product has.
        expected: [usize; 2],
        /// `[rows, cols]` of the output given.
        found: [usize; 2],
    },
    /// A strided matrix view reaches outside its buffer.
    #[error(
        "a {rows}x{cols} matrix view with strides ({row_stride}, {col_stride}) does not fit in a buffer of {len} elements"
    )]
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
    #[error("expected a 2-D tensor, but found shape {shape:?}")]
    MatrixDims {
        /// The tensor's shape.
        shape: Vec<usize>,
    },
    /// `linear` was given a 0-d input or a weight that is not 2-D.
    #[error("both arguments to linear need to be at least 1D, but they are {input}D and {weight}D")]
    LinearDims {
        /// Dimensions of the input.
        input: usize,
        /// Dimensions of the weight.
        weight: usize,
    },
    /// A bias whose shape is not `[out_features]`.
    #[error(
        "bias must have shape [{expected}] to match the weight's out_features, but found shape {found:?}"
    )]
    BiasShape {
        /// `out_features` of the weight.
        expected: usize,
        /// The bias's shape.
        found: Vec<usize>,
    },
    /// A parameter of a lazy module was used before its shape was inferred.
    #[error(
        "Can't access an uninitialized parameter. Run a forward pass of the lazy module first to infer its shape"
    )]
    UninitializedParameter,
    /// A child module name that PyTorch's `add_module` rejects.
    #[error("{}", module_name_message(.name, *.problem))]
    ModuleName {
        /// The name given.
        name: String,
        /// Why it is rejected (the message's wording).
        problem: ModuleNameProblem,
    },
    /// A child index past the end of a container.
    #[error("index {index} is out of range for a module with {len} children")]
    ChildIndex {
        /// The index given.
        index: usize,
        /// Children in the container.
        len: usize,
    },
    /// A child or module is not of the type asked for.
    #[error("{}", module_type_message(.path, .expected, .found))]
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
    #[error("{}", load_state_dict_message(.module, .missing, .unexpected, .size_mismatch))]
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
    #[error(
        "{module}.backward called without a training forward before it (call train(true) and forward first)"
    )]
    BackwardBeforeForward {
        /// The module's type name.
        module: String,
    },
    /// A module type has no backward (a user module that does not implement it).
    #[error("{module} does not implement backward")]
    BackwardUnsupported {
        /// The module's type name.
        module: String,
    },
    /// A gradient whose shape differs from the tensor it is the gradient of.
    #[error("{what} must have shape {expected:?}, but found shape {found:?}")]
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
    #[error("Invalid {name}: {}", fmt_g(*.value))]
    Hyperparameter {
        /// The parameter as PyTorch's message names it (`learning rate`,
        /// `momentum value`, `weight_decay value`, `dampening value`).
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// `nesterov` without momentum, or with dampening.
    #[error("Nesterov momentum requires a momentum and zero dampening")]
    Nesterov,
    // ---- io ------------------------------------------------------------
    /// A file or byte string is not in the expected format.
    #[error("invalid {format} data: {reason}")]
    Format {
        /// The format (`npy`, `safetensors`).
        format: &'static str,
        /// What is wrong, naming the offending value.
        reason: String,
    },
    /// An I/O operation failed.
    #[error("{message}")]
    Io {
        /// The kind of failure.
        kind: std::io::ErrorKind,
        /// The operating system's message.
        message: String,
    },
    /// A kernel instruction set was requested that this CPU does not have.
    #[error("the instruction set {isa} is not supported by this CPU")]
    IsaUnsupported {
        /// Name of the instruction set.
        isa: &'static str,
    },
    /// A tensor or buffer of one dtype was used where another is needed.
    #[error("{what} has dtype {found}, expected {expected}")]
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
    #[error("Expected {expected}, but got input of size: {shape:?}")]
    InputDims {
        /// PyTorch's wording of what was expected (`3D (unbatched) or 4D
        /// (batched) input to conv2d`).
        expected: &'static str,
        /// The input's shape.
        shape: Vec<usize>,
    },
    /// A convolution's input has the wrong channel count.
    #[error("Given groups={groups}, weight of size {weight:?}, expected input{input:?} to have {expected} channels, but got {} channels instead", .input.get(1).copied().unwrap_or(0))]
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
    #[error("Calculated padded input size per channel: ({}). Kernel size: ({}). Kernel size can't be greater than actual input size", x_joined(.padded), x_joined(.kernel))]
    KernelTooLarge {
        /// Padded input size per channel.
        padded: Vec<usize>,
        /// Effective (dilated) kernel size.
        kernel: Vec<usize>,
    },
    /// A bad option of a layer, with PyTorch's message
    /// (`groups must be a positive integer`,
    /// `padding='same' is not supported for strided convolutions`, ...).
    #[error("{message}")]
    LayerOption {
        /// The message.
        message: &'static str,
    },
    /// A padding string other than `same` and `valid`.
    #[error("Invalid padding string '{padding}', should be one of {{'valid', 'same'}}")]
    PaddingString {
        /// What was given.
        padding: String,
    },
    /// A batch normalization's input has the wrong number of dimensions.
    #[error("expected {expected} input (got {got}D input)")]
    NormInputDims {
        /// What the layer takes (`4D`, `2D or 3D`).
        expected: &'static str,
        /// The input's dimensions.
        got: usize,
    },
    /// A normalization layer's input has the wrong number of features.
    #[error("running_mean should contain {got} elements not {expected}")]
    NormFeatures {
        /// Features of the input.
        got: usize,
        /// Features of the layer.
        expected: usize,
    },
    /// Training-mode batch statistics from a single value per channel.
    #[error("Expected more than 1 value per channel when training, got input size {}", torch_size(.shape))]
    SingleValuePerChannel {
        /// The input's shape.
        shape: Vec<usize>,
    },
    /// A `LayerNorm` input whose trailing dimensions are not
    /// `normalized_shape`.
    #[error("Given normalized_shape={normalized:?}, expected input with shape [{}], but got input of size{input:?}", star_shape(.normalized))]
    LayerNormShape {
        /// The layer's `normalized_shape`.
        normalized: Vec<usize>,
        /// The input's shape.
        input: Vec<usize>,
    },
    /// An index of an `Embedding` outside `0..num_embeddings`.
    #[error("index out of range in self (index {index}, num_embeddings {num_embeddings})")]
    EmbeddingIndex {
        /// The index.
        index: i64,
        /// Rows of the table.
        num_embeddings: usize,
    },
    /// A `padding_idx` outside `-num_embeddings..num_embeddings`.
    #[error(
        "Padding_idx must be within num_embeddings (padding_idx {padding_idx}, num_embeddings {num_embeddings})"
    )]
    PaddingIdx {
        /// The index.
        padding_idx: i64,
        /// Rows of the table.
        num_embeddings: usize,
    },
    /// A dropout probability outside `[0, 1]`.
    #[error("dropout probability has to be between 0 and 1, but got {}", fmt_g(*.p))]
    DropoutP {
        /// The probability.
        p: f64,
    },
    /// Pooling padding larger than half the effective kernel.
    #[error(
        "pad should be at most half of effective kernel size, but got pad={pad}, kernel_size={kernel} and dilation={dilation}"
    )]
    PoolPadding {
        /// The padding.
        pad: usize,
        /// The kernel size.
        kernel: usize,
        /// The dilation.
        dilation: usize,
    },
    /// A pooling output with a zero-sized dimension.
    #[error("Given input size: ({}x{}x{}). Calculated output size: ({}x{}x{}). Output size is too small", .input[0], .input[1], .input[2], .output[0], .output[1], .output[2])]
    PoolOutputTooSmall {
        /// Input size (channels, height, width).
        input: [usize; 3],
        /// Output size.
        output: [usize; 3],
    },
    /// A dimension index outside `[-dims, dims - 1]`.
    #[error("Dimension out of range (expected to be in range of [{}, {}], but got {dim})", -((*.dims).max(1) as isize), (*.dims).max(1) as isize - 1)]
    DimOutOfRange {
        /// The dimension given.
        dim: isize,
        /// The number of dimensions.
        dims: usize,
    },
    /// A `GELU` approximation other than `none` and `tanh`.
    #[error("approximate argument must be either none or tanh, but got {approximate:?}")]
    GeluApproximate {
        /// What was given.
        approximate: String,
    },
    /// A module without a forward (a checkpoint plan) was run.
    #[error("{module} has no forward: it describes a checkpoint to write")]
    NoForward {
        /// The module's type.
        module: &'static str,
    },
    /// A checkpoint directory that is incomplete or inconsistent.
    #[error("checkpoint file {file}: {reason}")]
    Checkpoint {
        /// The file concerned.
        file: String,
        /// What is wrong, naming the tensor where there is one.
        reason: String,
    },
    /// A rank and world size that do not make sense.
    #[error("rank {rank} of world size {size}: expected integers with rank < size")]
    Rank {
        /// The rank as given.
        rank: String,
        /// The world size as given.
        size: String,
    },
    // ---- torch-exact generator --------------------------------------------
    /// Bytes that are not a valid PyTorch CPU generator state.
    #[error("{reason}")]
    RngState {
        /// What is wrong (PyTorch's wording where it has one).
        reason: String,
    },
    /// A module was built on meta from a torch-exact generator, whose
    /// serial stream cannot be deferred.
    #[error(
        "building on meta needs a counter-based generator: a torch-exact generator's stream is serial and cannot be deferred"
    )]
    MetaTorchGenerator,
    /// A parameter on meta was used before it was materialized.
    #[error(
        "parameter {name} is on meta: materialize it (nninit::nn::meta::materialize) or load a state dict into it first"
    )]
    MetaParameter {
        /// Its name, when known.
        name: String,
    },
    /// An operation that needs a torch-exact generator was given, or found
    /// as the global generator, a counter-based one.
    #[error(
        "{op} needs a torch-exact generator, but the generator is counter-based (use nninit::torch::manual_seed or Generator::torch)"
    )]
    NotTorchGenerator {
        /// The operation.
        op: &'static str,
    },
    /// A tensor converted to an `ndarray` array of a fixed number of
    /// dimensions (`Array2<f32>`, …) has another number of dimensions
    /// (feature `ndarray`).
    #[error("cannot convert a tensor of shape {shape:?} ({} dimensions) to an array of {expected} dimensions", .shape.len())]
    ArrayDims {
        /// The dimensions of the array asked for.
        expected: usize,
        /// The shape of the tensor.
        shape: Vec<usize>,
    },
}

/// `Result` with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

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

/// `ModuleName`'s message (PyTorch's `add_module` texts).
fn module_name_message(name: &str, problem: ModuleNameProblem) -> String {
    match problem {
        ModuleNameProblem::Empty => "module name can't be empty string \"\"".to_string(),
        ModuleNameProblem::Dot => format!("module name can't contain \".\", got: {name}"),
        ModuleNameProblem::Duplicate => format!("attribute '{name}' already exists"),
    }
}

/// `ModuleType`'s message.
fn module_type_message(path: &str, expected: &str, found: &str) -> String {
    if path.is_empty() {
        format!("module is a {found}, not a {expected}")
    } else {
        format!("module '{path}' is a {found}, not a {expected}")
    }
}

/// PyTorch's `load_state_dict` message.
fn load_state_dict_message(
    module: &str,
    missing: &[String],
    unexpected: &[String],
    size_mismatch: &[(String, Vec<usize>, Vec<usize>)],
) -> String {
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
            "size mismatch for {key}: copying a param with shape {} from checkpoint, the shape in \
             current model is {}.",
            torch_size(from),
            torch_size(to)
        ));
    }
    format!(
        "Error(s) in loading state_dict for {module}:\n\t{}",
        lines.join("\n\t")
    )
}

/// `3 x 3`, as PyTorch joins sizes in its convolution messages.
fn x_joined(v: &[usize]) -> String {
    v.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(" x ")
}

/// `[*, 4, 5]`: the input shape a `LayerNorm` expects.
fn star_shape(normalized: &[usize]) -> String {
    std::iter::once("*".to_string())
        .chain(normalized.iter().map(usize::to_string))
        .collect::<Vec<_>>()
        .join(", ")
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
