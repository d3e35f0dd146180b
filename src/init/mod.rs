//! `torch.nn.init`: PyTorch's initializers, with its names, defaults and
//! error texts.
//!
//! Every function works on anything that implements [`InitTarget`]: a
//! `&mut Tensor`, a parameter of the `nn` module, or (with the cargo feature
//! `ndarray`) an `ndarray` array or view of `f32`, filled in place. Random initializers take
//! an optional [`Generator`]; with `None` they use the global generator set by
//! [`manual_seed`](crate::manual_seed).
//!
//! ```
//! use nninit::{Generator, Tensor, init};
//! use nninit::init::{FanMode, Nonlinearity};
//!
//! let mut w = Tensor::zeros(&[256, 128]).unwrap();
//! let mut g = Generator::new(0);
//! init::kaiming_uniform_(&mut w, 0.0, FanMode::FanIn, Nonlinearity::Relu, Some(&mut g)).unwrap();
//! let bound = (6.0f32 / 128.0).sqrt(); // √2 · √3 / √fan_in
//! assert!(w.as_slice().iter().all(|x| x.abs() <= bound));
//! ```
//!
//! # Rules shared by every initializer
//! * **Parameters are checked first**, then the shape. A bad parameter (a NaN
//!   `std`, `a > b`, an unknown nonlinearity) is always an error.
//! * **A zero-element tensor is a no-op**: once the parameters are valid,
//!   nothing about its shape is an error (PyTorch warns for some, errors for
//!   others; we do neither).
//! * **Each call of a random initializer takes exactly one stream** from its
//!   generator, whatever the tensor's size and even when it is empty or the
//!   distribution degenerate (`a == b`, `std == 0`); a call that fails takes
//!   none. So the same seed and the same sequence of calls give the same model,
//!   and a rank of a sharded job can take the same streams without building the
//!   tensors (see [`Init::fill_shard`]).
//! * Values follow the determinism contract of [`crate::rng`]: the same bits on
//!   any number of threads and any instruction set.

use crate::error::{Error, Result};
use crate::kernels::Kernels;
use crate::rng::{Counter, Generator, Source, Stream, with_source};
use crate::tensor::{Tensor, numel_of};

mod fans;
mod orthogonal;
mod plan;
mod sparse;

pub use fans::{
    FanMode, Nonlinearity, calculate_correct_fan, calculate_fan_in_and_fan_out, calculate_gain,
};
use plan::Plan;

/// Something an initializer can fill: a `&mut Tensor`, a parameter handle,
/// or (feature `ndarray`) an `ndarray` array or view of `f32`.
pub trait InitTarget {
    /// Runs `f` on the tensor to initialize (holding whatever lock it needs).
    fn with_tensor<R>(self, f: impl FnOnce(&mut Tensor) -> Result<R>) -> Result<R>;

    /// Runs `f` on the target's shape and its elements in row-major order:
    /// what the initializers fill. The default lends them from
    /// [`with_tensor`](Self::with_tensor); a target whose memory is not a
    /// [`Tensor`] (an `ndarray` array, with the `ndarray` feature) overrides
    /// it so that initializers write into that memory directly. `f` gets
    /// exactly as many elements as the shape has.
    fn with_elements<R>(self, f: impl FnOnce(&[usize], &mut [f32]) -> Result<R>) -> Result<R>
    where
        Self: Sized,
    {
        self.with_tensor(|t| {
            let (shape, data) = t.shape_and_slice_mut();
            f(shape, data)
        })
    }

    /// For a parameter or buffer on meta ([`crate::nn::meta`]): `f` gets
    /// its shape and returns the initialization that replaces its deferred
    /// one (an init applied on meta is deferred too). `None` for a target
    /// with data, which [`with_tensor`](Self::with_tensor) then fills.
    fn replace_deferred(
        &self,
        f: &mut dyn FnMut(&[usize]) -> Result<Deferred>,
    ) -> Option<Result<()>> {
        let _ = f;
        None
    }
}

impl InitTarget for &mut Tensor {
    fn with_tensor<R>(self, f: impl FnOnce(&mut Tensor) -> Result<R>) -> Result<R> {
        f(self)
    }
}

