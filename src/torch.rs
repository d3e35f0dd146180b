//! PyTorch's own numbers: the global generator in torch-exact mode.
//!
//! After [`manual_seed`]`(s)`, every call that draws from the global
//! generator (`None` as its generator) consumes PyTorch's CPU random stream
//! exactly as the same PyTorch call does, so a Rust program written like the
//! Python one holds the same tensors, bit for bit:
//!
//! ```
//! use nninit::nn::{Linear, Module};
//! use nninit::{Tensor, init};
//!
//! // torch.manual_seed(0)
//! nninit::torch::manual_seed(0);
//! // x = torch.rand(2, 4); layer = nn.Linear(4, 3); nn.init.normal_(layer.weight, 0, 0.01)
//! let x = Tensor::rand(&[2, 4], None)?;
//! let layer = Linear::new(4, 3)?;
//! init::normal_(&layer.weight, 0.0, 0.01, None)?;
//! assert_eq!(x.as_slice()[..3], [0.49625659, 0.76822180, 0.08847743]);
//! # Ok::<(), nninit::Error>(())
//! ```
//!
//! A [`Generator::torch`] value does the same for calls given
//! `Some(&mut generator)`, like a `torch.Generator` passed as `generator=`.
//!
//! # What is exact
//! Checked bit for bit against PyTorch 2.15.0 (x86-64, whose CPU kernels for
//! these calls are the AVX2 ones on every AVX2 or AVX-512 machine) for `f32`:
//! `rand`, `randn`, `uniform_`, `normal_` (the vectorized path for 16
//! elements or more and the double-precision path below it, with its cached
//! sample that outlives calls and that `manual_seed` clears), `xavier_*`,
//! `kaiming_*`, `trunc_normal_` (both branches of 2.15's rejection sampler),
//! `sparse_` (its `randperm` per column), `nn.Linear` and `LazyLinear`'s
//! default init, and the 5056-byte state after every call. Where the values
//! rest on libm or LAPACK it is as close as they allow:
//! * the small `normal_` path (fewer than 16 elements) calls the platform's
//!   `log1p`, `sin` and `cos` in `f64` as PyTorch calls glibc's; after
//!   rounding to `f32` a last-bit difference between libms practically never
//!   shows;
//! * `trunc_normal_`'s `p ≤ 0.3` branch takes `log` of uniforms in `f32`;
//!   PyTorch uses MKL's `vsLn`, which is not correctly rounded on 15 372 of
//!   the 2²⁴ possible inputs, we use the correctly rounded value: a sample
//!   changes only if an acceptance threshold falls exactly between the two
//!   (about 1e-10 per test);
//! * `orthogonal_` makes PyTorch's draws, but its QR is this crate's, not
//!   LAPACK's: the result matches PyTorch's to about 1e-6.
//!
//! [`Generator::torch`]: crate::Generator::torch

use crate::error::{Error, Result};
use crate::rng::{self, Generator, GeneratorState, TorchState};

pub use crate::rng::STATE_SIZE;

/// Seeds the global generator and makes it torch-exact, like
/// `torch.manual_seed(seed)` (negative Python seeds are taken modulo 2⁶⁴, as
/// PyTorch does: pass `seed as u64`). The cached normal sample is cleared.
pub fn manual_seed(seed: u64) {
    rng::set_global(Generator::torch(seed));
}

/// The global generator's seed, like `torch.initial_seed()` (all 64 bits).
pub fn initial_seed() -> u64 {
    rng::initial_seed()
}

/// The global generator's state as `torch.get_rng_state()` holds it
/// (5056 bytes; in Python, `torch.get_rng_state().numpy().tobytes()`).
///
/// # Errors
/// [`Error::NotTorchGenerator`] if the global generator is counter-based.
pub fn get_rng_state() -> Result<Vec<u8>> {
    rng::with_global_generator(|g| match g.state() {
        GeneratorState::Torch(s) => Ok(s.to_bytes()),
        _ => Err(Error::NotTorchGenerator {
            op: "get_rng_state",
        }),
    })
}

/// Makes the global generator torch-exact with the state `bytes`, like
/// `torch.set_rng_state(torch.frombuffer(bytes, dtype=torch.uint8))`: a
/// state saved in Python continues here.
///
/// ```
/// nninit::torch::manual_seed(42);
/// let saved = nninit::torch::get_rng_state().unwrap();
/// let a = nninit::Tensor::randn(&[5], None).unwrap();
/// nninit::torch::set_rng_state(&saved).unwrap();
/// assert_eq!(nninit::Tensor::randn(&[5], None).unwrap(), a);
/// ```
///
/// # Errors
/// [`Error::RngState`] if `bytes` is not a valid state (see
/// [`TorchState::from_bytes`]); the global generator is then unchanged.
pub fn set_rng_state(bytes: &[u8]) -> Result<()> {
    let state = TorchState::from_bytes(bytes)?;
    rng::with_global_generator(|g| g.set_state(GeneratorState::Torch(state)));
    Ok(())
}
