//! The portable backend: one lane, `mul_add` for the fused multiply-add. It is
//! the reference every other backend must match bit for bit.

use super::Element;
use super::kernel::{self, Block, Lanes};

/// The portable kernels (always available).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scalar;

impl<T: Element> Lanes<T> for Scalar {
    type V = T;
    const N: usize = 1;

    #[inline(always)]
    fn zero(self) -> T {
        T::ZERO
    }
    #[inline(always)]
    fn splat(self, x: T) -> T {
        x
    }
    #[inline(always)]
    unsafe fn load(self, p: *const T) -> T {
        // SAFETY: the caller guarantees `p` is valid for one read.
        unsafe { *p }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut T, v: T) {
        // SAFETY: the caller guarantees `p` is valid for one write.
        unsafe { *p = v }
    }
    #[inline(always)]
    fn fma(self, a: T, b: T, c: T) -> T {
        a.mul_add(b, c)
    }
    #[inline(always)]
    fn mul(self, a: T, b: T) -> T {
        a.fmul(b)
    }
    #[inline(always)]
    fn add(self, a: T, b: T) -> T {
        a.fadd(b)
    }
}

/// Rows of the scalar register tile.
pub(crate) const MR: usize = 4;
/// Columns of the scalar register tile.
pub(crate) const NR: usize = 4;

/// [`kernel::run_block`] on the portable backend (a 4 × 4 tile).
///
/// # Safety
/// As [`kernel::run_block`].
pub(crate) unsafe fn block<T: Element>(blk: &mut Block<'_, T>) {
    // SAFETY: forwarded to the caller.
    unsafe { kernel::run_block::<T, Scalar, MR, NR>(Scalar, blk) }
}