/// An initializer and its parameters: what a `torch.nn.init` call does, as a
/// value.
///
/// The functions of this module ([`uniform_`], [`kaiming_normal_`], …) are
/// thin wrappers over [`Init::apply`]. The value form also fills a *shard* of a
/// tensor without the rest of it ([`Init::fill_shard`]), except for the
/// initializers whose values depend on the whole tensor ([`Init::Eye`],
/// [`Init::Dirac`], [`Init::Orthogonal`], [`Init::Sparse`]; see
/// [`Init::is_shardable`]).
///
/// | variant | random (one stream) | shardable |
/// |---|---|---|
/// | `Uniform`, `Normal`, `XavierUniform`, `XavierNormal`, `KaimingUniform`, `KaimingNormal` | yes | yes |
/// | `Constant` | no | yes |
/// | `Eye`, `Dirac` | no | no |
/// | `Orthogonal`, `Sparse` | yes | no |
///
/// ```
/// use nninit::init::Init;
/// use nninit::{Generator, Tensor};
///
/// let mut w = Tensor::zeros(&[128, 64]).unwrap();
/// let init = Init::Orthogonal { gain: 1.0 };
/// assert!(init.is_random() && !init.is_shardable());
/// init.apply(&mut w, Some(&mut Generator::new(0))).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Init {
    /// `U[a, b)`.
    Uniform {
        /// Lower bound.
        a: f64,
        /// Upper bound.
        b: f64,
    },
    /// `N(mean, std²)`.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// `N(mean, std²)` conditioned on `[a, b]` (see [`TruncatedNormal`](crate::distributions::TruncatedNormal)).
    TruncNormal {
        /// Mean of the normal before truncation.
        mean: f64,
        /// Standard deviation of the normal before truncation.
        std: f64,
        /// Lower bound (absolute, not in units of `std`).
        a: f64,
        /// Upper bound (absolute).
        b: f64,
    },
    /// Every element `val`.
    Constant {
        /// The value.
        val: f64,
    },
    /// Glorot uniform: `U(−a, a)` with `a = gain · √(6 / (fan_in + fan_out))`.
    XavierUniform {
        /// Scaling factor.
        gain: f64,
    },
    /// Glorot normal: `N(0, std²)` with `std = gain · √(2 / (fan_in + fan_out))`.
    XavierNormal {
        /// Scaling factor.
        gain: f64,
    },
    /// He uniform: `U(−bound, bound)`, `bound = √3 · gain / √fan`.
    KaimingUniform {
        /// Negative slope of the rectifier after this layer (the `param` of
        /// [`calculate_gain`]).
        a: f64,
        /// Which fan.
        mode: FanMode,
        /// The nonlinearity after this layer.
        nonlinearity: Nonlinearity,
    },
    /// He normal: `N(0, std²)`, `std = gain / √fan`.
    KaimingNormal {
        /// Negative slope of the rectifier after this layer.
        a: f64,
        /// Which fan.
        mode: FanMode,
        /// The nonlinearity after this layer.
        nonlinearity: Nonlinearity,
    },
    /// The identity matrix (2-D only); see [`eye_`]. Not random, not
    /// shardable.
    Eye,
    /// The Dirac delta (3-, 4- or 5-D convolution weights); see [`dirac_`].
    /// Not random, not shardable.
    Dirac {
        /// Groups of the convolution (at least 1, dividing dimension 0).
        groups: usize,
    },
    /// A (semi-)orthogonal matrix times `gain`; see [`orthogonal_`]. Random,
    /// not shardable.
    Orthogonal {
        /// Scaling factor.
        gain: f64,
    },
    /// `N(0, std²)` with exactly `⌈sparsity · rows⌉` zeros per column (2-D
    /// only); see [`sparse_`]. Random, not shardable.
    Sparse {
        /// Fraction of each column set to zero, in `[0, 1]`.
        sparsity: f64,
        /// Standard deviation of the non-zero values.
        std: f64,
    },
}

impl Init {
    /// Whether this initializer draws random numbers (takes a stream).
    pub fn is_random(&self) -> bool {
        !matches!(self, Init::Constant { .. } | Init::Eye | Init::Dirac { .. })
    }

    /// Whether [`fill_shard`](Self::fill_shard) works for this initializer:
    /// every one but eye, dirac, orthogonal and sparse, whose values depend on
    /// the whole tensor.
    pub fn is_shardable(&self) -> bool {
        self.whole_tensor_name().is_none()
    }

