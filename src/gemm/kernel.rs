//! The micro-kernel, written once over a small vector trait ([`Lanes`]), and
//! the loops over one block of `C` that call it.
//!
//! # The summation order (the same on every path)
//! Every element of `C` is computed as
//!
//! ```text
//! acc = +0
//! for p in 0..k:  acc = fma(a[i, p], b[p, j], acc)      (one rounding each, p ascending)
//! c[i, j] = epilogue(acc)
//! ```
//!
//! with the epilogue one of (`⊗`, `⊕` one correctly rounded multiply or add,
//! `fma` one rounding):
//!
//! | case | `c[i, j]` |
//! |---|---|
//! | `β = 0` ([`Epilogue::Overwrite`]) | `α ⊗ acc` (the old `c` is not read: NaN in it does not propagate) |
//! | `β ≠ 0` ([`Epilogue::Accumulate`]) | `fma(β, c, α ⊗ acc)` |
//! | a bias row ([`Epilogue::Bias`], the `Linear` forward) | `acc ⊕ bias[j]` (the same bits as `Accumulate` with `α = β = 1` on a `C` holding the bias) |
//!
//! (`α ⊗ acc` is exact for `α = 1`.) The chain over `k` is cut into blocks of
//! `KC` for the caches, but a block boundary does not round anything: between
//! two blocks the raw accumulators are stored to a scratch tile and loaded
//! back unchanged, so the bits do not even depend on `KC`. Packing pads the
//! panels with zeros past the edges of `A` and `B`; a padded lane computes a
//! value that is never stored, and every stored element went through exactly
//! the chain above, whether its tile is full or an edge tile (whose epilogue
//! runs element by element in scalar code with the same operations). The
//! vector lanes, the register tile, the instruction set and the thread that
//! computes a tile therefore change nothing: the scalar `mul_add` kernel,
//! AVX2+FMA and AVX-512 give the same bits for any thread count.

use super::Element;

/// The largest register tile (`MR · NR` elements) of any kernel.
pub(crate) const MAX_TILE: usize = 512;

/// `N` lanes of `T` on one instruction set. Every operation is correctly
/// rounded (`fma` with a single rounding).
pub(crate) trait Lanes<T: Element>: Copy {
    /// The vector type.
    type V: Copy;
    /// Lanes per vector.
    const N: usize;
    /// All lanes `+0`.
    fn zero(self) -> Self::V;
    /// All lanes `x`.
    fn splat(self, x: T) -> Self::V;
    /// Loads `N` elements (any alignment).
    ///
    /// # Safety
    /// `p` must be valid for reading `N` elements.
    unsafe fn load(self, p: *const T) -> Self::V;
    /// Stores `N` elements (any alignment).
    ///
    /// # Safety
    /// `p` must be valid for writing `N` elements.
    unsafe fn store(self, p: *mut T, v: Self::V);
    /// `a · b + c` with one rounding, lane by lane.
    fn fma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `a ⊗ b`.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a ⊕ b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
}

/// What is done with the accumulated products (see the module docs).
#[derive(Debug, Clone, Copy)]
pub enum Epilogue<'a, T> {
    /// `c = α ⊗ acc` (`β = 0`).
    Overwrite {
        /// `α`.
        alpha: T,
    },
    /// `c = fma(β, c, α ⊗ acc)`.
    Accumulate {
        /// `α`.
        alpha: T,
        /// `β`.
        beta: T,
    },
    /// `c = acc ⊕ bias[j]`; the slice starts at the block's first column.
    Bias(&'a [T]),
}

impl<T: Element> Epilogue<'_, T> {
    /// The epilogue of one element in scalar code (`old` is read only by
    /// `Accumulate`; `j` is the column within the block).
    #[inline(always)]
    pub(crate) fn apply(self, acc: T, old: impl FnOnce() -> T, j: usize) -> T {
        match self {
            Epilogue::Overwrite { alpha } => alpha.fmul(acc),
            Epilogue::Accumulate { alpha, beta } => beta.mul_add(old(), alpha.fmul(acc)),
            Epilogue::Bias(bias) => acc.fadd(bias[j]),
        }
    }

    /// The same epilogue restricted to the columns from `j0` on.
    pub(crate) fn starting_at(self, j0: usize) -> Self {
        match self {
            Epilogue::Bias(b) => Epilogue::Bias(&b[j0..]),
            e => e,
        }
    }
}

