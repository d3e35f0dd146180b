//! A [candle](https://crates.io/crates/candle-nn) backend (cargo feature
//! `candle`): a [`candle_nn::VarBuilder`] whose variables come from nninit.
//!
//! candle-nn models ask their `VarBuilder` for each variable by name, shape
//! and an *init hint* ([`candle_nn::Init`]). [`InitBackend`] answers through
//! candle-nn's variable-creation trait ([`SimpleBackend`]), so any candle-nn
//! model built from [`InitBackend::into_var_builder`] gets its variables from
//! nninit, in one of two modes:
//!
//! * **keyed** ([`InitBackend::keyed`]): each variable draws from its own
//!   counter-based [`Stream`], derived from `(seed, full dotted name)` by
//!   [`stream_for`]. The weights are the same whatever order the model is
//!   built in, on any thread count and instruction set, and a shard
//!   ([`fill_shard`]) equals that range of the whole variable.
//! * **in order** ([`InitBackend::torch`], [`InitBackend::in_order`]): the
//!   variables draw, in the order the model asks for them, from one
//!   [`Generator`]; with a torch-exact one, PyTorch's numbers (see
//!   [PyTorch's numbers](#pytorchs-numbers) below).
//!
//! The hints are honoured with PyTorch's formulas ([`init_for`]):
//!
//! | candle-nn hint | nninit [`Init`] (PyTorch's `torch.nn.init` call) |
//! |---|---|
//! | `Const(v)` | `Constant { val: v }` (`constant_`) |
//! | `Randn { mean, stdev }` | `Normal { mean, std: stdev }` (`normal_`) |
//! | `Uniform { lo, up }` | `Uniform { a: lo, b: up }` (`uniform_`) |
//! | `Kaiming { Normal, fan, nl }` | `KaimingNormal { a: 0, mode: fan, nonlinearity: nl }` (`kaiming_normal_`) |
//! | `Kaiming { Uniform, fan, nl }` | `KaimingUniform { a: 0, mode: fan, nonlinearity: nl }` (`kaiming_uniform_`) |
//! | `Kaiming { _, fan, ExplicitGain(g) }` | `Normal { 0, g/√fan }` or `Uniform { ±√3·g/√fan }` (what `kaiming_*_` computes for gain `g`) |
//!
//! `FanIn`/`FanOut` are [`FanMode::FanIn`]/[`FanMode::FanOut`] and the fans
//! are PyTorch's (`fan_in = shape[1]·∏shape[2..]`, see
//! [`calculate_fan_in_and_fan_out`](crate::init::calculate_fan_in_and_fan_out)); `ReLU`, `Linear`, `Sigmoid`, `Tanh`,
//! `SELU` are the [`Nonlinearity`] of the same name (gains √2, 1, 1, 5/3,
//! 3/4). One difference from candle's own `VarMap`: a Kaiming hint on a
//! variable with fewer than 2 dimensions is an error (PyTorch's, `Fan in and
//! fan out can not be computed for tensor with fewer than 2 dimensions`),
//! where candle takes the fan to be 1.
//!
//! Variables are candle [`Var`]s (trainable), made on the CPU in `f32` and
//! converted by candle to the dtype (`f16`, `bf16`, `f64`: the `f32` values
//! rounded or widened) and device asked for. An integer dtype takes only a
//! `Const` hint. Every variable made is recorded, in the order made, in a
//! [`VarRegistry`] (an ordered `VarMap`): asking again for a name gives the
//! same variable (tied weights), or an error naming it if the shape differs;
//! [`VarRegistry::all_vars`] feeds an optimizer and [`VarRegistry::save`]
//! writes a safetensors file.
//!
//! ```
//! use candle_core::{DType, Device, Module, Tensor};
//! use candle_nn::{linear, seq, Activation};
//! use nninit::candle::InitBackend;
//!
//! let backend = InitBackend::keyed(42);
//! let vars = backend.registry();
//! let vb = backend.into_var_builder(DType::F32, &Device::Cpu);
//! let mlp = seq()
//!     .add(linear(4, 16, vb.pp("fc1"))?)
//!     .add(Activation::Relu)
//!     .add(linear(16, 2, vb.pp("fc2"))?);
//! let y = mlp.forward(&Tensor::ones((3, 4), DType::F32, &Device::Cpu)?)?;
//! assert_eq!(y.dims(), &[3, 2]);
//! assert_eq!(vars.names(), ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
//! # Ok::<(), candle_core::Error>(())
//! ```
//!
//! # PyTorch's numbers
//!
//! [`InitBackend::torch`]`(seed)` draws every new variable, in the order the
//! model asks for them, from [`Generator::torch`]`(seed)` with the
//! `torch.nn.init` call of the table above. So the values are, bit for bit
//! (in `f32`), those of a PyTorch script that runs `torch.manual_seed(seed)`
//! and then makes **the same init calls on the same shapes in the same
//! order** (nninit's torch-exact generator reproduces PyTorch 2.15's CPU
//! stream; see [`crate::torch`]). `Const` draws nothing, as `constant_` does,
//! and a name asked for again draws nothing either.
//!
//! What it does **not** guarantee: that a candle-nn layer asks for the inits
//! PyTorch's module of the same name uses. They differ for some layers:
//!
//! | layer | candle-nn's hints | PyTorch's `reset_parameters` |
//! |---|---|---|
//! | `linear(in, out)` | weight `kaiming_normal_(fan_in, relu)`: `N(0, 2/in)`; bias `U(±1/√in)` | weight `kaiming_uniform_(a=√5)`: `U(±1/√in)`; bias `U(±1/√in)` |
//! | `conv2d(in, out, k)` | weight `kaiming_normal_(fan_in, relu)`; bias `U(±1/√in)` | weight `kaiming_uniform_(a=√5)`; bias `U(±1/√fan_in)`, `fan_in = in/groups·k²` |
//! | `embedding` | `N(0, 1)` | `N(0, 1)` (the same) |
//! | `layer_norm` | ones, zeros | ones, zeros (the same) |
//!
//! Since the weight's draws differ, every variable after the first
//! `linear` differs too. [`linear_torch`] and [`conv2d_torch`] build candle-nn's
//! `Linear` and `Conv2d` with PyTorch's hints, so a model built from them in
//! PyTorch's construction order gets `nn.Linear`'s and `nn.Conv2d`'s default
//! numbers. Other dtypes hold PyTorch's `f32` values converted, not what
//! PyTorch would draw directly in that dtype.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::init::{FanInOut, NonLinearity, NormalOrUniform};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Conv2d, Conv2dConfig, Linear, VarBuilder, VarMap};