    /// The function name of an initializer that needs the whole tensor.
    fn whole_tensor_name(&self) -> Option<&'static str> {
        match self {
            Init::Eye => Some("eye_"),
            Init::Dirac { .. } => Some("dirac_"),
            Init::Orthogonal { .. } => Some("orthogonal_"),
            Init::Sparse { .. } => Some("sparse_"),
            _ => None,
        }
    }

    /// Initializes `target` from `generator` (the global generator if
    /// `None`): a counter-based generator gives one stream to a random
    /// initializer; a torch-exact one is drawn from as PyTorch's
    /// `torch.nn.init` function draws (nothing for an empty tensor).
    pub fn apply(&self, target: impl InitTarget, generator: Option<&mut Generator>) -> Result<()> {
        self.apply_with(Kernels::active(), target, generator)
    }

    /// [`apply`](Self::apply) with the given kernels (for example
    /// [`Kernels::scalar`], to check that every instruction set gives the
    /// same bits, for either kind of generator).
    ///
    /// ```
    /// use nninit::init::Init;
    /// use nninit::kernels::Kernels;
    /// use nninit::{Generator, Tensor};
    ///
    /// let init = Init::Normal { mean: 0.0, std: 1.0 };
    /// let (mut a, mut b) = (Tensor::zeros(&[100]).unwrap(), Tensor::zeros(&[100]).unwrap());
    /// init.apply_with(Kernels::scalar(), &mut a, Some(&mut Generator::torch(1))).unwrap();
    /// init.apply(&mut b, Some(&mut Generator::torch(1))).unwrap();
    /// assert_eq!(a, b);
    /// ```
    ///
    /// # Errors
    /// As [`apply`](Self::apply).
    pub fn apply_with(
        &self,
        kernels: Kernels,
        target: impl InitTarget,
        generator: Option<&mut Generator>,
    ) -> Result<()> {
        let mut generator = generator;
        if let Some(done) =
            target.replace_deferred(&mut |shape| self.defer(shape, generator.take()))
        {
            return done;
        }
        target.with_elements(|shape, data| self.fill_elements(kernels, shape, data, generator))
    }

    /// What [`apply_with`](Self::apply_with) does to a target with data:
    /// fills `data`, the row-major elements of a tensor of `shape` (as many as
    /// it has), from `generator`.
    fn fill_elements(
        &self,
        kernels: Kernels,
        shape: &[usize],
        data: &mut [f32],
        generator: Option<&mut Generator>,
    ) -> Result<()> {
        debug_assert_eq!(numel_of(shape).ok(), Some(data.len()));
        with_source(generator, |source| match source {
            Source::Counter(counter) => {
                self.check_parameters()?;
                let plan = if data.is_empty() {
                    None
                } else {
                    Some(self.plan(shape)?)
                };
                // The stream is taken only once nothing can fail any more
                // (a constant plan ignores it).
                let stream = self.take_stream(counter);
                if let Some(plan) = plan {
                    plan.fill(kernels, stream, 0, data);
                }
                Ok(())
            }
            Source::Torch(g) => {
                if let Some(plan) = self.torch_plan(shape)? {
                    plan.fill(kernels, g, data);
                }
                Ok(())
            }
        })
    }

    /// The call's stream if this initializer is random (else a stream
    /// nobody reads, and the generator does not advance).
    fn take_stream(&self, counter: Counter<'_>) -> Stream {
        if self.is_random() {
            counter.take()
        } else {
            Stream::from_key(0)
        }
    }

    /// A new tensor of `shape` initialized by this initializer: the same values
    /// as allocating one and calling [`apply`](Self::apply), in one pass over
    /// fresh memory (no zero fill first), which is what makes building large
    /// layers fast.
    ///
    /// ```
    /// use nninit::init::Init;
    /// use nninit::{Generator, Tensor};
    ///
    /// let init = Init::XavierUniform { gain: 1.0 };
    /// let a = init.tensor(&[64, 32], Some(&mut Generator::new(5))).unwrap();
    /// let mut b = Tensor::zeros(&[64, 32]).unwrap();
    /// init.apply(&mut b, Some(&mut Generator::new(5))).unwrap();
    /// assert_eq!(a, b);
    /// ```
    pub fn tensor(&self, shape: &[usize], generator: Option<&mut Generator>) -> Result<Tensor> {
        with_source(generator, |source| match source {
            Source::Counter(counter) => {
                self.check_parameters()?;
                let plan = if numel_of(shape)? == 0 {
                    None
                } else {
                    Some(self.plan(shape)?)
                };
                // One stream per random call, even for an empty tensor (module docs).
                let stream = self.take_stream(counter);
                match plan {
                    None => Tensor::zeros(shape),
                    Some(Plan::Whole(w)) => {
                        // These write into an initialized tensor (eye and dirac
                        // need the zeros anyway).
                        let mut t = Tensor::zeros(shape)?;
                        w.fill(Kernels::active(), stream, t.as_mut_slice());
                        Ok(t)
                    }
                    Some(plan) => Tensor::filled_with(shape, |out| {
                        plan.fill_uninit(Kernels::active(), stream, out)
                    }),
                }
            }
            Source::Torch(g) => match self.torch_plan(shape)? {
                None => Tensor::zeros(shape),
                Some(plan) if plan.writes_uninit() => {
                    Tensor::filled_with(shape, |out| plan.fill_uninit(Kernels::active(), g, out))
                }
                Some(plan) => {
                    let mut t = Tensor::zeros(shape)?;
                    plan.fill(Kernels::active(), g, t.as_mut_slice());
                    Ok(t)
                }
            },
        })
    }

    /// Fills `out` with elements `[offset, offset + out.len())` (row-major) of
    /// what [`apply`](Self::apply) would put in a tensor of `full_shape` given
    /// `stream`, without allocating the rest. Fans come from `full_shape`.
    ///
    /// To reproduce `init.apply(&mut t, Some(&mut g))` on several ranks, each
    /// rank takes `let stream = g.next_stream()` at the same point of the same
    /// sequence of calls, and fills its own range; the concatenated shards
    /// equal the whole tensor bit for bit.
    ///
    /// ```
    /// use nninit::init::{FanMode, Init, Nonlinearity};
    /// use nninit::{Generator, Tensor};
    ///
    /// let init = Init::KaimingNormal { a: 0.0, mode: FanMode::FanIn, nonlinearity: Nonlinearity::Relu };
    /// let mut whole = Tensor::zeros(&[64, 32]).unwrap();
    /// init.apply(&mut whole, Some(&mut Generator::new(3))).unwrap();
    ///
    /// let stream = Generator::new(3).next_stream();
    /// let mut rows_10_to_20 = vec![0.0; 10 * 32];
    /// init.fill_shard(&[64, 32], 10 * 32, &mut rows_10_to_20, stream).unwrap();
    /// assert_eq!(&whole.as_slice()[10 * 32..20 * 32], &rows_10_to_20[..]);
    /// ```
    ///
    /// Errors: the initializer's own parameter and shape errors,
    /// [`Error::NotShardable`] for [`Init::Eye`], [`Init::Dirac`],
    /// [`Init::Orthogonal`] and [`Init::Sparse`] (their values depend on the
    /// whole tensor; checked after the parameters), and
    /// [`Error::ShardOutOfRange`] if the range does not fit in `full_shape`.
    ///
    /// ```
    /// use nninit::init::Init;
    /// use nninit::Stream;
    ///
    /// let e = Init::Orthogonal { gain: 1.0 }
    ///     .fill_shard(&[8, 8], 0, &mut [0.0; 8], Stream::from_key(1))
    ///     .unwrap_err();
    /// assert_eq!(e.to_string(), "orthogonal_ cannot initialize a shard: it needs the whole tensor");
    /// ```
    pub fn fill_shard(
        &self,
        full_shape: &[usize],
        offset: u64,
        out: &mut [f32],
        stream: Stream,
    ) -> Result<()> {
        self.fill_shard_with(Kernels::active(), full_shape, offset, out, stream)
    }

    /// [`fill_shard`](Self::fill_shard) with the given kernels (for example
    /// [`Kernels::scalar`], to check that both instruction sets agree).
    ///
    /// # Errors
    /// As [`fill_shard`](Self::fill_shard).
    pub fn fill_shard_with(
        &self,
        kernels: Kernels,
        full_shape: &[usize],
        offset: u64,
        out: &mut [f32],
        stream: Stream,
    ) -> Result<()> {
        self.check_parameters()?;
        if let Some(init) = self.whole_tensor_name() {
            return Err(Error::NotShardable { init });
        }
        let numel = numel_of(full_shape)?;
        let end = offset.checked_add(out.len() as u64);
        if end.is_none_or(|end| end > numel as u64) {
            return Err(Error::ShardOutOfRange {
                offset,
                len: out.len(),
                numel,
            });
        }
        if numel == 0 {
            return Ok(());
        }
        self.plan(full_shape)?.fill(kernels, stream, offset, out);
        Ok(())
    }
}

