//! `sparse_`: normal values, then exactly `⌈sparsity · rows⌉` zeros per column.

use crate::distributions::sealed::FillUninit;
use crate::distributions::torch::randperm;
use crate::distributions::{Distribution, Normal};
use crate::kernels::Kernels;
use crate::kernels::math::as_uninit;
use crate::rng::Stream;
use crate::rng::torch::TorchGenerator;

/// [`sparse_`] with PyTorch's generator, as PyTorch 2.15 does it:
/// `normal_(0, std)` on the whole matrix, then for each column in turn
/// `randperm(rows)`, whose first `zeros` entries are the rows zeroed
/// (`rows − 1` words per column, even when `zeros` is 0).
pub(super) fn sparse_torch(
    kernels: Kernels,
    g: &mut TorchGenerator,
    rows: usize,
    cols: usize,
    zeros: usize,
    normal: &Normal,
    out: &mut [f32],
) {
    normal.fill_torch(kernels, g, as_uninit(out));
    let mut perm = Vec::with_capacity(rows);
    for c in 0..cols {
        randperm(g, rows, &mut perm);
        for &r in &perm[..zeros] {
            out[r * cols + c] = 0.0;
        }
    }
}

/// Columns per parallel task of [`sparse_picks`] (a fixed size, so the work
/// split does not depend on the thread count; the output does not either).
const SPARSE_COLUMNS_PER_TASK: usize = 64;

/// The generator that picks the zero rows of column `col` of a [`sparse_`]
/// call whose stream is `stream`: the xoshiro256++ that lane 0 of block `col`
/// of `stream.substream(1)` starts from (see [`crate::rng`]).
fn sparse_column_rng(stream: Stream, col: usize) -> rand_xoshiro::Xoshiro256PlusPlus {
    stream.substream(1).lane_rng(col as u64, 0)
}

/// A uniform integer in `0..n` (`n >= 1`), unbiased: Lemire's multiply-shift
/// with rejection (`(x · n) >> 64` of a 64-bit `x`, redrawn while the low half
/// is below `2⁶⁴ mod n`).
fn below(rng: &mut rand_xoshiro::Xoshiro256PlusPlus, n: u64) -> u64 {
    use rand_xoshiro::rand_core::Rng;
    let mut m = rng.next_u64() as u128 * n as u128;
    if (m as u64) < n {
        let threshold = n.wrapping_neg() % n;
        while (m as u64) < threshold {
            m = rng.next_u64() as u128 * n as u128;
        }
    }
    (m >> 64) as u64
}

/// The zero rows of every column of a [`sparse_`] call: `zeros` rows per
/// column, column-major (column `c`'s at `c · zeros..`).
///
/// Column `c` draws its rows with a partial Fisher–Yates shuffle of
/// `0..rows` driven by [`sparse_column_rng`]`(stream, c)`: for `i` in
/// `0..zeros`, swap position `i` with position `i + below(rows − i)`; the
/// row now at position `i` is its `i`-th zero. Columns are independent, so
/// the result does not depend on the thread count.
fn sparse_picks<I: SparseIndex>(stream: Stream, rows: usize, cols: usize, zeros: usize) -> Vec<I> {
    use rayon::prelude::*;
    let mut picked = vec![I::from_usize(0); cols * zeros];
    picked
        .par_chunks_mut(zeros * SPARSE_COLUMNS_PER_TASK)
        .enumerate()
        .for_each(|(task, chunk)| {
            let mut perm: Vec<usize> = (0..rows).collect();
            let mut swaps = vec![0usize; zeros];
            for (k, picks) in chunk.chunks_exact_mut(zeros).enumerate() {
                let mut rng = sparse_column_rng(stream, task * SPARSE_COLUMNS_PER_TASK + k);
                for i in 0..zeros {
                    let j = i + below(&mut rng, (rows - i) as u64) as usize;
                    perm.swap(i, j);
                    swaps[i] = j;
                    picks[i] = I::from_usize(perm[i]);
                }
                // Undo the swaps so `perm` is the identity for the next column.
                for i in (0..zeros).rev() {
                    perm.swap(i, swaps[i]);
                }
            }
        });
    picked
}

/// Elements per parallel task of the fill-and-zero pass of [`sparse_fill`]
/// (whole rows; about 256 KiB, so a block is zeroed while still in cache).
const SPARSE_TASK_ELEMENTS: usize = 1 << 16;

/// [`sparse_`] on a non-empty row-major `rows × cols` buffer: the normal
/// values of `stream`, then `zeros` zeros per column at the rows
/// [`sparse_picks`] chooses.
pub(super) fn sparse_fill(
    kernels: Kernels,
    stream: Stream,
    rows: usize,
    cols: usize,
    zeros: usize,
    normal: &Normal,
    out: &mut [f32],
) {
    if zeros == 0 {
        normal.fill_with(kernels, stream, 0, out);
        return;
    }
    if zeros == rows {
        kernels.fill_constant(out, 0.0);
        return;
    }
    // Row and column numbers as u32 when they fit: half the memory traffic.
    if u32::try_from(rows.max(cols)).is_ok() {
        sparse_zero::<u32>(kernels, stream, rows, cols, zeros, normal, out);
    } else {
        sparse_zero::<usize>(kernels, stream, rows, cols, zeros, normal, out);
    }
}

/// A row or column number: `u32` when every one fits, else `usize`.
trait SparseIndex: Copy + Send + Sync {
    fn from_usize(i: usize) -> Self;
    fn to_usize(self) -> usize;
}

impl SparseIndex for u32 {
    #[inline(always)]
    fn from_usize(i: usize) -> u32 {
        i as u32
    }
    #[inline(always)]
    fn to_usize(self) -> usize {
        self as usize
    }
}

impl SparseIndex for usize {
    #[inline(always)]
    fn from_usize(i: usize) -> usize {
        i
    }
    #[inline(always)]
    fn to_usize(self) -> usize {
        self
    }
}

/// The part of [`sparse_fill`] after its special cases, with row and column
/// numbers stored as `I`.
fn sparse_zero<I: SparseIndex>(
    kernels: Kernels,
    stream: Stream,
    rows: usize,
    cols: usize,
    zeros: usize,
    normal: &Normal,
    out: &mut [f32],
) {
    use rayon::prelude::*;
    let picks = sparse_picks::<I>(stream, rows, cols, zeros);
    // Regroup by row (a counting sort): row r's zero columns, ascending, at
    // by_row[start[r]..start[r + 1]].
    let mut start = vec![0usize; rows + 1];
    for &r in &picks {
        start[r.to_usize() + 1] += 1;
    }
    for r in 0..rows {
        start[r + 1] += start[r];
    }
    let mut next = start.clone();
    let mut by_row = vec![I::from_usize(0); picks.len()];
    for (c, column) in picks.chunks_exact(zeros).enumerate() {
        for &r in column {
            let r = r.to_usize();
            by_row[next[r]] = I::from_usize(c);
            next[r] += 1;
        }
    }
    drop(picks);
    // Fill and zero a block of rows at a time, while the block is in cache.
    let rows_per_task = (SPARSE_TASK_ELEMENTS / cols).max(1);
    out.par_chunks_mut(rows_per_task * cols)
        .enumerate()
        .for_each(|(task, chunk)| {
            let r0 = task * rows_per_task;
            normal.fill_with(kernels, stream, (r0 * cols) as u64, chunk);
            for (k, row) in chunk.chunks_exact_mut(cols).enumerate() {
                let r = r0 + k;
                for &c in &by_row[start[r]..start[r + 1]] {
                    row[c.to_usize()] = 0.0;
                }
            }
        });
}