/// One `k` block of one block of `C`, for one call of a kernel entry point:
/// the packed panels it reads, where it writes, and the scratch that carries
/// the accumulators between `k` blocks.
#[derive(Debug)]
pub struct Block<'a, T> {
    /// Packed `A` from this `k` block's first step: `⌈mc / MR⌉` panels,
    /// `a_stride` apart; element `(i, p)` of panel `r` at
    /// `r·a_stride + p·MR + i`.
    pub(crate) a: &'a [T],
    /// The distance between two panels of `a`.
    pub(crate) a_stride: usize,
    /// Packed `B` from this `k` block's first step: `⌈nc / NR⌉` panels,
    /// `b_stride` apart; element `(p, j)` of panel `q` at
    /// `q·b_stride + p·NR + j`.
    pub(crate) b: &'a [T],
    /// The distance between two panels of `b`.
    pub(crate) b_stride: usize,
    /// Steps in this `k` block (`≥ 1`).
    pub(crate) len: usize,
    /// Whether this is the first `k` block (the accumulators start at +0)
    /// and the last (the epilogue writes `C`); otherwise the raw
    /// accumulators are loaded from and stored to `scratch`.
    pub(crate) first: bool,
    /// See `first`.
    pub(crate) last: bool,
    /// Rows of the block.
    pub(crate) mc: usize,
    /// Columns of the block.
    pub(crate) nc: usize,
    /// Element `(0, 0)` of the block of `C`; element `(i, j)` is at
    /// `c + i·rs + j·cs`.
    pub(crate) c: *mut T,
    /// Row stride of `C`.
    pub(crate) rs: usize,
    /// Column stride of `C`.
    pub(crate) cs: usize,
    /// What to do with the accumulators.
    pub(crate) epi: Epilogue<'a, T>,
    /// At least `⌈mc / MR⌉ · ⌈nc / NR⌉ · MR · NR` elements unless the block
    /// is both first and last.
    pub(crate) scratch: &'a mut [T],
}

/// Runs one `k` block of the block: for each `NR`-column panel of `B` (its
/// `len × NR` slice kept in L1 across the inner loop), for each `MR`-row
/// panel of `A` (the `mc × len` block of `A` stays in L2), one register
/// tile.
///
/// # Safety
/// `blk` must satisfy its field docs: the packed slices hold the panels, and
/// every element `(i, j)`, `i < mc`, `j < nc`, of `C` is valid for reads and
/// writes, distinct, and not accessed by anyone else during the call.
#[inline(always)]
pub(crate) unsafe fn run_block<T: Element, S: Lanes<T>, const MR: usize, const NV: usize>(
    s: S,
    blk: &mut Block<'_, T>,
) {
    let nr = NV * S::N;
    let len = blk.len;
    let panels_m = blk.mc.div_ceil(MR);
    let panels_n = blk.nc.div_ceil(nr);
    let (first, last) = (blk.first, blk.last);
    assert!(MR * nr <= MAX_TILE && len > 0 && blk.a_stride >= len * MR && blk.b_stride >= len * nr);
    assert!(blk.a.len() >= (panels_m - 1) * blk.a_stride + len * MR);
    assert!(blk.b.len() >= (panels_n - 1) * blk.b_stride + len * nr);
    assert!((first && last) || blk.scratch.len() >= panels_m * panels_n * MR * nr);
    for jr in 0..panels_n {
        // SAFETY: panel `jr`'s `len·nr` elements from `jr·b_stride` are
        // inside `blk.b` (asserted above).
        let b = unsafe { blk.b.as_ptr().add(jr * blk.b_stride) };
        for ir in 0..panels_m {
            // SAFETY: as for `b`, within `blk.a`.
            let a = unsafe { blk.a.as_ptr().add(ir * blk.a_stride) };
            let tile_at = (jr * panels_m + ir) * MR * nr;
            // The last row panel of a block computes only the rows it has
            // (rounded up to 4 or 8) instead of all `MR` of its zero-padded
            // panel: every element's chain is the same, the padded rows'
            // multiply-adds are skipped.
            let rows = blk.mc - ir * MR;
            let at = (ir, jr, tile_at);
            // SAFETY: forwarded: `a` and `b` start this tile's panels, the
            // tile's scratch slot is `tile_at`, and `R <= MR` rows of the
            // panel are read.
            unsafe {
                if rows >= MR || MR <= 4 {
                    tile::<T, S, MR, MR, NV>(s, blk, a, b, at);
                } else if rows <= 4 {
                    tile::<T, S, 4, MR, NV>(s, blk, a, b, at);
                } else if rows <= 8 && MR > 8 {
                    tile::<T, S, 8, MR, NV>(s, blk, a, b, at);
                } else {
                    tile::<T, S, MR, MR, NV>(s, blk, a, b, at);
                }
            }
        }
    }
}

