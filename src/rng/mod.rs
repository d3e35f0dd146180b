//! Seedable generators and the counter-based streams every random fill draws from.
//!
//! # The determinism contract
//!
//! A random fill's output is a pure function of (generator state, element
//! index, parameters). It does not depend on the number of rayon threads, on
//! the instruction set (AVX2 or scalar), on how the output is chunked, or on
//! whether the whole tensor or only a shard `[offset, offset + len)` of it is
//! filled.
//!
//! # Design
//!
//! * A [`Generator`] is a seed and a call counter. Each fill takes one
//!   [`Stream`] from it ([`Generator::next_stream`]), which advances the counter
//!   by one whatever the size of the fill. The stream's 64-bit key is a mix of
//!   `(seed, counter)`. Unlike PyTorch, how far the generator moves does not
//!   depend on tensor sizes.
//! * A stream covers a virtual, unbounded array of elements cut into blocks of
//!   [`BLOCK`] elements. Block `k` has [`LANES`] independent
//!   `Xoshiro256PlusPlus` generators; lane `l` is seeded with four SplitMix64
//!   outputs starting from `mix64(key ^ mix64(8k + l))`.
//! * One *step* of a block draws one `u64` from each of its eight lanes and
//!   turns those 512 bits into [`STEP`] = 16 consecutive output elements
//!   (see [`kernels`](crate::kernels) for how each distribution uses them).
//!   Element `i` therefore lives in block `i / BLOCK`, step
//!   `(i % BLOCK) / STEP`, slot `i % STEP`: computing it needs only its block's
//!   seeds, so any block, or any part of one, can be produced independently.
//!
//! The scalar kernels use `rand_xoshiro::Xoshiro256PlusPlus` itself; the AVX2
//! kernels run the same eight generators in two 256-bit registers and are
//! tested to give the same bits.

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;
use std::sync::Mutex;

pub(crate) mod mt19937;
pub(crate) mod torch;

use torch::TorchGenerator;
pub use torch::{STATE_SIZE, TorchState};

/// Elements per block: the unit of parallel work and of reseeding.
pub const BLOCK: usize = 16384;
/// Independent xoshiro256++ generators per block.
pub const LANES: usize = 8;
/// Output elements produced by one step (one `u64` from each lane).
pub const STEP: usize = 16;

/// PyTorch's default CPU seed, so that "no seed set" means the same thing here.
pub const DEFAULT_SEED: u64 = 67_280_421_310_721;

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function: a bijective 64-bit mixer with full avalanche.
#[inline]
pub(crate) const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seedable generator, the equivalent of `torch.Generator`, of one of two
/// kinds:
///
/// * **counter-based** ([`Generator::new`], the default): each fill takes one
///   [`Stream`] ([`Generator::next_stream`]), a pure function of
///   `(seed, call number)`, so a fill's values do not depend on its size, the
///   thread count, the instruction set or the shard being filled;
/// * **torch-exact** ([`Generator::torch`]): PyTorch's CPU generator
///   (MT19937, consumed serially in PyTorch's order), so the same calls after
///   the same seed give PyTorch 2.15's own numbers, bit for bit (see
///   [`crate::torch`]).
///
/// Every function that draws takes an `Option<&mut Generator>` and accepts
/// either kind; `None` means the global generator ([`manual_seed`],
/// [`crate::torch::manual_seed`]).
///
/// ```
/// use nninit::Generator;
/// let mut a = Generator::new(7);
/// let mut b = Generator::new(7);
/// assert_eq!(a.next_stream(), b.next_stream());
/// assert_ne!(a.next_stream(), Generator::new(7).next_stream());
/// assert!(Generator::torch(7).is_torch());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generator {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Counter { seed: u64, calls: u64 },
    Torch(Box<TorchGenerator>),
}

/// A snapshot of a [`Generator`], for checkpointing (`get_state`/`set_state`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GeneratorState {
    /// A counter-based generator.
    Counter {
        /// The seed the generator was created or last reseeded with.
        seed: u64,
        /// How many streams it has handed out since.
        calls: u64,
    },
    /// A torch-exact generator: PyTorch's state, convertible to and from
    /// the bytes of `torch.get_rng_state()`.
    Torch(TorchState),
}

impl Generator {
    /// A counter-based generator seeded with `seed`.
    pub const fn new(seed: u64) -> Generator {
        Generator {
            kind: Kind::Counter { seed, calls: 0 },
        }
    }

    /// A torch-exact generator: PyTorch's CPU generator after
    /// `manual_seed(seed)`. All 64 bits are kept as the
    /// [`initial_seed`](Self::initial_seed); the stream uses the low 32, as
    /// in PyTorch.
    ///
    /// ```
    /// use nninit::{Generator, Tensor};
    /// // torch.manual_seed(0); torch.rand(3)
    /// let x = Tensor::rand(&[3], Some(&mut Generator::torch(0))).unwrap();
    /// assert_eq!(x.as_slice(), &[0.49625659, 0.76822180, 0.08847743]);
    /// ```
    pub fn torch(seed: u64) -> Generator {
        Generator {
            kind: Kind::Torch(Box::new(TorchGenerator::new(seed))),
        }
    }

