//! # nninit
//!
//! PyTorch's `torch.nn.init` and `nn.Module` parameter management for Rust:
//! deterministic, hand-vectorized and parallel on the CPU.
//!
//! * [`Tensor`]: a flat, 64-byte-aligned `f32` buffer with a row-major shape,
//!   element and row access, in-place arithmetic and PyTorch-style printing.
//! * [`Generator`], [`manual_seed`] and [`Stream`]: seedable, counter-based
//!   random streams. **Every random fill is a pure function of (generator
//!   state, element index, parameters)**: the same bits on any number of
//!   threads, on the AVX2 and the scalar path, and for a shard of a tensor
//!   versus the whole (see [`rng`] for the design).
//! * [`torch`] and [`Generator::torch`]: PyTorch's own numbers. A torch-exact
//!   generator reproduces PyTorch 2.15's CPU stream (MT19937 and its
//!   transforms), so `torch.manual_seed(s)` followed by the same calls gives
//!   the same tensors, bit for bit, and states move between Python and Rust.
//! * [`distributions`]: validated uniform, normal and truncated normal
//!   distributions.
//! * [`init`]: `torch.nn.init`'s initializers, with PyTorch's names,
//!   defaults and error texts, on tensors and parameters, and sharded.
//! * [`io`]: `.npy` files for numpy.
//! * `candle` (cargo feature `candle`): a `candle_nn::VarBuilder` whose
//!   variables come from nninit, keyed by name or in PyTorch's order.
//! * `ndarray_interop` (cargo feature `ndarray`): every initializer on
//!   `ndarray` arrays and views, in place, and [`Tensor`] to and from
//!   `ArrayD<f32>`.
//! * [`kernels`]: the fill kernels (uniform, Box–Muller normal, inverse-CDF
//!   truncated normal, constant,
//!   threshold masking), written once over a small vector trait, compiled for
//!   AVX2+FMA and for portable Rust, chosen at run time.
//!
//! ```
//! use nninit::{Generator, Tensor};
//!
//! let mut g = Generator::new(0);
//! let w = Tensor::randn(&[2, 3], Some(&mut g)).unwrap();
//! let again = Tensor::randn(&[2, 3], Some(&mut Generator::new(0))).unwrap();
//! assert_eq!(w, again);
//! println!("{w}"); // tensor([[...]])
//! ```
//!
//! ## Where we differ from PyTorch
//! We are strict where PyTorch is lenient: a NaN or infinite standard
//! deviation, a NaN bound, or parameters whose samples would overflow `f32`
//! are errors rather than tensors full of NaN. And how far a generator moves
//! does not depend on tensor sizes: each fill takes exactly one stream.

#[cfg(feature = "candle")]
pub mod candle;
pub mod dist;
pub mod distributions;
mod error;
pub mod gemm;
pub mod init;
pub mod io;
pub mod kernels;
mod linalg;
#[cfg(feature = "ndarray")]
pub mod ndarray_interop;
pub mod nn;
pub mod rng;
mod special;
mod tensor;
pub mod torch;

pub use error::{Error, ModuleNameProblem, Result};
pub use rng::{
    Generator, GeneratorState, Stream, initial_seed, manual_seed, with_global_generator,
};
pub use tensor::{AnyTensor, IntTensor, Tensor};

/// The README's Rust example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