use crate::error::{Error, Result};
use crate::init::{FanMode, Init, Nonlinearity, calculate_correct_fan, calculate_gain};
use crate::rng::{Generator, Stream, mix64};
use crate::tensor::numel_of;

/// The domain tag of [`stream_for`]: the ASCII bytes of `"nninit.c"`.
const NAME_DOMAIN: u64 = 0x6E6E_696E_6974_2E63;
/// SplitMix64's increment, `⌊2⁶⁴/φ⌋`.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The stream of the variable `name` (its full dotted name, as
/// `vb.pp("encoder").pp("0")` and `"weight"` give `"encoder.0.weight"`) for
/// `seed`: what [`InitBackend::keyed`]`(seed)` fills it from.
///
/// The key is a stable hash, defined here so that another program (or
/// language) can compute it: with `m` the SplitMix64 finalizer
/// (`z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27;
/// z *= 0x94D049BB133111EB; z ^= z >> 31`, wrapping 64-bit arithmetic),
///
/// ```text
/// h = m(seed ^ 0x6E6E696E69742E63)              // "nninit.c"
/// for each 8-byte chunk c of name's UTF-8 bytes (the last zero-padded):
///     h = m((h + 0x9E3779B97F4A7C15) ^ u64::from_le_bytes(c))
/// key = m(h ^ len(name in bytes))
/// ```
///
/// It does not depend on the platform, the process or the order of calls,
/// and will not change within a major version (`tests/candle.rs` pins it).
///
/// ```
/// use nninit::candle::stream_for;
/// assert_eq!(stream_for(7, "fc1.weight"), stream_for(7, "fc1.weight"));
/// assert_ne!(stream_for(7, "fc1.weight"), stream_for(7, "fc1.bias"));
/// assert_ne!(stream_for(7, "fc1.weight"), stream_for(8, "fc1.weight"));
/// ```
pub fn stream_for(seed: u64, name: &str) -> Stream {
    let bytes = name.as_bytes();
    let mut h = mix64(seed ^ NAME_DOMAIN);
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = mix64(h.wrapping_add(GOLDEN) ^ u64::from_le_bytes(word));
    }
    Stream::from_key(mix64(h ^ bytes.len() as u64))
}