/// One register tile of `R` rows (`R <= MR`, the first `R` rows of the
/// `MR`-row panel at `a`) by `NV` vectors, for row panel `ir` and column
/// panel `jr`, its scratch slot at `tile_at`: load the carried
/// accumulators (unless first), run the `k` block, then store them (unless
/// last) or apply the epilogue.
///
/// # Safety
/// As [`run_block`]'s, whose checks this relies on; `a` and `b` point at
/// the tile's panels in `blk.a` and `blk.b`.
#[inline(always)]
unsafe fn tile<T: Element, S: Lanes<T>, const R: usize, const MR: usize, const NV: usize>(
    s: S,
    blk: &mut Block<'_, T>,
    a: *const T,
    b: *const T,
    (ir, jr, tile_at): (usize, usize, usize),
) {
    let nr = NV * S::N;
    let mut acc = [[s.zero(); NV]; R];
    if !blk.first {
        // SAFETY: the scratch holds every tile (asserted by `run_block`);
        // this one's `MR·nr >= R·nr` elements start at `tile_at`.
        unsafe { load_tile::<T, S, R, NV>(s, blk.scratch.as_ptr().add(tile_at), &mut acc) };
    }
    // SAFETY: `a` and `b` are valid for `len` steps of `MR` and `nr`
    // elements (see `run_block`).
    acc = unsafe { micro::<T, S, R, NV>(s, blk.len, a, MR, b, acc) };
    if blk.last {
        // SAFETY: the tile's rows `ir·MR..` and columns `jr·nr..` start
        // inside the block; `store_c` writes only the elements inside it
        // (the caller's contract).
        unsafe { store_c::<T, S, R, NV>(s, blk, ir * MR, jr * nr, &acc) };
    } else {
        // SAFETY: as for the load.
        unsafe { store_tile::<T, S, R, NV>(s, blk.scratch.as_mut_ptr().add(tile_at), &acc) };
    }
}

/// `acc[i][v] = fma(a[p·step + i], b[p·NR + v·N ..], acc[i][v])` for `p`
/// in `0..len`, in that order: the chain of the module docs, for the first
/// `MR` rows of panels of `step >= MR` rows. (The tile is taken and
/// returned by value so that it lives in registers.)
///
/// # Safety
/// `a` must be valid for reading `len · step` elements and `b` for
/// `len · NV · N`.
#[inline(always)]
unsafe fn micro<T: Element, S: Lanes<T>, const MR: usize, const NV: usize>(
    s: S,
    len: usize,
    mut a: *const T,
    step: usize,
    mut b: *const T,
    mut acc: [[S::V; NV]; MR],
) -> [[S::V; NV]; MR] {
    let nr = NV * S::N;
    for _ in 0..len {
        let mut bv = [s.zero(); NV];
        for (v, x) in bv.iter_mut().enumerate() {
            // SAFETY: `v·N + N <= nr` elements of this step's `nr`.
            *x = unsafe { s.load(b.add(v * S::N)) };
        }
        for (i, row) in acc.iter_mut().enumerate() {
            // SAFETY: `i < MR`, inside this step's `MR` elements of `a`.
            let ai = s.splat(unsafe { *a.add(i) });
            for (x, &bv) in row.iter_mut().zip(&bv) {
                *x = s.fma(ai, bv, *x);
            }
        }
        // SAFETY: at most one past the end of the ranges (the caller's
        // contract covers `len` steps).
        unsafe {
            a = a.add(step);
            b = b.add(nr);
        }
    }
    acc
}

/// # Safety
/// `p` must be valid for reading `MR · NV · N` elements.
#[inline(always)]
unsafe fn load_tile<T: Element, S: Lanes<T>, const MR: usize, const NV: usize>(
    s: S,
    p: *const T,
    acc: &mut [[S::V; NV]; MR],
) {
    for (i, row) in acc.iter_mut().enumerate() {
        for (v, x) in row.iter_mut().enumerate() {
            // SAFETY: inside the `MR·NV·N` elements (the caller's contract).
            *x = unsafe { s.load(p.add((i * NV + v) * S::N)) };
        }
    }
}

