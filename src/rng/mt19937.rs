//! PyTorch's Mersenne Twister, `at::mt19937` (ATen's `MT19937RNGEngine.h`).
//!
//! The standard 32-bit MT19937 (Matsumoto and Nishimura, 1998): 624 words of
//! state, the twist with `MATRIX_A = 0x9908b0df`, the usual tempering. Its
//! outputs equal C++'s `std::mt19937` and numpy's legacy `RandomState` for the
//! same 32-bit seed.
//!
//! PyTorch's bookkeeping is kept exactly, because `torch.get_rng_state()`
//! exposes it: after seeding `left = 1` and `next = 0`, so the first draw
//! twists; a draw decrements `left`, twists when it reaches 0 (which resets
//! `left` to 624 and `next` to 0), then returns the tempered `state[next]`
//! and increments `next`. After any draw `left + next == 625`.
//!
//! This file is the scalar reference. The fills draw their words through the
//! vectorized twist and tempering of [`crate::kernels`], which are tested to
//! give the same words.

/// Words of state.
pub(crate) const N: usize = 624;
/// The twist's middle word offset.
pub(crate) const M: usize = 397;
/// The twist matrix's last row.
pub(crate) const MATRIX_A: u32 = 0x9908_b0df;
/// The most significant bit.
pub(crate) const UPPER_MASK: u32 = 0x8000_0000;
/// The 31 least significant bits.
pub(crate) const LOWER_MASK: u32 = 0x7fff_ffff;

/// The engine: state words and PyTorch's `left`/`next` counters.
///
/// Aligned to a cache line, so that the vectorized twist's stores (at
/// multiples of eight words) never straddle one.
#[derive(Clone, PartialEq, Eq)]
#[repr(C, align(64))]
pub(crate) struct Mt19937 {
    /// The 624 state words.
    pub(crate) state: [u32; N],
    /// Draws left before the next twist, plus one (1..=624).
    pub(crate) left: u32,
    /// Index of the next state word to temper (0..=624).
    pub(crate) next: u32,
}

impl std::fmt::Debug for Mt19937 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mt19937")
            .field("left", &self.left)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl Mt19937 {
    /// `init_with_uint32`: Knuth's linear recurrence from a 32-bit seed.
    pub(crate) fn new(seed: u32) -> Mt19937 {
        let mut state = [0u32; N];
        state[0] = seed;
        for j in 1..N {
            let prev = state[j - 1];
            state[j] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(j as u32);
        }
        Mt19937 {
            state,
            left: 1,
            next: 0,
        }
    }

    /// Whether `left` and `next` describe a state the engine can draw from
    /// without reading past its 624 words: PyTorch's `is_valid`
    /// (`1 <= left <= 624`, `next <= 624`) and `left + next <= 625`, which
    /// every state PyTorch produces satisfies.
    pub(crate) fn counters_valid(left: u32, next: u32) -> bool {
        (1..=N as u32).contains(&left) && next <= N as u32 && left + next <= N as u32 + 1
    }

    /// One 32-bit output (`operator()`).
    pub(crate) fn next_u32(&mut self) -> u32 {
        self.left -= 1;
        if self.left == 0 {
            twist(&mut self.state);
            self.left = N as u32;
            self.next = 0;
        }
        let y = self.state[self.next as usize];
        self.next += 1;
        temper(y)
    }
}

/// One word of the twist: `state[i] = state[k] ^ twist(state[i], state[i + 1])`.
#[inline(always)]
pub(crate) fn twist_word(u: u32, v: u32, k: u32) -> u32 {
    let y = (u & UPPER_MASK) | (v & LOWER_MASK);
    k ^ (y >> 1) ^ if v & 1 == 0 { 0 } else { MATRIX_A }
}

/// `next_state`: regenerates all 624 words in place.
pub(crate) fn twist(state: &mut [u32; N]) {
    for i in 0..N - M {
        state[i] = twist_word(state[i], state[i + 1], state[i + M]);
    }
    for i in N - M..N - 1 {
        state[i] = twist_word(state[i], state[i + 1], state[i + M - N]);
    }
    state[N - 1] = twist_word(state[N - 1], state[0], state[M - 1]);
}

/// The tempering transform applied to a state word on output.
#[inline(always)]
pub(crate) fn temper(mut y: u32) -> u32 {
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c_5680;
    y ^= (y << 15) & 0xefc6_0000;
    y ^ (y >> 18)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_reference_outputs() {
        // mt19937 seeded with 5489 (the C++ default): the 10000th output is
        // 4123659995 (C++11 [rand.predef]).
        let mut mt = Mt19937::new(5489);
        let mut x = 0;
        for _ in 0..10_000 {
            x = mt.next_u32();
        }
        assert_eq!(x, 4_123_659_995);
        // The first outputs for seed 5489.
        let mut mt = Mt19937::new(5489);
        let first: Vec<u32> = (0..3).map(|_| mt.next_u32()).collect();
        assert_eq!(first, [3_499_211_612, 581_869_302, 3_890_346_734]);
    }

    #[test]
    fn counters_follow_pytorch() {
        let mut mt = Mt19937::new(1);
        assert_eq!((mt.left, mt.next), (1, 0));
        mt.next_u32();
        assert_eq!((mt.left, mt.next), (624, 1));
        for _ in 0..623 {
            mt.next_u32();
        }
        assert_eq!((mt.left, mt.next), (1, 624));
        mt.next_u32();
        assert_eq!((mt.left, mt.next), (624, 1));
        assert!(Mt19937::counters_valid(1, 0));
        assert!(Mt19937::counters_valid(624, 1));
        assert!(Mt19937::counters_valid(1, 624));
        assert!(!Mt19937::counters_valid(0, 0));
        assert!(!Mt19937::counters_valid(625, 0));
        assert!(!Mt19937::counters_valid(624, 2));
    }
}