/// An initialization decided but not yet performed: what a parameter built
/// on "meta" holds (see [`crate::nn::meta`]). The stream was taken when it
/// was made, at the same point of the generator's sequence as an eager
/// [`Init::tensor`] would have, so [`Deferred::fill`] gives the same values
/// bit for bit, in any order and for any part.
#[derive(Debug, Clone, PartialEq)]
pub struct Deferred {
    init: Init,
    shape: Vec<usize>,
    stream: Stream,
    /// A row to zero afterwards (an `Embedding`'s `padding_idx`).
    zero_row: Option<usize>,
}

impl Deferred {
    /// The tensor's shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The initializer.
    pub fn init(&self) -> &Init {
        &self.init
    }

    /// The stream it draws from.
    pub fn stream(&self) -> Stream {
        self.stream
    }

    /// With row `row` zeroed after the init (`Embedding`'s padding row).
    pub(crate) fn with_zero_row(mut self, row: Option<usize>) -> Deferred {
        self.zero_row = row;
        self
    }

    /// Writes elements `[offset, offset + out.len())` (row-major) of the
    /// tensor. An initializer that needs the whole tensor (orthogonal,
    /// sparse, eye, dirac) must be asked for all of it at once.
    ///
    /// # Errors
    /// [`Error::ShardOutOfRange`], or [`Error::NotShardable`] for a part of a
    /// whole-tensor initializer.
    pub fn fill(&self, offset: u64, out: &mut [f32]) -> Result<()> {
        let numel = numel_of(&self.shape)?;
        if offset
            .checked_add(out.len() as u64)
            .is_none_or(|e| e > numel as u64)
        {
            return Err(Error::ShardOutOfRange {
                offset,
                len: out.len(),
                numel,
            });
        }
        if numel == 0 {
            return Ok(());
        }
        let whole = offset == 0 && out.len() == numel;
        match self.init.whole_tensor_name() {
            Some(init) if !whole => return Err(Error::NotShardable { init }),
            _ => self
                .init
                .plan(&self.shape)?
                .fill(Kernels::active(), self.stream, offset, out),
        }
        if let Some(row) = self.zero_row {
            let width: usize = self.shape[1..].iter().product();
            let (lo, hi) = ((row * width) as u64, ((row + 1) * width) as u64);
            let end = offset + out.len() as u64;
            for i in lo.max(offset)..hi.min(end) {
                out[(i - offset) as usize] = 0.0;
            }
        }
        Ok(())
    }

    /// The whole tensor.
    ///
    /// # Errors
    /// [`Error::ShapeOverflow`] or [`Error::OutOfMemory`].
    pub fn tensor(&self) -> Result<Tensor> {
        let mut t = Tensor::zeros(&self.shape)?;
        self.fill(0, t.as_mut_slice())?;
        Ok(t)
    }
}

impl Init {
    /// The initialization [`Init::tensor`] would do for `shape`, deferred:
    /// the parameters and the shape are checked and the stream taken now
    /// (one per random initializer, as `tensor` takes it), nothing is
    /// allocated.
    ///
    /// ```
    /// use nninit::init::{FanMode, Init, Nonlinearity};
    /// use nninit::Generator;
    ///
    /// let init = Init::KaimingUniform { a: 0.0, mode: FanMode::FanIn, nonlinearity: Nonlinearity::Relu };
    /// let eager = init.tensor(&[64, 32], Some(&mut Generator::new(3))).unwrap();
    /// let later = init.defer(&[64, 32], Some(&mut Generator::new(3))).unwrap();
    /// assert_eq!(later.tensor().unwrap(), eager);
    /// ```
    ///
    /// # Errors
    /// As [`Init::tensor`], and [`Error::NotTorchGenerator`]'s counterpart
    /// [`Error::MetaTorchGenerator`] for a torch-exact generator (its serial
    /// stream cannot be deferred).
    pub fn defer(&self, shape: &[usize], generator: Option<&mut Generator>) -> Result<Deferred> {
        with_source(generator, |source| match source {
            Source::Counter(counter) => {
                self.check_parameters()?;
                if numel_of(shape)? > 0 {
                    self.plan(shape)?;
                }
                Ok(Deferred {
                    init: self.clone(),
                    shape: shape.to_vec(),
                    stream: self.take_stream(counter),
                    zero_row: None,
                })
            }
            Source::Torch(_) => Err(Error::MetaTorchGenerator),
        })
    }
}