/// The nninit initializer for a candle-nn init hint on a variable of
/// `shape`, with PyTorch's formulas (the table of the [module](self) docs).
///
/// ```
/// use candle_nn::init::{FanInOut, NonLinearity, NormalOrUniform};
/// use nninit::candle::init_for;
/// use nninit::init::{FanMode, Init, Nonlinearity};
///
/// let hint = candle_nn::Init::Kaiming {
///     dist: NormalOrUniform::Normal,
///     fan: FanInOut::FanOut,
///     non_linearity: NonLinearity::Tanh,
/// };
/// let init = init_for(hint, &[8, 4]).unwrap();
/// assert_eq!(init, Init::KaimingNormal { a: 0.0, mode: FanMode::FanOut, nonlinearity: Nonlinearity::Tanh });
///
/// let explicit = candle_nn::Init::Kaiming {
///     dist: NormalOrUniform::Uniform,
///     fan: FanInOut::FanIn,
///     non_linearity: NonLinearity::ExplicitGain(3.0),
/// };
/// let bound = 3f64.sqrt() * (3.0 / 4f64.sqrt()); // √3 · gain / √fan_in
/// assert_eq!(init_for(explicit, &[8, 4]).unwrap(), Init::Uniform { a: -bound, b: bound });
/// assert!(init_for(explicit, &[8]).is_err()); // no fans for 1-D
/// ```
///
/// # Errors
/// For an explicit gain: a non-finite gain ([`Error::Gain`]), or a
/// non-empty `shape` of fewer than 2 dimensions ([`Error::FanDims`]); the
/// other hints' parameters are checked when the [`Init`] is applied.
pub fn init_for(hint: candle_nn::Init, shape: &[usize]) -> Result<Init> {
    Ok(match hint {
        candle_nn::Init::Const(val) => Init::Constant { val },
        candle_nn::Init::Randn { mean, stdev } => Init::Normal { mean, std: stdev },
        candle_nn::Init::Uniform { lo, up } => Init::Uniform { a: lo, b: up },
        candle_nn::Init::Kaiming {
            dist,
            fan,
            non_linearity,
        } => {
            let mode = match fan {
                FanInOut::FanIn => FanMode::FanIn,
                FanInOut::FanOut => FanMode::FanOut,
            };
            let nonlinearity = match non_linearity {
                NonLinearity::ReLU => Nonlinearity::Relu,
                NonLinearity::Linear => Nonlinearity::Linear,
                NonLinearity::Sigmoid => Nonlinearity::Sigmoid,
                NonLinearity::Tanh => Nonlinearity::Tanh,
                NonLinearity::SELU => Nonlinearity::Selu,
                NonLinearity::ExplicitGain(gain) => return explicit_gain(dist, mode, gain, shape),
            };
            match dist {
                NormalOrUniform::Normal => Init::KaimingNormal {
                    a: 0.0,
                    mode,
                    nonlinearity,
                },
                NormalOrUniform::Uniform => Init::KaimingUniform {
                    a: 0.0,
                    mode,
                    nonlinearity,
                },
            }
        }
    })
}