    /// Whether this is a torch-exact generator.
    pub fn is_torch(&self) -> bool {
        matches!(self.kind, Kind::Torch(_))
    }

    /// The seed this generator was created or last reseeded with (all 64
    /// bits, for either kind).
    pub fn initial_seed(&self) -> u64 {
        match &self.kind {
            Kind::Counter { seed, .. } => *seed,
            Kind::Torch(t) => t.initial_seed(),
        }
    }

    /// Reseeds the generator, as `torch.Generator.manual_seed` does; the kind
    /// stays (a torch-exact generator also forgets its cached normal).
    pub fn manual_seed(&mut self, seed: u64) -> &mut Self {
        *self = match self.kind {
            Kind::Counter { .. } => Generator::new(seed),
            Kind::Torch(_) => Generator::torch(seed),
        };
        self
    }

    /// The current state.
    pub fn state(&self) -> GeneratorState {
        match &self.kind {
            Kind::Counter { seed, calls } => GeneratorState::Counter {
                seed: *seed,
                calls: *calls,
            },
            Kind::Torch(t) => GeneratorState::Torch(TorchState(t.clone())),
        }
    }

    /// Restores a state taken with [`state`](Self::state) (of either kind;
    /// the generator takes the kind of the state).
    pub fn set_state(&mut self, state: GeneratorState) {
        self.kind = match state {
            GeneratorState::Counter { seed, calls } => Kind::Counter { seed, calls },
            GeneratorState::Torch(t) => Kind::Torch(t.0),
        };
    }

    /// How many streams a counter-based generator has handed out since it
    /// was seeded (`None` for a torch-exact one).
    pub fn calls(&self) -> Option<u64> {
        match self.kind {
            Kind::Counter { calls, .. } => Some(calls),
            Kind::Torch(_) => None,
        }
    }

    /// Hands out the next stream.
    ///
    /// A counter-based generator advances by one call. A torch-exact one
    /// draws the stream's key from its word stream (`random64()`, two
    /// words), so counter-based fills can be driven from a torch-exact
    /// generator too (their values are not PyTorch's: use the initializers,
    /// which follow PyTorch's algorithms in torch mode).
    pub fn next_stream(&mut self) -> Stream {
        match &mut self.kind {
            Kind::Counter { seed, calls } => {
                let key = mix64(mix64(*seed ^ GOLDEN).wrapping_add(calls.wrapping_mul(GOLDEN)));
                *calls = calls.wrapping_add(1);
                Stream { key }
            }
            Kind::Torch(t) => Stream {
                key: mix64(t.random64()),
            },
        }
    }
}

impl Default for Generator {
    /// A counter-based generator with PyTorch's default seed.
    fn default() -> Self {
        Generator::new(DEFAULT_SEED)
    }
}

static GLOBAL: Mutex<Generator> = Mutex::new(Generator::new(DEFAULT_SEED));

fn global() -> std::sync::MutexGuard<'static, Generator> {
    // A panic while holding the lock cannot leave a `Generator` in an
    // invalid state (every state of its fields is valid), so a poisoned lock
    // still holds a usable generator.
    GLOBAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Seeds the global generator, like `torch.manual_seed`, and makes it
/// counter-based (the default kind; [`crate::torch::manual_seed`] makes it
/// torch-exact).
///
/// Every function that takes an `Option<&mut Generator>` uses the global
/// generator when given `None`.
///
/// ```
/// nninit::manual_seed(42);
/// let a = nninit::Tensor::rand(&[3], None).unwrap();
/// nninit::manual_seed(42);
/// let b = nninit::Tensor::rand(&[3], None).unwrap();
/// assert_eq!(a, b);
/// ```
pub fn manual_seed(seed: u64) {
    *global() = Generator::new(seed);
}

/// The seed of the global generator.
pub fn initial_seed() -> u64 {
    global().initial_seed()
}

/// Runs `f` on the global generator while holding its lock.
///
/// `f` must not draw from the global generator itself (pass `Some(g)` to
/// anything it calls): that would wait for the lock it holds.
pub fn with_global_generator<R>(f: impl FnOnce(&mut Generator) -> R) -> R {
    f(&mut global())
}

/// What one random call draws from.
pub(crate) enum Source<'a> {
    /// A counter-based generator: [`Counter::take`] hands out the call's
    /// stream, once nothing can fail any more.
    Counter(Counter<'a>),
    /// PyTorch's generator, drawn from serially.
    Torch(&'a mut TorchGenerator),
}

/// A counter-based generator, possibly the global one (then its lock is held
/// until the stream is taken).
pub(crate) struct Counter<'a>(CounterRef<'a>);

enum CounterRef<'a> {
    Given(&'a mut Generator),
    Global(std::sync::MutexGuard<'static, Generator>),
}

impl Counter<'_> {
    /// The call's stream; the generator advances by one call (and the
    /// global generator's lock is released).
    pub(crate) fn take(self) -> Stream {
        match self.0 {
            CounterRef::Given(g) => g.next_stream(),
            CounterRef::Global(mut guard) => guard.next_stream(),
        }
    }
}

