//! The aligned `f32` buffer behind every [`Tensor`](crate::Tensor).
//!
//! All of the crate's allocation `unsafe` lives here, in one small type with a
//! `Drop`, as in `matrixmultiply`'s `aligned_alloc`.

use std::alloc::{self, Layout};
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use crate::error::{Error, Result};
use crate::kernels::INLINE_MAX;
use crate::rng::BLOCK;

/// Alignment of every non-empty buffer: one cache line, and a whole AVX-512 vector.
pub(crate) const ALIGN: usize = 64;

/// Buffers of at least this many bytes are aligned to [`HUGE_PAGE`] and, on
/// Linux, advised to use transparent huge pages. First-touch page faults cost
/// more than filling the memory; 2 MiB pages make them 512 times fewer.
const HUGE_THRESHOLD: usize = 4 << 20;

/// Size of an x86-64 transparent huge page.
const HUGE_PAGE: usize = 2 << 20;

/// An owned, aligned, fixed-length `[f32]` (like `Box<[f32]>` with a stronger
/// alignment).
pub(crate) struct AlignedBuf {
    ptr: NonNull<f32>,
    len: usize,
}

// SAFETY: `AlignedBuf` uniquely owns its allocation, exactly like `Box<[f32]>`;
// shared access only hands out `&[f32]`.
unsafe impl Send for AlignedBuf {}
// SAFETY: as above; `&AlignedBuf` only allows reads.
unsafe impl Sync for AlignedBuf {}

/// The layout of a buffer of `len` floats, or an error naming `shape` when the
/// byte size does not fit in `isize`.
fn layout_for(len: usize, shape: &[usize]) -> Result<Layout> {
    let overflow = || Error::ShapeOverflow {
        shape: shape.to_vec(),
    };
    let bytes = len.checked_mul(size_of::<f32>()).ok_or_else(overflow)?;
    let align = if bytes >= HUGE_THRESHOLD {
        HUGE_PAGE
    } else {
        ALIGN
    };
    Layout::from_size_align(bytes, align).map_err(|_| overflow())
}

impl AlignedBuf {
    /// Allocates `len` floats and lets `init` write them.
    ///
    /// `shape` is only used to name the shape in an overflow error.
    ///
    /// # Safety
    /// `init` must write every element of the slice it is given before it
    /// returns (a panic in `init` is fine: the memory is then freed unread).
    pub(crate) unsafe fn new_with(
        len: usize,
        shape: &[usize],
        init: impl FnOnce(&mut [MaybeUninit<f32>]),
    ) -> Result<Self> {
        let layout = layout_for(len, shape)?;
        if layout.size() == 0 {
            init(&mut []);
            return Ok(AlignedBuf {
                ptr: NonNull::dangling(),
                len: 0,
            });
        }
        // SAFETY: `layout` has a non-zero size (checked just above).
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<f32>()) else {
            return Err(Error::OutOfMemory {
                bytes: layout.size(),
            });
        };
        if layout.align() == HUGE_PAGE {
            advise_huge_pages(raw, layout.size());
        }
        // Owning the allocation now means a panic in `init` frees it. `len`
        // elements are not initialized yet, but `Drop` never reads them.
        let buf = AlignedBuf { ptr, len };
        // SAFETY: the allocation holds `len` properly aligned `f32` slots that
        // nothing else references; `MaybeUninit` makes uninitialized slots fine.
        let slots = unsafe {
            std::slice::from_raw_parts_mut(buf.ptr.as_ptr().cast::<MaybeUninit<f32>>(), len)
        };
        init(slots);
        Ok(buf)
    }

    /// Allocates a buffer holding a copy of `data`.
    ///
    /// Large copies (clones, `Tensor::from_slice`, loaded state dicts) run in
    /// parallel over the same blocks as the fills, so the first touch of the
    /// fresh pages (the page faults and the kernel's zeroing of each huge
    /// page) is spread over the threads too.
    pub(crate) fn from_slice(data: &[f32]) -> Self {
        // SAFETY: `MaybeUninit<f32>` has the same layout as `f32`, and reading
        // initialized floats through it is always allowed.
        let src = unsafe {
            std::slice::from_raw_parts(data.as_ptr().cast::<MaybeUninit<f32>>(), data.len())
        };
        // SAFETY: `copy_parallel` writes every one of the `data.len()` slots.
        let made =
            unsafe { Self::new_with(data.len(), &[data.len()], |slots| copy_parallel(src, slots)) };
        made.expect("an existing slice always has an allocatable size")
    }

    /// The elements.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[f32] {
        // SAFETY: `ptr` is valid (or dangling with len 0) for `len` initialized
        // floats for as long as `self` lives, and `&self` forbids writes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The elements, mutably.
    #[inline]
    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Number of elements.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// `dst.copy_from_slice(src)`, in parallel on the current rayon pool for