/// `kaiming_normal_`/`kaiming_uniform_`'s arithmetic for a given gain:
/// `std = gain / √fan`, `bound = √3 · std`.
fn explicit_gain(dist: NormalOrUniform, mode: FanMode, gain: f64, shape: &[usize]) -> Result<Init> {
    if !gain.is_finite() {
        return Err(Error::Gain { gain });
    }
    if numel_of(shape)? == 0 {
        // A zero-element variable is a no-op, as for every initializer.
        return Ok(Init::Constant { val: 0.0 });
    }
    let std = gain / (calculate_correct_fan(shape, mode)? as f64).sqrt();
    Ok(match dist {
        NormalOrUniform::Normal => Init::Normal { mean: 0.0, std },
        NormalOrUniform::Uniform => {
            let bound = 3f64.sqrt() * std;
            Init::Uniform {
                a: -bound,
                b: bound,
            }
        }
    })
}

/// Fills `out` with elements `[offset, offset + out.len())` (row-major) of
/// the variable `name` of `full_shape` that [`InitBackend::keyed`]`(seed)`
/// makes for `hint` (its `f32` values), without making the rest: a rank of a
/// sharded job fills its own part, and the parts concatenated equal the
/// whole, bit for bit.
///
/// ```
/// use candle_core::{DType, Device};
/// use nninit::candle::{InitBackend, fill_shard};
///
/// let hint = candle_nn::Init::Randn { mean: 0.0, stdev: 0.02 };
/// let vb = InitBackend::keyed(3).into_var_builder(DType::F32, &Device::Cpu);
/// let whole = vb.pp("emb").get_with_hints((100, 8), "weight", hint)?;
/// let whole: Vec<f32> = whole.flatten_all()?.to_vec1()?;
///
/// let mut rows_10_to_20 = vec![0.0; 10 * 8];
/// fill_shard(3, "emb.weight", hint, &[100, 8], 10 * 8, &mut rows_10_to_20).unwrap();
/// assert_eq!(&whole[10 * 8..20 * 8], &rows_10_to_20[..]);
/// # Ok::<(), candle_core::Error>(())
/// ```
///
/// # Errors
/// As [`init_for`] and [`Init::fill_shard`] (bad hint parameters, a range
/// outside `full_shape`).
pub fn fill_shard(
    seed: u64,
    name: &str,
    hint: candle_nn::Init,
    full_shape: &[usize],
    offset: u64,
    out: &mut [f32],
) -> Result<()> {
    init_for(hint, full_shape)?.fill_shard(full_shape, offset, out, stream_for(seed, name))
}

/// PyTorch's default weight init for `nn.Linear` and `nn.Conv*d`,
/// `kaiming_uniform_(w, a=√5)` (`U(±1/√fan_in)`), as a candle-nn hint: a
/// Kaiming uniform hint on fan-in with the explicit gain
/// `calculate_gain("leaky_relu", √5) = √(1/3)`.
///
/// ```
/// use candle_core::{DType, Device};
/// use nninit::candle::{InitBackend, torch_default_weight};
///
/// let vb = InitBackend::keyed(0).into_var_builder(DType::F32, &Device::Cpu);
/// let w = vb.get_with_hints((8, 25), "w", torch_default_weight())?;
/// let max = w.abs()?.max_all()?.to_scalar::<f32>()?;
/// assert!(max <= 0.2); // 1/√25
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn torch_default_weight() -> candle_nn::Init {
    // `calculate_gain(LeakyRelu, Some(x))` fails only for a non-finite x.
    let gain = calculate_gain(Nonlinearity::LeakyRelu, Some(5f64.sqrt())).unwrap_or(f64::NAN);
    candle_nn::Init::Kaiming {
        dist: NormalOrUniform::Uniform,
        fan: FanInOut::FanIn,
        non_linearity: NonLinearity::ExplicitGain(gain),
    }
}

/// PyTorch's default bias init for a layer with `fan_in` inputs per output:
/// `U(±1/√fan_in)`, and `U(0, 0)` for `fan_in == 0`.
fn torch_default_bias(fan_in: usize) -> candle_nn::Init {
    // PyTorch: `bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0`, then
    // `uniform_(-bound, bound)`: for fan_in 0 the integer 0 twice (+0.0).
    let (lo, up) = if fan_in > 0 {
        let bound = 1.0 / (fan_in as f64).sqrt();
        (-bound, bound)
    } else {
        (0.0, 0.0)
    };
    candle_nn::Init::Uniform { lo, up }
}

