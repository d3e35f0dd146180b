//! Packing: the operands copied into the panel layout the micro-kernel
//! streams, in 64-byte-aligned buffers that are kept per thread and reused.
//!
//! A panel of width `w` of a `k × n` view `B` holds columns `q·w..q·w + w`,
//! `k`-major: element `(p, j)` at `p·w + j`, columns past `n` zero. `A`
//! (`m × k`) is packed as the panels of `Aᵀ` (rows become the panel's
//! columns), so one routine serves both operands.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::cell::Cell;
use std::ptr::NonNull;

use rayon::prelude::*;

use super::blocking::Backend;
use super::{Element, MatRef};

/// Buffers larger than this are freed after use instead of kept for the
/// next product on the thread.
const KEEP_BYTES: usize = 64 << 20;

/// A zero-initialized, 64-byte-aligned allocation, grown on demand. It only
/// ever holds `f32` and `f64` values (every bit pattern is one).
#[derive(Debug)]
pub(crate) struct AlignedBuf {
    ptr: NonNull<u8>,
    bytes: usize,
}

// SAFETY: the buffer owns its allocation; nothing else points into it.
unsafe impl Send for AlignedBuf {}
// SAFETY: through a shared reference the buffer is only read (`slice`).
unsafe impl Sync for AlignedBuf {}

impl Default for AlignedBuf {
    fn default() -> Self {
        AlignedBuf {
            ptr: NonNull::dangling(),
            bytes: 0,
        }
    }
}

impl AlignedBuf {
    /// The first `len` elements as a `T` slice (growing the allocation if
    /// needed). Their values are whatever was there before (zero when new).
    pub(crate) fn slice_mut<T: Element>(&mut self, len: usize) -> &mut [T] {
        if len == 0 {
            return &mut [];
        }
        let bytes = len
            .checked_mul(size_of::<T>())
            .and_then(|b| b.checked_next_multiple_of(64))
            .expect("GEMM packing buffer size overflows");
        if bytes > self.bytes {
            self.free();
            let layout = Layout::from_size_align(bytes, 64).expect("GEMM packing buffer layout");
            // SAFETY: `layout` has a non-zero size.
            let ptr = unsafe { alloc_zeroed(layout) };
            self.ptr = NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
            self.bytes = bytes;
        }
        // SAFETY: the allocation holds `self.bytes >= len·size_of::<T>()`
        // initialized bytes (zeroed when allocated, then only ever written
        // with `f32`/`f64` values; every bit pattern is a valid `T`), is
        // aligned to 64 >= align_of::<T>(), and is borrowed mutably with
        // `self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().cast::<T>(), len) }
    }

    /// The first `len` elements as a `T` slice, read only.
    ///
    /// # Panics
    /// If the buffer holds fewer than `len` elements of `T`.
    pub(crate) fn slice<T: Element>(&self, len: usize) -> &[T] {
        if len == 0 {
            return &[];
        }
        assert!(
            len.checked_mul(size_of::<T>())
                .is_some_and(|b| b <= self.bytes),
            "{len} elements beyond a {}-byte packing buffer",
            self.bytes
        );
        // SAFETY: as in `slice_mut` (initialized, aligned, at least
        // `len·size_of::<T>()` bytes, checked just above), borrowed shared
        // with `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<T>(), len) }
    }

    fn free(&mut self) {
        if self.bytes > 0 {
            // SAFETY: `ptr` was allocated with exactly this layout.
            unsafe {
                dealloc(
                    self.ptr.as_ptr(),
                    Layout::from_size_align_unchecked(self.bytes, 64),
                )
            };
        }
        // Field by field: assigning a whole new value would drop this one.
        self.ptr = NonNull::dangling();
        self.bytes = 0;
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        self.free();
    }
}

/// Which per-thread buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Slot {
    /// Packed `A`.
    A,
    /// Packed `B`.
    B,
    /// The accumulators carried between `k` blocks.
    Scratch,
    /// One task's `k` block of `B`.
    BlockB,
}

thread_local! {
    static BUFS: [Cell<AlignedBuf>; 4] = Default::default();
}

/// Runs `f` with this thread's buffer `slot` (a fresh one if it is in use
/// by an outer product on this thread, which happens when rayon runs a
/// nested task while this thread waits), then keeps it for the next call.
pub(crate) fn with_buf<R>(slot: Slot, f: impl FnOnce(&mut AlignedBuf) -> R) -> R {
    let mut buf = BUFS.with(|b| b[slot as usize].take());
    let r = f(&mut buf);
    BUFS.with(|b| {
        // Keep the larger of this buffer and one a nested call may have
        // left, unless it is too large to keep.
        let other = b[slot as usize].take();
        let keep = if other.bytes > buf.bytes { other } else { buf };
        if keep.bytes <= KEEP_BYTES {
            b[slot as usize].set(keep);
        }
    });
    r
}

/// Packs the `k × n` view `src` into `⌈n / w⌉` panels of `k · w` elements
/// at the start of `dst` (see the module docs), on rayon when `parallel`.
pub(crate) fn pack<T: Element>(
    backend: Backend,
    src: MatRef<'_, T>,
    w: usize,
    dst: &mut [T],
    parallel: bool,
) {
    let (k, n) = (src.rows, src.cols);
    let panels = n.div_ceil(w);
    let dst = &mut dst[..panels * k * w];
    if k == 0 || n == 0 {
        return;
    }
    let one =
        |q: usize, panel: &mut [T]| pack_panel(backend, src, q * w, w.min(n - q * w), w, panel);
    if parallel && panels > 1 {
        dst.par_chunks_mut(k * w)
            .enumerate()
            .for_each(|(q, panel)| one(q, panel));
    } else {
        for (q, panel) in dst.chunks_mut(k * w).enumerate() {
            one(q, panel);
        }
    }
}

/// One panel: columns `j0..j0 + cols` of `src` (`cols <= w`), zero-padded
/// to width `w`.
fn pack_panel<T: Element>(
    backend: Backend,
    src: MatRef<'_, T>,
    j0: usize,
    cols: usize,
    w: usize,
    panel: &mut [T],
) {
    let k = src.rows;
    let (rs, cs) = (src.row_stride, src.col_stride);
    let data = src.data;
    if cs == 1 {
        // Rows contiguous: one slice copy per row.
        for (p, out) in panel.chunks_exact_mut(w).enumerate() {
            let row = &data[p * rs + j0..][..cols];
            out[..cols].copy_from_slice(row);
            out[cols..].fill(T::ZERO);
        }
    } else if rs == 1 {
        // Columns contiguous: a transpose, in strips of `STRIP` rows so that
        // the strip of the panel being written stays in L1 and each column
        // is read a cache line at a time.
        const STRIP: usize = 16;
        if cols < w {
            for out in panel.chunks_exact_mut(w) {
                out[cols..].fill(T::ZERO);
            }
        }
        if T::pack_cols(backend, data, cs, j0, cols, k, w, panel) {
            return;
        }
        for (s, strip) in panel.chunks_mut(STRIP * w).enumerate() {
            let p0 = s * STRIP;
            let len = strip.len() / w;
            for j in 0..cols {
                let col = &data[(j0 + j) * cs + p0..][..len];
                for (out, &x) in strip.chunks_exact_mut(w).zip(col) {
                    out[j] = x;
                }
            }
        }
    } else {
        for (p, out) in panel.chunks_exact_mut(w).enumerate() {
            for (j, o) in out.iter_mut().enumerate() {
                *o = if j < cols {
                    data[p * rs + (j0 + j) * cs]
                } else {
                    T::ZERO
                };
            }
        }
    }
}