/// # Safety
/// `p` must be valid for writing `MR · NV · N` elements.
#[inline(always)]
unsafe fn store_tile<T: Element, S: Lanes<T>, const MR: usize, const NV: usize>(
    s: S,
    p: *mut T,
    acc: &[[S::V; NV]; MR],
) {
    for (i, row) in acc.iter().enumerate() {
        for (v, &x) in row.iter().enumerate() {
            // SAFETY: inside the `MR·NV·N` elements (the caller's contract).
            unsafe { s.store(p.add((i * NV + v) * S::N), x) };
        }
    }
}

/// The epilogue of the tile whose element `(0, 0)` is `(i0, j0)` of the
/// block: vector code for a full tile of a `C` with unit column stride,
/// else the scalar epilogue on each element inside the block (the same
/// operations, hence the same bits).
///
/// # Safety
/// `blk`'s contract, and `i0 < mc`, `j0 < nc`.
#[inline(always)]
unsafe fn store_c<T: Element, S: Lanes<T>, const MR: usize, const NV: usize>(
    s: S,
    blk: &Block<'_, T>,
    i0: usize,
    j0: usize,
    acc: &[[S::V; NV]; MR],
) {
    let nr = NV * S::N;
    let rows = MR.min(blk.mc - i0);
    let cols = nr.min(blk.nc - j0);
    let (rs, cs) = (blk.rs, blk.cs);
    if rows == MR && cols == nr && cs == 1 {
        for (i, row) in acc.iter().enumerate() {
            // SAFETY: row `i0 + i` and columns `j0..j0 + nr` (contiguous, as
            // `cs = 1`) are inside the block.
            let c = unsafe { blk.c.add((i0 + i) * rs + j0) };
            for (v, &x) in row.iter().enumerate() {
                // SAFETY: `c + v·N .. + N` are columns inside the tile.
                unsafe {
                    let at = c.add(v * S::N);
                    let y = match blk.epi {
                        Epilogue::Overwrite { alpha } => s.mul(s.splat(alpha), x),
                        Epilogue::Accumulate { alpha, beta } => {
                            s.fma(s.splat(beta), s.load(at), s.mul(s.splat(alpha), x))
                        }
                        Epilogue::Bias(bias) => {
                            let from = &bias[j0 + v * S::N..][..S::N];
                            s.add(x, s.load(from.as_ptr()))
                        }
                    };
                    s.store(at, y);
                }
            }
        }
        return;
    }
    let mut tmp = [T::ZERO; MAX_TILE];
    // SAFETY: `MR·nr <= MAX_TILE` (asserted by `run_block`).
    unsafe { store_tile::<T, S, MR, NV>(s, tmp.as_mut_ptr(), acc) };
    for i in 0..rows {
        for j in 0..cols {
            // SAFETY: `(i0 + i, j0 + j)` is inside the block.
            unsafe {
                let at = blk.c.add((i0 + i) * rs + (j0 + j) * cs);
                *at = blk.epi.apply(tmp[i * nr + j], || *at, j0 + j);
            }
        }
    }
}

/// The small-product path: no packing, each element's chain straight from
/// the strided views (the same chain and epilogue as the packed path).
/// `fma` is [`Element::mul_add`], which inside an entry point compiled for
/// FMA is one instruction.
///
/// # Safety
/// As for [`Block`]: every element `(i, j)` of the `m × n` `C` at `c` with
/// strides `(rs, cs)` is valid, distinct and ours alone; `a` and `b` are
/// checked views with `a.cols == b.rows ≥ 1`.
#[inline(always)]
pub(crate) unsafe fn small<T: Element>(
    a: super::MatRef<'_, T>,
    b: super::MatRef<'_, T>,
    c: *mut T,
    rs: usize,
    cs: usize,
    epi: Epilogue<'_, T>,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    for i in 0..m {
        let arow = &a.data[i * a.row_stride..];
        for j in 0..n {
            let bcol = &b.data[j * b.col_stride..];
            let mut acc = T::ZERO;
            for p in 0..k {
                acc = arow[p * a.col_stride].mul_add(bcol[p * b.row_stride], acc);
            }
            // SAFETY: `(i, j)` is an element of `C` (the caller's contract).
            unsafe {
                let at = c.add(i * rs + j * cs);
                *at = epi.apply(acc, || *at, j);
            }
        }
    }
}