/// A candle-nn [`Linear`] with PyTorch's `nn.Linear(in_dim, out_dim)`
/// default init: `weight` `[out_dim, in_dim]` by `kaiming_uniform_(a=√5)`,
/// then `bias` `[out_dim]` by `U(±1/√in_dim)`, under `vb`'s prefix, in that
/// order. With [`InitBackend::torch`] these are PyTorch's numbers for the
/// same construction order (candle-nn's own [`candle_nn::linear()`] uses other
/// hints; see the [module](self) docs).
///
/// ```
/// use candle_core::{DType, Device};
/// use nninit::candle::{InitBackend, linear_torch};
/// use nninit::Generator;
///
/// let vb = InitBackend::torch(0).into_var_builder(DType::F32, &Device::Cpu);
/// let layer = linear_torch(4, 3, vb.pp("fc"))?;
/// // The same numbers as nninit's nn::Linear drawn from torch.manual_seed(0),
/// // which are PyTorch's nn.Linear(4, 3).
/// let nn = nninit::nn::Linear::with_options(4, 3, true, Some(&mut Generator::torch(0))).unwrap();
/// let w: Vec<f32> = layer.weight().flatten_all()?.to_vec1()?;
/// assert_eq!(w, nn.weight.data().unwrap().as_slice());
/// # Ok::<(), candle_core::Error>(())
/// ```
///
/// # Errors
/// The backend's (for example a shape mismatch with a variable made
/// before under the same name).
pub fn linear_torch(
    in_dim: usize,
    out_dim: usize,
    vb: VarBuilder<'_>,
) -> candle_core::Result<Linear> {
    let weight = vb.get_with_hints((out_dim, in_dim), "weight", torch_default_weight())?;
    let bias = vb.get_with_hints(out_dim, "bias", torch_default_bias(in_dim))?;
    Ok(Linear::new(weight, Some(bias)))
}

/// A candle-nn [`Conv2d`] with PyTorch's `nn.Conv2d(in_channels,
/// out_channels, kernel_size, groups=cfg.groups)` default init: `weight`
/// `[out, in/groups, k, k]` by `kaiming_uniform_(a=√5)`, then `bias` `[out]`
/// by `U(±1/√fan_in)` with `fan_in = in/groups·k²`, in that order.
///
/// ```
/// use candle_core::{DType, Device, Module, Tensor};
/// use candle_nn::Conv2dConfig;
/// use nninit::candle::{InitBackend, conv2d_torch};
///
/// let vb = InitBackend::torch(0).into_var_builder(DType::F32, &Device::Cpu);
/// let conv = conv2d_torch(3, 8, 3, Conv2dConfig { padding: 1, ..Default::default() }, vb.pp("conv"))?;
/// let y = conv.forward(&Tensor::zeros((1, 3, 5, 5), DType::F32, &Device::Cpu)?)?;
/// assert_eq!(y.dims(), &[1, 8, 5, 5]);
/// assert!(conv2d_torch(3, 8, 3, Conv2dConfig { groups: 2, ..Default::default() }, vb.pp("bad")).is_err());
/// # Ok::<(), candle_core::Error>(())
/// ```
///
/// # Errors
/// `groups` zero or not dividing both channel counts, a zero kernel size,
/// stride or dilation (PyTorch's messages), and the backend's.
pub fn conv2d_torch(
    in_channels: usize,
    out_channels: usize,
    kernel_size: usize,
    cfg: Conv2dConfig,
    vb: VarBuilder<'_>,
) -> candle_core::Result<Conv2d> {
    let groups = cfg.groups;
    if groups == 0 {
        candle_core::bail!("groups must be a positive integer");
    }
    if !in_channels.is_multiple_of(groups) {
        candle_core::bail!("in_channels must be divisible by groups");
    }
    if !out_channels.is_multiple_of(groups) {
        candle_core::bail!("out_channels must be divisible by groups");
    }
    if kernel_size == 0 {
        candle_core::bail!("kernel_size must be positive");
    }
    if cfg.stride == 0 {
        candle_core::bail!("stride must be positive");
    }
    if cfg.dilation == 0 {
        candle_core::bail!("dilation must be positive");
    }
    let shape = [out_channels, in_channels / groups, kernel_size, kernel_size];
    let weight = vb.get_with_hints(&shape[..], "weight", torch_default_weight())?;
    let fan_in = (in_channels / groups)
        .checked_mul(kernel_size)
        .and_then(|n| n.checked_mul(kernel_size))
        .ok_or_else(|| {
            candle_error(Error::ShapeOverflow {
                shape: shape.to_vec(),
            })
        })?;
    let bias = vb.get_with_hints(out_channels, "bias", torch_default_bias(fan_in))?;
    Ok(Conv2d::new(weight, Some(bias), cfg))
}