/// Fills with `U[a, b)` (PyTorch defaults `a = 0`, `b = 1`).
///
/// Errors: `a > b`, a NaN, infinite or out-of-`f32` bound, or `b − a`
/// overflowing `f32` (messages as PyTorch's `uniform_`). `a == b` fills `a`.
///
/// ```
/// use nninit::{Tensor, init};
/// let mut w = Tensor::zeros(&[3, 5]).unwrap();
/// init::uniform_(&mut w, -0.5, 0.5, None).unwrap();
/// assert!(w.as_slice().iter().all(|x| (-0.5..0.5).contains(x)));
/// assert!(init::uniform_(&mut w, 1.0, 0.0, None).is_err());
/// ```
pub fn uniform_(
    tensor: impl InitTarget,
    a: f64,
    b: f64,
    generator: Option<&mut Generator>,
) -> Result<()> {
    Init::Uniform { a, b }.apply(tensor, generator)
}

/// Fills with `N(mean, std²)` (PyTorch defaults `mean = 0`, `std = 1`).
///
/// Errors: `std` negative, NaN or infinite, a non-finite `mean`, or
/// parameters whose samples would overflow `f32`. `std == 0` fills `mean`.
///
/// ```
/// use nninit::{Tensor, init};
/// let mut w = Tensor::zeros(&[8, 4]).unwrap();
/// init::normal_(&mut w, 0.0, 0.01, None).unwrap();
/// assert!(init::normal_(&mut w, 0.0, -1.0, None).is_err());
/// ```
pub fn normal_(
    tensor: impl InitTarget,
    mean: f64,
    std: f64,
    generator: Option<&mut Generator>,
) -> Result<()> {
    Init::Normal { mean, std }.apply(tensor, generator)
}

/// Fills with `N(mean, std²)` conditioned on `[a, b]`: PyTorch's
/// `trunc_normal_` (defaults `mean = 0`, `std = 1`, `a = −2`, `b = 2`; `a` and
/// `b` are absolute bounds, not in units of `std`), done exactly.
///
/// Each value is `mean + std · Φ⁻¹(p)` with `p` uniform in
/// `(Φ((a − mean)/std), Φ((b − mean)/std))`, computed from tail
/// probabilities so that windows far in a tail (`[2σ, 3σ]`, `[5σ, 6σ]`) are
/// as accurate as the default one, then clamped to `[a, b]` to undo rounding.
/// Every value lies in `[a, b]`; there is no pile-up at the bounds and no
/// outlier for a tiny `std` (the PyTorch bugs #145498 and #155588). Method
/// and measured accuracy: [`TruncatedNormal`](crate::distributions::TruncatedNormal).
///
/// Errors: `std <= 0`, NaN or infinite; a non-finite `mean`; a NaN bound;
/// `a >= b`; no `f32` in `[a, b]`; a window entirely more than 37 standard
/// deviations from the mean (probability below 6e-300). `a = −∞` or
/// `b = +∞` are allowed.
///
/// ```
/// use nninit::{Generator, Tensor, init};
/// let mut w = Tensor::zeros(&[64, 64]).unwrap();
/// let mut g = Generator::new(0);
/// init::trunc_normal_(&mut w, 0.0, 0.02, -0.04, 0.04, Some(&mut g)).unwrap();
/// assert!(w.as_slice().iter().all(|x| (-0.04..=0.04).contains(x)));
/// assert!(init::trunc_normal_(&mut w, 0.0, 1.0, 2.0, -2.0, None).is_err());
/// ```
pub fn trunc_normal_(
    tensor: impl InitTarget,
    mean: f64,
    std: f64,
    a: f64,
    b: f64,
    generator: Option<&mut Generator>,
) -> Result<()> {
    Init::TruncNormal { mean, std, a, b }.apply(tensor, generator)
}

/// Fills with `val` (an error only if `val` overflows `f32`; NaN is allowed,
/// as in PyTorch).
pub fn constant_(tensor: impl InitTarget, val: f64) -> Result<()> {
    Init::Constant { val }.apply(tensor, None)
}

/// Fills with ones.
pub fn ones_(tensor: impl InitTarget) -> Result<()> {
    constant_(tensor, 1.0)
}

/// Fills with zeros.
pub fn zeros_(tensor: impl InitTarget) -> Result<()> {
    constant_(tensor, 0.0)
}

/// Glorot/Xavier uniform: `U(−a, a)`, `a = gain · √(6 / (fan_in + fan_out))`
/// (PyTorch default `gain = 1`). Needs at least 2 dimensions.
///
/// ```
/// use nninit::{Tensor, init};
/// let mut w = Tensor::zeros(&[8, 4]).unwrap();
/// init::xavier_uniform_(&mut w, 1.0, None).unwrap();
/// let a = (6.0f32 / 12.0).sqrt();
/// assert!(w.as_slice().iter().all(|x| x.abs() <= a));
/// ```
pub fn xavier_uniform_(
    tensor: impl InitTarget,
    gain: f64,
    generator: Option<&mut Generator>,
) -> Result<()> {
    Init::XavierUniform { gain }.apply(tensor, generator)
}