/// copies larger than [`INLINE_MAX`] elements.
fn copy_parallel(src: &[MaybeUninit<f32>], dst: &mut [MaybeUninit<f32>]) {
    use rayon::prelude::*;
    if dst.len() <= INLINE_MAX || rayon::current_num_threads() == 1 {
        dst.copy_from_slice(src);
    } else {
        dst.par_chunks_mut(BLOCK)
            .zip(src.par_chunks(BLOCK))
            .for_each(|(d, s)| d.copy_from_slice(s));
    }
}

impl Clone for AlignedBuf {
    fn clone(&self) -> Self {
        AlignedBuf::from_slice(self.as_slice())
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        let layout = layout_for(self.len, &[]).expect("the layout was valid at allocation");
        if layout.size() != 0 {
            // SAFETY: `ptr` came from `alloc::alloc(layout)` with this very
            // layout (it is a pure function of `len`), and is freed once.
            unsafe { alloc::dealloc(self.ptr.as_ptr().cast::<u8>(), layout) };
        }
    }
}

/// Asks Linux to back `[ptr, ptr + len)` with transparent huge pages. Purely
/// advisory: where THP is off or the call fails, nothing changes.
#[cfg(target_os = "linux")]
fn advise_huge_pages(ptr: *mut u8, len: usize) {
    // SAFETY: `ptr` is the start of a live allocation of `len` bytes aligned to
    // 2 MiB (hence page-aligned), which `madvise` requires; MADV_HUGEPAGE only
    // changes how the kernel backs the range, never its contents.
    let _ = unsafe { libc::madvise(ptr.cast::<libc::c_void>(), len, libc::MADV_HUGEPAGE) };
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_ptr: *mut u8, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(len: usize, v: f32) -> AlignedBuf {
        // SAFETY: the closure writes every slot.
        unsafe { AlignedBuf::new_with(len, &[len], |s| s.fill(MaybeUninit::new(v))) }.unwrap()
    }

    #[test]
    fn alignment_and_contents() {
        for len in [1, 3, 16, 1000, (HUGE_THRESHOLD / 4) + 1] {
            let b = filled(len, 1.5);
            let align = if len * 4 >= HUGE_THRESHOLD {
                HUGE_PAGE
            } else {
                ALIGN
            };
            assert_eq!(b.as_slice().as_ptr() as usize % align, 0, "len {len}");
            assert!(b.as_slice().iter().all(|&x| x == 1.5));
            let c = b.clone();
            assert_eq!(c.as_slice(), b.as_slice());
        }
    }

    #[test]
    fn large_copies_are_exact() {
        let n = HUGE_THRESHOLD / 4 + 7; // parallel (> INLINE_MAX) and huge-page aligned
        let data: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let b = pool.install(|| AlignedBuf::from_slice(&data));
        assert_eq!(b.as_slice(), &data[..]);
        let c = pool.install(|| b.clone());
        assert_eq!(c.as_slice(), &data[..]);
        assert_eq!(c.as_slice().as_ptr() as usize % HUGE_PAGE, 0);
    }

    #[test]
    fn empty_buffer() {
        let b = filled(0, 0.0);
        assert_eq!(b.len(), 0);
        assert!(b.as_slice().is_empty());
        let c = b.clone();
        assert!(c.as_slice().is_empty());
    }

    #[test]
    fn overflow_is_an_error() {
        // SAFETY: the closure is never called: the size check fails first.
        let r =
            unsafe { AlignedBuf::new_with(usize::MAX / 2, &[usize::MAX / 2], |_| unreachable!()) };
        assert!(matches!(r, Err(Error::ShapeOverflow { .. })));
        // SAFETY: as above.
        let r =
            unsafe { AlignedBuf::new_with(isize::MAX as usize / 4 + 1, &[7], |_| unreachable!()) };
        assert!(matches!(r, Err(Error::ShapeOverflow { .. })));
    }
}
