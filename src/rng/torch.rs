//! PyTorch's CPU default generator (`at::CPUGeneratorImpl`): MT19937, the
//! cached double normal, and the 5056-byte `torch.get_rng_state()` layout.
//!
//! The generator is serial: every draw advances one 32-bit word stream, so
//! the numbers a call gets depend on every call before it, exactly as in
//! PyTorch. The transforms that turn words into values (PyTorch 2.15's
//! uniform, its AVX2 Box–Muller kernel, its double-precision small-size
//! normal) are in [`crate::kernels`] and [`crate::distributions`].
//!
//! # Seeding
//! `manual_seed(s)` keeps all 64 bits of `s` as the initial seed but seeds
//! the engine with the low 32 bits only (`init_with_uint32`), so seeds
//! `3` and `2⁴⁰ + 3` give the same numbers, as in PyTorch. It also clears
//! the cached normals.

use super::mt19937::{Mt19937, N};
use crate::error::{Error, Result};

/// Size in bytes of PyTorch's CPU generator state
/// (`torch.get_rng_state()`, a `CPUGeneratorImplState`).
pub const STATE_SIZE: usize = 5056;

// Byte offsets in the state (little-endian `CPUGeneratorImplState`).
const OFF_SEED: usize = 0;
const OFF_LEFT: usize = 8;
const OFF_SEEDED: usize = 12;
const OFF_NEXT: usize = 16;
const OFF_STATE: usize = 24;
const OFF_NORMAL_X: usize = 5016;
const OFF_NORMAL_Y: usize = 5024;
const OFF_NORMAL_RHO: usize = 5032;
const OFF_NORMAL_VALID: usize = 5040;
const OFF_FLOAT_NORMAL: usize = 5048;
const OFF_FLOAT_NORMAL_VALID: usize = 5052;

/// PyTorch's CPU generator (public but unnameable outside the crate, so that
/// sealed traits can mention it): the engine, the seed it was built from and the
/// cached normal samples.
#[derive(Clone)]
pub struct TorchGenerator {
    /// All 64 bits of the seed (`initial_seed()`); the engine used the low 32.
    seed: u64,
    pub(crate) engine: Mt19937,
    /// `next_double_normal_sample`: the second value of the last scalar-path
    /// Box–Muller pair, a raw `N(0, 1)` (mean and std are applied on use).
    pub(crate) next_double_normal: Option<f64>,
    /// `next_float_normal_sample`: carried through the state bytes; PyTorch's
    /// CPU kernels never set it.
    next_float_normal: Option<f32>,
}

impl PartialEq for TorchGenerator {
    fn eq(&self, other: &Self) -> bool {
        self.seed == other.seed
            && self.engine == other.engine
            && self.next_double_normal.map(f64::to_bits)
                == other.next_double_normal.map(f64::to_bits)
            && self.next_float_normal.map(f32::to_bits) == other.next_float_normal.map(f32::to_bits)
    }
}

impl Eq for TorchGenerator {}

impl std::fmt::Debug for TorchGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorchGenerator")
            .field("seed", &self.seed)
            .field("left", &self.engine.left)
            .field("next", &self.engine.next)
            .field("next_double_normal", &self.next_double_normal)
            .finish_non_exhaustive()
    }
}

impl TorchGenerator {
    /// `torch.Generator().manual_seed(seed)`.
    pub(crate) fn new(seed: u64) -> TorchGenerator {
        TorchGenerator {
            seed,
            engine: Mt19937::new(seed as u32),
            next_double_normal: None,
            next_float_normal: None,
        }
    }

    /// The full 64-bit seed.
    pub(crate) fn initial_seed(&self) -> u64 {
        self.seed
    }

    /// `random()`: one 32-bit word.
    pub(crate) fn random(&mut self) -> u32 {
        self.engine.next_u32()
    }

    /// `random64()`: two words, the first is the high half.
    pub(crate) fn random64(&mut self) -> u64 {
        let hi = self.random() as u64;
        let lo = self.random() as u64;
        (hi << 32) | lo
    }

    /// The state bytes, as `torch.get_rng_state()` returns them.
    pub(crate) fn state_bytes(&self) -> [u8; STATE_SIZE] {
        let mut b = [0u8; STATE_SIZE];
        b[OFF_SEED..OFF_SEED + 8].copy_from_slice(&self.seed.to_le_bytes());
        b[OFF_LEFT..OFF_LEFT + 4].copy_from_slice(&(self.engine.left as i32).to_le_bytes());
        b[OFF_SEEDED..OFF_SEEDED + 4].copy_from_slice(&1i32.to_le_bytes());
        b[OFF_NEXT..OFF_NEXT + 8].copy_from_slice(&u64::from(self.engine.next).to_le_bytes());
        for (j, w) in self.engine.state.iter().enumerate() {
            let at = OFF_STATE + 8 * j;
            b[at..at + 8].copy_from_slice(&u64::from(*w).to_le_bytes());
        }
        // normal_x and normal_rho stay 0; normal_y holds the cached value.
        let y = self.next_double_normal.unwrap_or(0.0);
        b[OFF_NORMAL_Y..OFF_NORMAL_Y + 8].copy_from_slice(&y.to_le_bytes());
        let valid = i32::from(self.next_double_normal.is_some());
        b[OFF_NORMAL_VALID..OFF_NORMAL_VALID + 4].copy_from_slice(&valid.to_le_bytes());
        let fy = self.next_float_normal.unwrap_or(0.0);
        b[OFF_FLOAT_NORMAL..OFF_FLOAT_NORMAL + 4].copy_from_slice(&fy.to_le_bytes());
        b[OFF_FLOAT_NORMAL_VALID] = u8::from(self.next_float_normal.is_some());
        b
    }