/// Glorot/Xavier normal: `N(0, std²)`, `std = gain · √(2 / (fan_in + fan_out))`
/// (PyTorch default `gain = 1`).
///
/// Errors: a non-finite `gain` ([`Error::Gain`]); fewer than 2 dimensions
/// ([`Error::FanDims`]) unless the tensor is empty.
///
/// ```
/// use nninit::{Generator, Tensor, init};
/// let mut w = Tensor::zeros(&[400, 600]).unwrap();
/// init::xavier_normal_(&mut w, 1.0, Some(&mut Generator::new(0))).unwrap();
/// let var = w.as_slice().iter().map(|x| (x * x) as f64).sum::<f64>() / w.numel() as f64;
/// assert!((var / (2.0 / 1000.0) - 1.0).abs() < 0.02); // std² = 2 / (fan_in + fan_out)
/// ```
pub fn xavier_normal_(
    tensor: impl InitTarget,
    gain: f64,
    generator: Option<&mut Generator>,
) -> Result<()> {
    Init::XavierNormal { gain }.apply(tensor, generator)
}

/// He/Kaiming uniform: `U(−bound, bound)`, `bound = √3 · gain / √fan` with
/// `gain = calculate_gain(nonlinearity, a)`. PyTorch's defaults are `a = 0`,
/// [`FanMode::FanIn`], [`Nonlinearity::LeakyRelu`]. Needs at least 2
/// dimensions.
///
/// `nn.Linear`'s default weight init is `kaiming_uniform_(w, √5, FanIn,
/// LeakyRelu)`, that is `U(±1/√in_features)`.
///
/// Errors: a non-finite `a` ([`Error::NegativeSlope`], for leaky_relu);
/// fewer than 2 dimensions ([`Error::FanDims`]) unless the tensor is empty.
///
/// ```
/// use nninit::init::{self, FanMode, Nonlinearity};
/// use nninit::Tensor;
/// let mut w = Tensor::zeros(&[10, 25]).unwrap();
/// init::kaiming_uniform_(&mut w, 5f64.sqrt(), FanMode::FanIn, Nonlinearity::LeakyRelu, None).unwrap();
/// assert!(w.as_slice().iter().all(|x| x.abs() <= 1.0 / 5.0)); // 1/√25
/// ```
pub fn kaiming_uniform_(
    tensor: impl InitTarget,
    a: f64,
    mode: FanMode,
    nonlinearity: Nonlinearity,
    generator: Option<&mut Generator>,
) -> Result<()> {
    Init::KaimingUniform {
        a,
        mode,
        nonlinearity,
    }
    .apply(tensor, generator)
}

/// He/Kaiming normal: `N(0, std²)`, `std = gain / √fan` with
/// `gain = calculate_gain(nonlinearity, a)` (defaults as
/// [`kaiming_uniform_`]).
///
/// Errors: as [`kaiming_uniform_`].
///
/// ```
/// use nninit::init::{self, FanMode, Nonlinearity};
/// use nninit::{Generator, Tensor};
/// // A conv weight: fan_out = 64 · 3 · 3.
/// let mut w = Tensor::zeros(&[64, 32, 3, 3]).unwrap();
/// let mut g = Generator::new(1);
/// init::kaiming_normal_(&mut w, 0.0, FanMode::FanOut, Nonlinearity::Relu, Some(&mut g)).unwrap();
/// let var = w.as_slice().iter().map(|x| (x * x) as f64).sum::<f64>() / w.numel() as f64;
/// assert!((var / (2.0 / 576.0) - 1.0).abs() < 0.05); // gain² / fan_out
/// ```
pub fn kaiming_normal_(
    tensor: impl InitTarget,
    a: f64,
    mode: FanMode,
    nonlinearity: Nonlinearity,
    generator: Option<&mut Generator>,
) -> Result<()> {
    Init::KaimingNormal {
        a,
        mode,
        nonlinearity,
    }
    .apply(tensor, generator)
}

/// Fills a 2-D tensor with the identity matrix: `w[i][j] = 1` if `i == j`,
/// else 0; for a rectangular `rows × cols` tensor, ones at `(i, i)` for
/// `i < min(rows, cols)` (as `torch.nn.init.eye_`). Not random: takes no
/// stream.
///
/// Errors: a tensor that is not 2-D, `Only tensors with 2 dimensions are
/// supported` ([`Error::InitDims`]), unless it has no elements (a no-op, as
/// for every initializer).
///
/// ```
/// use nninit::{Tensor, init};
/// let mut w = Tensor::full(&[2, 3], 7.0).unwrap();
/// init::eye_(&mut w).unwrap();
/// assert_eq!(w.as_slice(), &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
/// let e = init::eye_(&mut Tensor::zeros(&[2, 2, 2]).unwrap()).unwrap_err();
/// assert_eq!(e.to_string(), "Only tensors with 2 dimensions are supported");
/// ```
pub fn eye_(tensor: impl InitTarget) -> Result<()> {
    Init::Eye.apply(tensor, None)
}