fn candle_error(e: Error) -> candle_core::Error {
    candle_core::Error::msg(e)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every value the guarded data can hold is valid, so a lock poisoned by
    // a panic elsewhere still holds usable data.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An ordered record of named candle [`Var`]s: what an [`InitBackend`] has
/// made, in the order it made them. A cheap handle: clones share the record.
///
/// candle-nn's `VarMap` keeps its variables in a `HashMap` (names in no
/// particular order); this keeps insertion order, and converts to a `VarMap`
/// ([`to_var_map`](Self::to_var_map)) for candle's `load`.
///
/// ```
/// use candle_core::{DType, Device};
/// use nninit::candle::{InitBackend, VarRegistry};
///
/// let vars = VarRegistry::new();
/// let vb = InitBackend::keyed(0).with_registry(vars.clone()).into_var_builder(DType::F32, &Device::Cpu);
/// let _ = candle_nn::linear(2, 3, vb.pp("b"))?;
/// let _ = candle_nn::linear(3, 1, vb.pp("a"))?;
/// assert_eq!(vars.names(), ["b.weight", "b.bias", "a.weight", "a.bias"]);
/// assert_eq!(vars.get("b.weight").unwrap().dims(), &[3, 2]);
/// assert_eq!(vars.all_vars().len(), 4); // for an optimizer
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct VarRegistry {
    inner: Arc<Mutex<Entries>>,
}

#[derive(Default)]
struct Entries {
    order: Vec<(String, Var)>,
    index: HashMap<String, usize>,
}

impl Entries {
    fn get(&self, name: &str) -> Option<&Var> {
        self.index.get(name).map(|&i| &self.order[i].1)
    }

    fn insert(&mut self, name: &str, var: Var) {
        self.index.insert(name.to_string(), self.order.len());
        self.order.push((name.to_string(), var));
    }
}

impl std::fmt::Debug for VarRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = lock(&self.inner);
        f.debug_map()
            .entries(entries.order.iter().map(|(n, v)| (n, v.dims().to_vec())))
            .finish()
    }
}

impl VarRegistry {
    /// An empty registry.
    pub fn new() -> VarRegistry {
        VarRegistry::default()
    }