/// Runs `f` with what one random call draws from: `generator`, or the
/// global generator if `None`.
///
/// For the global generator `f` runs under its lock, as PyTorch's fills run
/// under the generator's mutex (a counter-based one releases it when the
/// stream is taken), so `f` must not draw from the global generator again.
pub(crate) fn with_source<R>(
    generator: Option<&mut Generator>,
    f: impl FnOnce(Source<'_>) -> R,
) -> R {
    match generator {
        Some(g) => match g.kind {
            Kind::Torch(ref mut t) => f(Source::Torch(t)),
            Kind::Counter { .. } => f(Source::Counter(Counter(CounterRef::Given(g)))),
        },
        None => {
            let mut guard = global();
            if let Kind::Torch(ref mut t) = guard.kind {
                f(Source::Torch(t))
            } else {
                f(Source::Counter(Counter(CounterRef::Global(guard))))
            }
        }
    }
}

/// Replaces the global generator (by [`crate::torch::manual_seed`] and
/// [`crate::torch::set_rng_state`]).
pub(crate) fn set_global(generator: Generator) {
    *global() = generator;
}

/// The random numbers of one fill: a key naming an unbounded array of
/// elements that any range of can be computed independently.
///
/// Streams are cheap `Copy` values. Use [`Generator::next_stream`] to get one;
/// [`Stream::from_key`] rebuilds one elsewhere (another process of a sharded
/// job, say) from its [`key`](Stream::key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stream {
    key: u64,
}

impl Stream {
    /// The stream with this key.
    pub const fn from_key(key: u64) -> Stream {
        Stream { key }
    }

    /// This stream's key.
    pub const fn key(self) -> u64 {
        self.key
    }

    /// An independent stream derived from this one, for fills that need
    /// several (index `i` names which).
    pub const fn substream(self, i: u64) -> Stream {
        Stream {
            key: mix64(self.key ^ mix64(i ^ 0x5DEE_CE66_D1A4_F87D)),
        }
    }

    /// The xoshiro256++ state of `lane` of `block`: four SplitMix64 outputs.
    pub(crate) fn lane_state(self, block: u64, lane: usize) -> [u64; 4] {
        let id = block.wrapping_mul(LANES as u64).wrapping_add(lane as u64);
        let mut sm = mix64(self.key ^ mix64(id));
        std::array::from_fn(|_| {
            sm = sm.wrapping_add(GOLDEN);
            mix64(sm)
        })
    }

    /// The `xoshiro256++` generator of `lane` of `block` (`rand_xoshiro`'s,
    /// seeded with [`lane_state`](Self::lane_state)).
    pub(crate) fn lane_rng(self, block: u64, lane: usize) -> Xoshiro256PlusPlus {
        xoshiro_from_state(self.lane_state(block, lane))
    }

    /// The states of all lanes of `block`.
    pub(crate) fn block_states(self, block: u64) -> [[u64; 4]; LANES] {
        std::array::from_fn(|lane| self.lane_state(block, lane))
    }
}

/// `rand_xoshiro`'s `xoshiro256++` with exactly `state` (little-endian seed
/// bytes), the generator the scalar kernels and the tests use lane by lane.
pub(crate) fn xoshiro_from_state(state: [u64; 4]) -> Xoshiro256PlusPlus {
    let mut seed = [0u8; 32];
    for (bytes, word) in seed.chunks_exact_mut(8).zip(state) {
        bytes.copy_from_slice(&word.to_le_bytes());
    }
    Xoshiro256PlusPlus::from_seed(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_advance_and_repeat() {
        let mut g = Generator::new(1);
        let a = g.next_stream();
        let b = g.next_stream();
        assert_ne!(a, b);
        assert_eq!(g.state(), GeneratorState::Counter { seed: 1, calls: 2 });
        g.manual_seed(1);
        assert_eq!(g.next_stream(), a);
        let s = g.state();
        let c = g.next_stream();
        g.set_state(s);
        assert_eq!(g.next_stream(), c);
        assert_eq!(c, b);
    }

    #[test]
    fn different_seeds_differ() {
        let keys: std::collections::HashSet<u64> = (0..1000)
            .map(|s| Generator::new(s).next_stream().key())
            .collect();
        assert_eq!(keys.len(), 1000);
    }

    #[test]
    fn lane_states_are_distinct_and_nonzero() {
        let s = Stream::from_key(0);
        let mut seen = std::collections::HashSet::new();
        for block in 0..64 {
            for st in s.block_states(block) {
                assert_ne!(st, [0; 4]);
                assert!(seen.insert(st));
            }
        }
        assert_ne!(s.substream(0), s);
        assert_ne!(s.substream(0), s.substream(1));
    }

    #[test]
    fn mix64_is_splitmix() {
        // First output of SplitMix64 seeded with 0 (reference value from the
        // published C implementation): mix64(0 + golden).
        assert_eq!(mix64(GOLDEN), 0xE220_A839_7B1D_CDAF);
    }
}