/// Fills a 3-, 4- or 5-D convolution weight `[out, in, k…]` with the Dirac
/// delta, so that the convolution preserves the identity of its inputs (as
/// `torch.nn.init.dirac_`, PyTorch's default `groups = 1`): zeros, then with
/// `opg = out / groups` output channels per group, a one at the centre tap
/// `[g·opg + d, d, k₁/2, k₂/2, …]` for every group `g` and every
/// `d < min(opg, in)`. Exactly `groups · min(opg, in)` ones. Not random:
/// takes no stream.
///
/// Errors: `groups == 0` ([`Error::DiracGroups`], even on an empty tensor);
/// a tensor that is not 3-, 4- or 5-D (`Only tensors with 3, 4, or 5
/// dimensions are supported`, [`Error::InitDims`]); `out` not a multiple of
/// `groups` (`dim 0 must be divisible by groups`, [`Error::DiracDivisible`]).
/// The shape errors do not apply to a zero-element tensor (a no-op).
///
/// ```
/// use nninit::{Tensor, init};
/// // A conv1d weight [out = 4, in = 2, k = 3] in 2 groups: opg = 2.
/// let mut w = Tensor::zeros(&[4, 2, 3]).unwrap();
/// init::dirac_(&mut w, 2).unwrap();
/// assert_eq!(w.sum(), 4.0);
/// assert_eq!(w[[0, 0, 1]], 1.0);
/// assert_eq!(w[[1, 1, 1]], 1.0);
/// assert_eq!(w[[2, 0, 1]], 1.0);
/// assert_eq!(w[[3, 1, 1]], 1.0);
/// assert!(init::dirac_(&mut w, 3).is_err()); // 4 is not divisible by 3
/// ```
pub fn dirac_(tensor: impl InitTarget, groups: usize) -> Result<()> {
    Init::Dirac { groups }.apply(tensor, None)
}

/// Fills with a (semi-)orthogonal matrix times `gain` (Saxe et al. 2013; as
/// `torch.nn.init.orthogonal_`, PyTorch's default `gain = 1`).
///
/// The tensor (at least 2-D) is viewed as a `rows × cols` matrix with
/// `rows = shape[0]` and `cols = numel / rows`. That matrix is filled with
/// standard normals (the values [`normal_`]`(t, 0, 1)` would write from the
/// same generator state: one stream), transposed when `rows < cols`, and
/// factored `A = QR` by a blocked Householder QR (in `f32`, norms and
/// reflector scalars in `f64`). Each column of `Q` is multiplied by the sign
/// of `R`'s diagonal entry (PyTorch's correction, which makes the result
/// uniformly distributed over the orthogonal matrices; a zero diagonal entry
/// counts as `+1`, where PyTorch would zero the column); `Q` is transposed
/// back if needed, and multiplied by `gain`. So `WᵀW = gain²·I` (tall or
/// square) or `WWᵀ = gain²·I` (wide), to within about `1e-6·gain²`.
///
/// The values are a pure function of the generator state and the shape:
/// the QR's products go through [`crate::gemm`], parallel, with one
/// summation order, so the bits are the same on every instruction set and
/// thread count. With a torch-exact generator the draws are PyTorch's (its
/// QR is LAPACK's, so the result matches PyTorch's to about 1e-6).
///
/// Errors: `gain` NaN, infinite or beyond `f32` ([`Error::Gain`]); fewer
/// than 2 dimensions (`Only tensors with 2 or more dimensions are
/// supported`, [`Error::InitDims`]) unless the tensor is empty (a no-op).
///
/// ```
/// use nninit::{Generator, Tensor, init};
/// let mut w = Tensor::zeros(&[6, 4]).unwrap();
/// init::orthogonal_(&mut w, 2.0, Some(&mut Generator::new(0))).unwrap();
/// // WᵀW = 4·I
/// for i in 0..4 {
///     for j in 0..4 {
///         let d: f32 = (0..6).map(|r| w[[r, i]] * w[[r, j]]).sum();
///         let want = if i == j { 4.0 } else { 0.0 };
///         assert!((d - want).abs() < 1e-5);
///     }
/// }
/// ```
pub fn orthogonal_(
    tensor: impl InitTarget,
    gain: f64,
    generator: Option<&mut Generator>,
) -> Result<()> {
    Init::Orthogonal { gain }.apply(tensor, generator)
}

/// Fills a 2-D `rows × cols` tensor as a sparse matrix (Martens 2010; as
/// `torch.nn.init.sparse_`, PyTorch's default `std = 0.01`): `N(0, std²)`
/// values, then in each column exactly `⌈sparsity · rows⌉` of them (computed
/// in `f64`) set to zero, at distinct rows chosen at random.
///
/// Unlike PyTorch's, which ignores its `generator` argument, the zero rows
/// come from the generator too: the call takes one stream `s`; the normal
/// values are those [`normal_`]`(t, 0, std)` would write from `s`, and
/// column `c` chooses its zero rows with a partial Fisher–Yates shuffle of
/// `0..rows` (for `i` in `0..zeros`: swap positions `i` and
/// `i + k`, `k` uniform in `0..rows − i` by Lemire's unbiased multiply-shift
/// method, and zero the row now at position `i`), driven by the
/// xoshiro256++ generator of lane 0 of block `c` of `s.substream(1)` (see
/// [`crate::rng`]). The result is a pure function of the generator state and
/// the parameters, on any number of threads and instruction set.
///
/// Errors: `sparsity` outside `[0, 1]` or NaN ([`Error::Sparsity`]; PyTorch
/// does not check); `std` as for [`normal_`]; a tensor that is not 2-D (`Only
/// tensors with 2 dimensions are supported`, [`Error::InitDims`]) unless it
/// is empty (a no-op).
///
/// ```
/// use nninit::{Generator, Tensor, init};
/// let mut w = Tensor::zeros(&[10, 3]).unwrap();
/// init::sparse_(&mut w, 0.25, 0.01, Some(&mut Generator::new(0))).unwrap();
/// for c in 0..3 {
///     let zeros = (0..10).filter(|&r| w[[r, c]] == 0.0).count();
///     assert_eq!(zeros, 3); // ⌈0.25 · 10⌉
/// }
/// assert!(init::sparse_(&mut w, 1.5, 0.01, None).is_err());
/// ```
pub fn sparse_(
    tensor: impl InitTarget,
    sparsity: f64,
    std: f64,
    generator: Option<&mut Generator>,
) -> Result<()> {
    Init::Sparse { sparsity, std }.apply(tensor, generator)
}