    /// How many variables it holds.
    pub fn len(&self) -> usize {
        lock(&self.inner).order.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The names, in the order the variables were made.
    pub fn names(&self) -> Vec<String> {
        lock(&self.inner)
            .order
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The variable named `name`, if made.
    pub fn get(&self, name: &str) -> Option<Var> {
        lock(&self.inner).get(name).cloned()
    }

    /// `(name, variable)` pairs in the order made.
    pub fn vars(&self) -> Vec<(String, Var)> {
        lock(&self.inner).order.clone()
    }

    /// The variables in the order made (for an optimizer, like
    /// `VarMap::all_vars`).
    pub fn all_vars(&self) -> Vec<Var> {
        lock(&self.inner)
            .order
            .iter()
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A candle-nn `VarMap` holding the same variables (sharing their
    /// storage: training either trains both), for `VarMap::load` and the
    /// rest of candle's API.
    pub fn to_var_map(&self) -> VarMap {
        let map = VarMap::new();
        {
            let mut data = lock(map.data());
            for (name, var) in &lock(&self.inner).order {
                data.insert(name.clone(), var.clone());
            }
        }
        map
    }

    /// Writes the variables to a safetensors file at `path` (as
    /// `VarMap::save`), through a temporary file in the same directory that
    /// is synced and then renamed, so a reader never sees half a file.
    ///
    /// ```
    /// use candle_core::{DType, Device};
    /// use nninit::candle::InitBackend;
    ///
    /// let backend = InitBackend::keyed(1);
    /// let vars = backend.registry();
    /// let _ = candle_nn::linear(2, 3, backend.into_var_builder(DType::F32, &Device::Cpu).pp("fc"))?;
    /// let path = std::env::temp_dir().join(format!("nninit-candle-doc-{}.safetensors", std::process::id()));
    /// vars.save(&path)?;
    /// let back = candle_core::safetensors::load(&path, &Device::Cpu)?;
    /// assert_eq!(back["fc.weight"].dims(), &[3, 2]);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// candle's and the file system's.
    pub fn save(&self, path: impl AsRef<Path>) -> candle_core::Result<()> {
        let tensors: Vec<(String, Tensor)> = lock(&self.inner)
            .order
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect();
        let bytes =
            safetensors::tensor::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), None)
                .map_err(candle_core::Error::wrap)?;
        // The crate's atomic writer: temporary file, fsync, rename, directory sync.
        crate::io::write_atomically(path.as_ref(), |w| Ok(w.write_all(&bytes)?))
            .map_err(candle_core::Error::wrap)
    }
}

/// Where an [`InitBackend`] draws from.
#[derive(Debug)]
enum Draws {
    /// One stream per variable, from `(seed, name)`.
    Keyed { seed: u64 },
    /// One generator, in the order variables are made.
    InOrder(Mutex<Generator>),
}

/// candle-nn's variable-creation backend ([`SimpleBackend`]) backed by
/// nninit: see the [module](self) docs for the two modes and the hints.
///
/// ```
/// use candle_core::{DType, Device};
/// use nninit::candle::InitBackend;
///
/// // The same weights whatever the construction order.
/// let a = InitBackend::keyed(5).into_var_builder(DType::F32, &Device::Cpu);
/// let b = InitBackend::keyed(5).into_var_builder(DType::F32, &Device::Cpu);
/// let a1 = candle_nn::linear(3, 4, a.pp("l1"))?;
/// let _a2 = candle_nn::linear(4, 2, a.pp("l2"))?;
/// let _b2 = candle_nn::linear(4, 2, b.pp("l2"))?;
/// let b1 = candle_nn::linear(3, 4, b.pp("l1"))?;
/// let (wa, wb): (Vec<f32>, Vec<f32>) =
///     (a1.weight().flatten_all()?.to_vec1()?, b1.weight().flatten_all()?.to_vec1()?);
/// assert_eq!(wa, wb);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Debug)]
pub struct InitBackend {
    draws: Draws,
    registry: VarRegistry,
}

impl InitBackend {
    /// Keyed mode: the variable `name` is filled from
    /// [`stream_for`]`(seed, name)`, whatever the order it is asked for in.
    pub fn keyed(seed: u64) -> InitBackend {
        InitBackend {
            draws: Draws::Keyed { seed },
            registry: VarRegistry::new(),
        }
    }

    /// In-order mode with PyTorch's generator after `torch.manual_seed(seed)`
    /// ([`Generator::torch`]): PyTorch's numbers for the same init calls in
    /// the same order (see [PyTorch's numbers](self#pytorchs-numbers)).
    ///
    /// ```
    /// use candle_core::{DType, Device};
    /// use nninit::candle::InitBackend;
    /// use nninit::{Generator, Tensor};
    ///
    /// let vb = InitBackend::torch(0).into_var_builder(DType::F32, &Device::Cpu);
    /// let x = vb.get_with_hints(3, "x", candle_nn::Init::Uniform { lo: 0.0, up: 1.0 })?;
    /// // torch.manual_seed(0); torch.rand(3)
    /// assert_eq!(x.to_vec1::<f32>()?, [0.49625659, 0.76822180, 0.08847743]);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn torch(seed: u64) -> InitBackend {
        InitBackend::in_order(Generator::torch(seed))
    }

    /// In-order mode with any generator: each new variable takes the
    /// generator's next draws ([`Init::tensor`]), in the order the model
    /// asks for them (one stream per random variable from a counter-based
    /// generator, PyTorch's draws from a torch-exact one).
    pub fn in_order(generator: Generator) -> InitBackend {
        InitBackend {
            draws: Draws::InOrder(Mutex::new(generator)),
            registry: VarRegistry::new(),
        }
    }

    /// Records into `registry` (shared with its other handles) instead of
    /// the backend's own, empty one.
    pub fn with_registry(mut self, registry: VarRegistry) -> InitBackend {
        self.registry = registry;
        self
    }

    /// A handle on the registry the variables are recorded in.
    pub fn registry(&self) -> VarRegistry {
        self.registry.clone()
    }

    /// A `VarBuilder` over this backend, with `dtype` and `device` as its
    /// defaults (`VarBuilder::from_backend`).
    pub fn into_var_builder(self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self), dtype, device.clone())
    }

    /// The `f32` values of a new variable.
    fn values(&self, name: &str, shape: &[usize], init: &Init) -> Result<Vec<f32>> {
        match &self.draws {
            Draws::Keyed { seed } => {
                let numel = numel_of(shape)?;
                let mut out = Vec::new();
                out.try_reserve_exact(numel)
                    .map_err(|_| Error::OutOfMemory { bytes: numel * 4 })?;
                out.resize(numel, 0.0);
                init.fill_shard(shape, 0, &mut out, stream_for(*seed, name))?;
                Ok(out)
            }
            Draws::InOrder(generator) => {
                let t = init.tensor(shape, Some(&mut lock(generator)))?;
                Ok(t.to_vec())
            }
        }
    }

    /// A new variable `name`.
    fn make(
        &self,
        shape: &Shape,
        name: &str,
        hint: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Var> {
        let dims = shape.dims();
        let context = |e: Error| candle_core::Error::msg(format!("nninit: variable {name}: {e}"));
        let init = init_for(hint, dims).map_err(context)?;
        if init.is_random() && !dtype.is_float() {
            candle_core::bail!(
                "nninit: variable {name}: a random init needs a float dtype, not {}",
                dtype.as_str()
            );
        }
        let values = self.values(name, dims, &init).map_err(context)?;
        if dtype == DType::F32 && dev.is_cpu() {
            return Var::from_vec(values, shape.clone(), dev);
        }
        let t = Tensor::from_vec(values, shape.clone(), &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(dev)?;
        Var::from_tensor(&t)
    }
}

/// `t` in `dtype` on `dev` (itself if it already is).
fn convert(t: &Tensor, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
    t.to_dtype(dtype)?.to_device(dev)
}

impl SimpleBackend for InitBackend {
    /// The variable `name` (the full dotted name): the one made before under
    /// that name if any (an error naming it if its shape is not `s`), else a
    /// new one, recorded in the registry.
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut entries = lock(&self.registry.inner);
        if let Some(var) = entries.get(name) {
            if var.shape() != &s {
                return Err(candle_core::Error::UnexpectedShape {
                    msg: format!("shape mismatch for {name}"),
                    expected: s,
                    got: var.shape().clone(),
                }
                .bt());
            }
            return convert(var.as_tensor(), dtype, dev);
        }
        let var = self.make(&s, name, h, dtype, dev)?;
        let t = var.as_tensor().clone();
        entries.insert(name, var);
        Ok(t)
    }

    /// The variable made before under `name`, in `dtype` on `dev`.
    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        match lock(&self.registry.inner).get(name) {
            Some(var) => convert(var.as_tensor(), dtype, dev),
            None => Err(candle_core::Error::CannotFindTensor {
                path: name.to_string(),
            }
            .bt()),
        }
    }

    /// Whether a variable `name` has been made.
    fn contains_tensor(&self, name: &str) -> bool {
        lock(&self.registry.inner).index.contains_key(name)
    }
}