    /// A generator in the state `bytes` (`torch.set_rng_state`), checked as
    /// PyTorch checks it, and more strictly where PyTorch would read out of
    /// bounds or silently truncate.
    pub(crate) fn from_state_bytes(bytes: &[u8]) -> Result<TorchGenerator> {
        let bad = |reason: String| Error::RngState { reason };
        if bytes.len() != STATE_SIZE {
            return Err(bad(format!(
                "Expected a CPUGeneratorImplState of size {STATE_SIZE} but found the input RNG state size to be {}",
                bytes.len()
            )));
        }
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let i32_at = |at: usize| i32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let seed = u64_at(OFF_SEED);
        let left = i32_at(OFF_LEFT);
        let seeded = i32_at(OFF_SEEDED);
        let next = u64_at(OFF_NEXT);
        let counters_ok = u32::try_from(left)
            .ok()
            .zip(u32::try_from(next).ok())
            .filter(|&(l, n)| Mt19937::counters_valid(l, n));
        let Some((left, next)) = counters_ok.filter(|_| seeded == 1) else {
            return Err(bad(format!(
                "Invalid mt19937 state (left={left}, next={next}, seeded={seeded})"
            )));
        };
        let mut state = [0u32; N];
        for (j, w) in state.iter_mut().enumerate() {
            let v = u64_at(OFF_STATE + 8 * j);
            *w = u32::try_from(v).map_err(|_| {
                bad(format!(
                    "Invalid mt19937 state: word {j} is {v}, not a 32-bit value"
                ))
            })?;
        }
        let normal_valid = i32_at(OFF_NORMAL_VALID);
        let next_double_normal = match normal_valid {
            0 => None,
            1 => Some(f64::from_le_bytes(
                bytes[OFF_NORMAL_Y..OFF_NORMAL_Y + 8]
                    .try_into()
                    .expect("8 bytes"),
            )),
            v => {
                return Err(bad(format!("normal_is_valid must be 0 or 1, found {v}")));
            }
        };
        let next_float_normal = match bytes[OFF_FLOAT_NORMAL_VALID] {
            0 => None,
            1 => Some(f32::from_le_bytes(
                bytes[OFF_FLOAT_NORMAL..OFF_FLOAT_NORMAL + 4]
                    .try_into()
                    .expect("4 bytes"),
            )),
            v => {
                return Err(bad(format!(
                    "is_next_float_normal_sample_valid must be 0 or 1, found {v}"
                )));
            }
        };
        // normal_x and normal_rho are unused by PyTorch 2.x; they are not
        // carried (get_state writes them as 0).
        let _ = (OFF_NORMAL_X, OFF_NORMAL_RHO);
        Ok(TorchGenerator {
            seed,
            engine: Mt19937 { state, left, next },
            next_double_normal,
            next_float_normal,
        })
    }
}

/// A validated PyTorch CPU generator state (the 5056 bytes of
/// `torch.get_rng_state()`), as held by
/// [`GeneratorState::Torch`](super::GeneratorState::Torch).
///
/// ```
/// use nninit::rng::TorchState;
/// assert!(TorchState::from_bytes(&[0u8; 12]).is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TorchState(pub(crate) Box<TorchGenerator>);

impl TorchState {
    /// Parses PyTorch's state bytes
    /// (`torch.get_rng_state().numpy().tobytes()` in Python).
    ///
    /// # Errors
    /// [`Error::RngState`] for a size other than [`STATE_SIZE`], counters
    /// that PyTorch would reject (`left` outside `1..=624`, `next > 624`,
    /// `seeded != 1`) or that would read past the state
    /// (`left + next > 625`), a state word that is not a 32-bit value, or a
    /// validity flag other than 0 or 1.
    pub fn from_bytes(bytes: &[u8]) -> Result<TorchState> {
        TorchGenerator::from_state_bytes(bytes).map(|g| TorchState(Box::new(g)))
    }

    /// The 5056 bytes, byte for byte what `torch.get_rng_state()` holds for
    /// the same generator.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.state_bytes().to_vec()
    }

    /// The 64-bit seed recorded in the state.
    pub fn initial_seed(&self) -> u64 {
        self.0.initial_seed()
    }
}

impl std::fmt::Debug for TorchState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TorchState").field(&self.0).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_bytes_round_trip_and_checks() {
        let mut g = TorchGenerator::new((1 << 40) + 3);
        assert_eq!(g.initial_seed(), (1 << 40) + 3);
        assert_eq!(g.engine, Mt19937::new(3));
        for _ in 0..1000 {
            g.random();
        }
        g.next_double_normal = Some(-0.25);
        let bytes = g.state_bytes();
        let back = TorchGenerator::from_state_bytes(&bytes).unwrap();
        assert_eq!(back, g);
        assert_eq!(back.state_bytes(), bytes);

        let mut bad = bytes;
        bad[OFF_LEFT..OFF_LEFT + 4].copy_from_slice(&0i32.to_le_bytes());
        let e = TorchGenerator::from_state_bytes(&bad).unwrap_err();
        assert!(e.to_string().contains("Invalid mt19937 state"), "{e}");
        let mut bad = bytes;
        bad[OFF_STATE + 8 * 5 + 4] = 1;
        let e = TorchGenerator::from_state_bytes(&bad).unwrap_err();
        assert!(e.to_string().contains("word 5"), "{e}");
        let e = TorchGenerator::from_state_bytes(&bytes[..100]).unwrap_err();
        assert!(e.to_string().contains("size to be 100"), "{e}");
    }

    #[test]
    fn random64_takes_the_high_half_first() {
        let mut a = TorchGenerator::new(7);
        let mut b = a.clone();
        let hi = b.random() as u64;
        let lo = b.random() as u64;
        assert_eq!(a.random64(), (hi << 32) | lo);
    }
}