/// `w = w · (|w| >= threshold)` in place, in one vectorized pass: elements
/// with `|w| < threshold` become zero (with their sign), NaN and ±∞ stay.
/// The chapter's custom initializer is `uniform_(w, -10, 10)` then
/// `threshold_mask_(w, 5)`. A NaN threshold is an error.
pub fn threshold_mask_(tensor: impl InitTarget, threshold: f32) -> Result<()> {
    tensor.with_elements(|_, data| Kernels::active().threshold_mask(data, threshold))
}

#[cfg(test)]
mod tests {
    use super::fans::kaiming_std;
    use super::*;

    #[test]
    fn gains_are_pytorchs() {
        let g = |n: &str, p: Option<f64>| calculate_gain(n.parse().unwrap(), p).unwrap();
        for n in [
            "linear",
            "conv1d",
            "conv2d",
            "conv3d",
            "conv_transpose1d",
            "conv_transpose2d",
            "conv_transpose3d",
            "sigmoid",
        ] {
            assert_eq!(g(n, None), 1.0, "{n}");
        }
        assert_eq!(g("tanh", None), 5.0 / 3.0);
        assert_eq!(g("relu", None), std::f64::consts::SQRT_2);
        assert_eq!(g("leaky_relu", None), 1.4141428569978354);
        assert_eq!(g("leaky_relu", Some(10.0)), 0.14071950894605836);
        assert_eq!(g("leaky_relu", Some(0.0)), std::f64::consts::SQRT_2);
        assert_eq!(g("selu", None), 0.75);
        assert_eq!(
            "swish".parse::<Nonlinearity>().unwrap_err().to_string(),
            "Unsupported nonlinearity swish"
        );
        assert_eq!(
            calculate_gain(Nonlinearity::LeakyRelu, Some(f64::NAN))
                .unwrap_err()
                .to_string(),
            "negative_slope nan not a valid number"
        );
        for n in Nonlinearity::ALL {
            assert_eq!(n.name().parse::<Nonlinearity>().unwrap(), n);
        }
    }

    #[test]
    fn fans() {
        assert_eq!(calculate_fan_in_and_fan_out(&[8, 4]).unwrap(), (4, 8));
        assert_eq!(
            calculate_fan_in_and_fan_out(&[16, 3, 5, 5]).unwrap(),
            (75, 400)
        );
        assert_eq!(
            calculate_fan_in_and_fan_out(&[5]).unwrap_err().to_string(),
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
        );
        assert_eq!(
            calculate_correct_fan(&[16, 3, 5, 5], FanMode::FanOut).unwrap(),
            400
        );
        assert_eq!("FAN_OUT".parse::<FanMode>().unwrap(), FanMode::FanOut);
        assert_eq!(
            "fan_avg".parse::<FanMode>().unwrap_err().to_string(),
            "Mode fan_avg not supported, please use one of fan_in, fan_out"
        );
        assert!(calculate_fan_in_and_fan_out(&[usize::MAX, 2, 2]).is_err());
    }

    #[test]
    fn zero_element_tensors_are_no_ops_but_parameters_are_checked() {
        let mut empty = Tensor::zeros(&[0]).unwrap();
        let mut g = Generator::new(1);
        xavier_uniform_(&mut empty, 1.0, Some(&mut g)).unwrap();
        kaiming_normal_(
            &mut empty,
            0.0,
            FanMode::FanIn,
            Nonlinearity::Relu,
            Some(&mut g),
        )
        .unwrap();
        assert_eq!(g.calls(), Some(2), "each random call takes one stream");
        assert!(uniform_(&mut empty, 1.0, 0.0, Some(&mut g)).is_err());
        assert!(normal_(&mut empty, 0.0, f64::NAN, Some(&mut g)).is_err());
        assert_eq!(g.calls(), Some(2), "a failed call takes none");
        let mut w = Tensor::zeros(&[5, 0]).unwrap();
        kaiming_uniform_(
            &mut w,
            5f64.sqrt(),
            FanMode::FanIn,
            Nonlinearity::LeakyRelu,
            None,
        )
        .unwrap();
    }

    #[test]
    fn kaiming_matches_linears_default_bound() {
        for fan_in in [1usize, 3, 4, 8, 1000, 4096] {
            let std = kaiming_std(
                &[7, fan_in],
                5f64.sqrt(),
                FanMode::FanIn,
                Nonlinearity::LeakyRelu,
            )
            .unwrap();
            let bound = (3f64.sqrt() * std) as f32;
            assert_eq!(
                bound,
                (1.0 / (fan_in as f64).sqrt()) as f32,
                "fan_in {fan_in}"
            );
        }
    }

    #[test]
    fn shards_reject_ranges_outside_the_shape() {
        let init = Init::Uniform { a: 0.0, b: 1.0 };
        let mut out = vec![0.0; 10];
        let s = Stream::from_key(1);
        assert!(init.fill_shard(&[3, 4], 2, &mut out, s).is_ok());
        let e = init.fill_shard(&[3, 4], 3, &mut out, s).unwrap_err();
        assert_eq!(
            e.to_string(),
            "shard [3, 13) is outside a tensor of 12 elements"
        );
        assert!(init.fill_shard(&[3, 4], u64::MAX, &mut out, s).is_err());
    }
}
