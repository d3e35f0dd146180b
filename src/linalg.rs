//! Dense linear algebra for the initializers: a safe GEMM wrapper and a
//! blocked Householder QR with an explicit thin `Q`, for
//! [`orthogonal_`](crate::init::orthogonal_).
//!
//! # Layout
//! Matrices are column-major: element `(i, j)` of an `m × n` matrix with
//! leading dimension `ld >= m` is at `i + j · ld`. A column is contiguous,
//! which is what Householder reflections work on.
//!
//! # The factorization
//! [`qr`] is the LAPACK `geqrf` scheme written from the textbook (Golub & Van
//! Loan, *Matrix Computations*, §5.2; Schreiber & Van Loan's compact WY form),
//! on two levels of blocking:
//!
//! 1. The columns are cut into blocks of [`NB`] columns and each block into
//!    panels of [`BLOCK`]. A panel is factored column by column (level-2):
//!    reflector `H_j = I − τ_j v_j v_jᵀ` with `v_j[j] = 1` maps column `j`
//!    below the diagonal onto `β_j e_j`, with `β_j = −sign(α)·‖x‖` (`α` the
//!    diagonal entry), and is applied at once to the rest of the panel.
//!    Squared norms and `τ`, `β` are computed in `f64`.
//! 2. Reflectors are gathered as `H_1⋯H_b = I − V T Vᵀ` (`V` unit lower
//!    trapezoidal, `T` upper triangular `b × b`): a panel's `T` is built
//!    from its `VᵀV` and updates the rest of its block by three GEMMs; the
//!    block's `T` (all `NB` reflectors) is merged from its panels' by
//!    `T = [T₁, −T₁ (V₁ᵀ V₂) T₂; 0, T₂]` and updates everything to its right.
//! 3. The trailing columns get `A ← (I − V T Vᵀ)ᵀ A = A − V (Tᵀ (Vᵀ A))`: three
//!    GEMMs ([`crate::gemm`], parallel), which is where nearly all the flops
//!    are. Their inner dimension is `NB = 128`, not the panel's 32: a
//!    rank-32 update of a matrix larger than L2 reads and writes every
//!    element for 64 flops, and the one-level version ran barely faster on
//!    two threads than on one (45 against 49 ms at 1024²). With
//!    look-ahead: the next block's columns are updated first, then that
//!    block is factored beside the update of the rest (`rayon::join`), which
//!    runs in ranges of columns, each range's three products on one thread.
//!
//! [`Qr::form_q`] builds the thin `Q` (the first `n` columns of `H_1⋯H_n`) the
//! same way, applying the blocks to the identity from the last to the first
//! (LAPACK `orgqr`), skipping the product over each block's own columns
//! (still the identity's when the block is applied), in one range of
//! columns per thread. `R` is left in the upper triangle of the factored
//! matrix.
//!
//! The result is deterministic and the same on every CPU, instruction set
//! and thread count: the panel work is scalar Rust with a fixed order, and
//! every GEMM element is one fixed chain of fused multiply-adds (see
//! [`crate::gemm`]), whichever core computes it.

use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

use rayon::prelude::*;

use crate::gemm::{Element, MatMut, MatRef, gemm};

/// Columns per panel, the unit factored column by column.
pub(crate) const BLOCK: usize = 32;

/// Columns per block: the unit of the trailing updates and of `Q`'s
/// formation (`k = NB` in their rank-`NB` products, so they run at the
/// GEMM's rate rather than at the memory's).
pub(crate) const NB: usize = 128;

/// The floating-point types the QR works in (`f32`, `f64`).
pub(crate) trait Real:
    Element
    + Default
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
{
    /// One.
    const ONE: Self;
    /// Rounds an `f64` to this type.
    fn from_f64(x: f64) -> Self;
    /// Widens to `f64` (exact).
    fn to_f64(self) -> f64;
}

macro_rules! real_impl {
    ($t:ty) => {
        impl Real for $t {
            const ONE: Self = 1.0;
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    };
}

real_impl!(f32);
real_impl!(f64);

/// A column-major view (`ld` the distance between columns).
fn cm<T: Real>(data: &[T], rows: usize, cols: usize, ld: usize) -> MatRef<'_, T> {
    MatRef::col_major(data, rows, cols, ld).expect("the QR's views fit their buffers")
}

/// A mutable column-major view.
fn cm_mut<T: Real>(data: &mut [T], rows: usize, cols: usize, ld: usize) -> MatMut<'_, T> {
    MatMut::col_major(data, rows, cols, ld).expect("the QR's views fit their buffers")
}

/// `c ← alpha · a · b + beta · c` through [`crate::gemm`] (the shapes are
/// the QR's own, so a mismatch is a bug).
fn mm<T: Real>(alpha: T, a: MatRef<'_, T>, b: MatRef<'_, T>, beta: T, c: MatMut<'_, T>) {
    gemm(alpha, a, b, beta, c).expect("the QR's products have matching shapes");
}

/// `Σ x_i y_i` with 64 partial sums: enough independent additions to hide
/// their latency once the compiler vectorizes them (64 partial sums took
/// the panels' column loop from 4.0 to 2.4 ms at 1024², 32 did not). The chunks
/// of 64 go to all 64 sums, a remainder's chunks of 16 to the first 16,
/// the last few elements to one more, and the sums are added in a fixed
/// tree: the same operations whatever vectors the compiler uses.
#[inline(always)]
fn dot<T: Real>(x: &[T], y: &[T]) -> T {
    const L: usize = 64;
    const R: usize = 16;
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let mut acc = [T::ZERO; L];
    let mut xs = x.chunks_exact(L);
    let mut ys = y.chunks_exact(L);
    for (a, b) in (&mut xs).zip(&mut ys) {
        for l in 0..L {
            acc[l] += a[l] * b[l];
        }
    }
    let mut xr = xs.remainder().chunks_exact(R);
    let mut yr = ys.remainder().chunks_exact(R);
    for (a, b) in (&mut xr).zip(&mut yr) {
        for l in 0..R {
            acc[l] += a[l] * b[l];
        }
    }
    let mut tail = T::ZERO;
    for (&a, &b) in xr.remainder().iter().zip(yr.remainder()) {
        tail += a * b;
    }
    let mut half = L / 2;
    while half > 0 {
        for l in 0..half {
            acc[l] += acc[l + half];
        }
        half /= 2;
    }
    acc[0] + tail
}

/// `y ← y − w · x`.
#[inline(always)]
fn axpy_neg<T: Real>(w: T, x: &[T], y: &mut [T]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y -= w * x;
    }
}

/// `Σ x_i²` in `f64`.
#[inline(always)]
fn sum_sq_f64<T: Real>(x: &[T]) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut it = x.chunks_exact(4);
    for c in &mut it {
        for l in 0..4 {
            let v = c[l].to_f64();
            acc[l] += v * v;
        }
    }
    let tail: f64 = it.remainder().iter().map(|v| v.to_f64() * v.to_f64()).sum();
    (acc[0] + acc[2]) + (acc[1] + acc[3]) + tail
}

/// `dst[j · rows + i] = f(src[i · cols + j])`: the row-major `rows × cols`
/// `src` transposed into the row-major `cols × rows` `dst`, in `32 × 32`
/// blocks: a block's 32 source rows are read into a local tile (4 KiB, in
/// L1) in whole cache lines and each destination row is written in whole
/// lines from it. Strips of 32 destination rows run on rayon's pool when
/// the matrix is large (each strip writes its own rows).
///
/// # Panics
/// If either slice is not `rows · cols` long.
pub(crate) fn transpose<T: Copy + Sync, U: Copy + Send>(
    src: &[T],
    rows: usize,
    cols: usize,
    dst: &mut [U],
    f: impl Fn(T) -> U + Sync,
) {
    const B: usize = 32;
    /// Below this many elements the strips run on the calling thread.
    const PARALLEL: usize = 1 << 16;
    assert!(src.len() == rows * cols && dst.len() == rows * cols);
    if rows == 0 || cols == 0 {
        return;
    }
    // Destination rows `j0..j0 + jb` (source columns).
    let strip = |(s, out): (usize, &mut [U])| {
        let j0 = s * B;
        let jb = B.min(cols - j0);
        for i0 in (0..rows).step_by(B) {
            let ib = B.min(rows - i0);
            if ib == B && jb == B {
                let mut tile = [[src[0]; B]; B];
                for (i, t) in tile.iter_mut().enumerate() {
                    t.copy_from_slice(&src[(i0 + i) * cols + j0..][..B]);
                }
                for j in 0..B {
                    let d = &mut out[j * rows + i0..][..B];
                    for (d, t) in d.iter_mut().zip(&tile) {
                        *d = f(t[j]);
                    }
                }
            } else {
                for j in 0..jb {
                    for i in 0..ib {
                        out[j * rows + i0 + i] = f(src[(i0 + i) * cols + j0 + j]);
                    }
                }
            }
        }
    };
    if rows * cols >= PARALLEL && rayon::current_num_threads() > 1 {
        dst.par_chunks_mut(B * rows).enumerate().for_each(strip);
    } else {
        dst.chunks_mut(B * rows).enumerate().for_each(strip);
    }
}

/// A Householder QR factorization of an `m × n` matrix, `m >= n`.
#[derive(Debug)]
pub(crate) struct Qr<'a, T> {
    m: usize,
    n: usize,
    /// Column-major, `ld = m`: `R` on and above the diagonal, the reflector
    /// vectors (without their unit first entry) below.
    a: &'a [T],
    /// `τ_j` of each reflector.
    tau: Vec<T>,
    /// The `T` factor of each block: block `p` (columns `p·NB..`) at
    /// `p·NB²`, column-major `b × b` with `ld = NB`.
    t: Vec<T>,
}

/// Copies the reflectors of the panel whose diagonal starts at row `k`
/// (`b` columns, the first at the start of `cols`, leading dimension `m`)
/// into `v` as an explicit `(m − k) × b` column-major matrix
/// (`ld = m − k`): unit diagonal, zeros above it.
fn explicit_v<T: Real>(cols: &[T], m: usize, k: usize, b: usize, v: &mut Vec<T>) {
    let rows = m - k;
    v.clear();
    v.resize(rows * b, T::ZERO);
    for jj in 0..b {
        let j = k + jj;
        let col = &mut v[jj * rows..(jj + 1) * rows];
        col[jj] = T::ONE;
        col[jj + 1..].copy_from_slice(&cols[jj * m + j + 1..(jj + 1) * m]);
    }
}

/// Scratch for one panel factorization.
#[derive(Default)]
struct PanelScratch<T> {
    /// The panel's explicit `V`.
    v: Vec<T>,
    /// `VᵀV`.
    vtv: Vec<T>,
}

/// `T[0..b, 0..b]` (column-major, leading dimension `ld`, into `tp`) of
/// `H_1⋯H_b = I − V T Vᵀ`, from the `τ` and `VᵀV` (`b × b`, column-major)
/// of `b` reflectors: `T[i, i] = τ_i` and
/// `T[0..i, i] = −τ_i · T[0..i, 0..i] · (VᵀV)[0..i, i]`, each entry summed
/// over ascending `q` (a column of `T` at a time, so it vectorizes). Entries
/// below the diagonal are left alone (they stay zero).
fn triangular_factor<T: Real>(vtv: &[T], tau: &[T], b: usize, tp: &mut [T], ld: usize) {
    for i in 0..b {
        let (done, col) = tp.split_at_mut(i * ld);
        let col = &mut col[..=i];
        col.fill(T::ZERO);
        for q in 0..i {
            let y = vtv[q + i * b];
            for (c, &t) in col[..=q].iter_mut().zip(&done[q * ld..=q * ld + q]) {
                *c += t * y;
            }
        }
        for c in &mut col[..i] {
            *c = -tau[i] * *c;
        }
        col[i] = tau[i];
    }
}

/// Factors the panel whose diagonal starts at row `k`, column by column
/// (level-2): its `b <= BLOCK` columns are the first `b` columns of `cols`
/// (leading dimension `m`), already updated by every earlier reflector.
/// Writes the `b` values `τ`, the panel's `T` (leading dimension `ld`, into
/// `tp`) and its explicit `V` (into `s.v`).
#[allow(clippy::too_many_arguments)]
fn factor_panel<T: Real>(
    cols: &mut [T],
    m: usize,
    k: usize,
    b: usize,
    tau: &mut [T],
    tp: &mut [T],
    ld: usize,
    s: &mut PanelScratch<T>,
) {
    reflect_columns(cols, m, k, b, tau);
    gram(cols, m, k, b, s);
    triangular_factor(&s.vtv, tau, b, tp, ld);
}

/// For each of the panel's columns in turn: its reflector, applied at once
/// to the panel's later columns.
fn reflect_columns<T: Real>(cols: &mut [T], m: usize, k: usize, b: usize, tau: &mut [T]) {
    for jj in 0..b {
        let j = k + jj;
        let (before, rest) = cols.split_at_mut((jj + 1) * m);
        let col = &mut before[jj * m + j..];
        tau[jj] = reflector(col);
        if tau[jj] == T::ZERO {
            continue;
        }
        // Apply H_j = I − τ v vᵀ (v = [1, col[1..]]) to the panel's later
        // columns, rows j..m.
        for c in 0..b - jj - 1 {
            let y = &mut rest[c * m + j..(c + 1) * m];
            let s = tau[jj] * (y[0] + dot(&col[1..], &y[1..]));
            y[0] -= s;
            axpy_neg(s, &col[1..], &mut y[1..]);
        }
    }
}

/// `s.v ←` the explicit `V` of the `b` reflectors at the start of `cols`
/// (diagonal from row `k`), and `s.vtv ← VᵀV` (`b × b`, `ld = b`).
fn gram<T: Real>(cols: &[T], m: usize, k: usize, b: usize, s: &mut PanelScratch<T>) {
    explicit_v(cols, m, k, b, &mut s.v);
    let rows = m - k;
    let vm = cm(&s.v, rows, b, rows);
    s.vtv.clear();
    s.vtv.resize(b * b, T::ZERO);
    mm(T::ONE, vm.t(), vm, T::ZERO, cm_mut(&mut s.vtv, b, b, b));
}

/// Factors the block of `nb <= NB` columns at the start of `cols` whose
/// diagonal starts at row `k` (leading dimension `m`), already updated by
/// every earlier block: panel by panel ([`factor_panel`]), each panel's
/// block reflector applied to the block's later columns by GEMMs. Writes
/// the `nb` values `τ` and the block's `T` (`NB × NB`, column-major, into
/// `tp`), merged from the panels' as
/// `T = [T₁, −T₁ (V₁ᵀ V₂) T₂; 0, T₂]` (three GEMMs per panel, over the
/// rows where `V₂` is not zero).
fn factor_block<T: Real>(
    cols: &mut [T],
    m: usize,
    k: usize,
    nb: usize,
    tau: &mut [T],
    tp: &mut [T],
    s: &mut PanelScratch<T>,
) {
    if nb <= BLOCK {
        factor_panel(cols, m, k, nb, tau, tp, NB, s);
        return;
    }
    // The panel's `T`, the products that merge it into the block's, and
    // those of its block reflector.
    let mut tsub = vec![T::ZERO; BLOCK * BLOCK];
    let (mut x, mut y, mut w, mut w2) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for kk in (0..nb).step_by(BLOCK) {
        let bs = BLOCK.min(nb - kk);
        let rows = m - k - kk;
        let (done, cur) = cols.split_at_mut(kk * m);
        let (cur, rest) = cur.split_at_mut(bs * m);
        factor_panel(
            cur,
            m,
            k + kk,
            bs,
            &mut tau[kk..kk + bs],
            &mut tsub,
            BLOCK,
            s,
        );
        // The panel's `V` is in `s.v` (`rows × bs`).
        let vm = cm(&s.v, rows, bs, rows);
        let tj = cm(&tsub, bs, bs, BLOCK);
        let (t_left, t_right) = tp.split_at_mut(kk * NB);
        for j in 0..bs {
            t_right[j * NB + kk..][..bs].copy_from_slice(&tsub[j * BLOCK..][..bs]);
        }
        if kk > 0 {
            // The earlier panels' reflectors below row k + kk (all strictly
            // below their diagonals, so stored as they are).
            let v_done = cm(&done[k + kk..], rows, kk, m);
            x.clear();
            x.resize(kk * bs, T::ZERO);
            y.clear();
            y.resize(kk * bs, T::ZERO);
            mm(T::ONE, v_done.t(), vm, T::ZERO, cm_mut(&mut x, kk, bs, kk));
            mm(
                T::ONE,
                cm(&x, kk, bs, kk),
                tj,
                T::ZERO,
                cm_mut(&mut y, kk, bs, kk),
            );
            mm(
                -T::ONE,
                cm(t_left, kk, kk, NB),
                cm(&y, kk, bs, kk),
                T::ZERO,
                cm_mut(t_right, kk, bs, NB),
            );
        }
        let nc = nb - kk - bs;
        if nc > 0 {
            apply_block_reflector(vm, tj.t(), &mut rest[k + kk..], nc, m, &mut w, &mut w2);
        }
    }
}

/// Factors `a` (`m × n` column-major, `ld = m`, `m >= n`) in place, in
/// blocks of [`NB`] columns.
///
/// With look-ahead: once block `p` is factored, one task applies its block
/// reflector to the next block's columns and factors that block, while the
/// other applies it to the remaining columns (in column ranges, which the
/// first task's thread joins when it is done), the two in parallel
/// (`rayon::join`). Every column goes through the same
/// operations as without look-ahead (the GEMM's results do not depend on
/// how its columns are split), so the bits do not depend on it or on the
/// thread count.
///
/// # Panics
/// If `m < n` or `a.len() != m · n` (bugs of the caller).
pub(crate) fn qr<T: Real>(a: &mut [T], m: usize, n: usize) -> Qr<'_, T> {
    assert!(
        m >= n && a.len() == m * n,
        "qr: {m}x{n} with {} elements",
        a.len()
    );
    let mut tau = vec![T::ZERO; n];
    let mut t = vec![T::ZERO; n.div_ceil(NB) * NB * NB];
    if n == 0 {
        return Qr { m, n, a, tau, t };
    }
    let mut scratch = PanelScratch::default();
    let mut v = Vec::new();
    let (mut w, mut w2) = (Vec::new(), Vec::new());
    factor_block(a, m, 0, NB.min(n), &mut tau, &mut t, &mut scratch);
    for k in (0..n).step_by(NB) {
        let b = NB.min(n - k);
        let nc = n - k - b;
        if nc == 0 {
            break;
        }
        // The trailing columns get A2 ← (I − V T Vᵀ)ᵀ A2 = A2 − V (Tᵀ (Vᵀ A2)):
        // the next block's, then its factorization, beside the rest.
        let (left, right) = a.split_at_mut((k + b) * m);
        explicit_v(&left[k * m..], m, k, b, &mut v);
        let vm = cm(&v, m - k, b, m - k);
        let (t_done, t_next) = t.split_at_mut((k / NB + 1) * NB * NB);
        let tm = cm(&t_done[(k / NB) * NB * NB..], b, b, NB).t();
        let b2 = NB.min(nc);
        let (next, rest) = right.split_at_mut(b2 * m);
        let tau_next = &mut tau[k + b..k + b + b2];
        let scratch = &mut scratch;
        rayon::join(
            || {
                apply_block_reflector(vm, tm, &mut next[k..], b2, m, &mut w, &mut w2);
                factor_block(next, m, k + b, b2, tau_next, t_next, scratch)
            },
            || apply_in_column_ranges(vm, tm, rest, k, nc - b2, m),
        );
    }
    Qr { m, n, a, tau, t }
}

/// [`apply_block_reflector`] on rows `k..` of the `nc` columns of `cols`
/// (leading dimension `m`), in ranges of columns on rayon's pool, each with
/// its own products: a range's columns stay in its core's cache across the
/// three products, which one product over all columns split by the GEMM
/// does not give (a product's columns give the same bits however they are
/// split).
fn apply_in_column_ranges<T: Real>(
    v: MatRef<'_, T>,
    t: MatRef<'_, T>,
    cols: &mut [T],
    k: usize,
    nc: usize,
    m: usize,
) {
    if nc == 0 {
        return;
    }
    // Two ranges per thread (the thread factoring the next block joins
    // late); one range on one thread.
    let threads = rayon::current_num_threads();
    let parts = if threads == 1 { 1 } else { 2 * threads };
    let width = nc.div_ceil(parts).next_multiple_of(32).max(64);
    cols[..nc * m].par_chunks_mut(width * m).for_each(|range| {
        let (mut w, mut w2) = (Vec::new(), Vec::new());
        let cols = range.len() / m;
        apply_block_reflector(v, t, &mut range[k..], cols, m, &mut w, &mut w2);
    });
}

/// `C ← C − V (T (Vᵀ C))` for the `rows × nc` column-major `C` at the start
/// of `c` (leading dimension `ld`), where `V` is `rows × b` and `T` is
/// `b × b` (pass `T` or its transpose): applies a block of reflectors
/// `I − V T Vᵀ` (or its transpose) by three GEMMs. `w` and `w2` are scratch.
fn apply_block_reflector<T: Real>(
    v: MatRef<'_, T>,
    t: MatRef<'_, T>,
    c: &mut [T],
    nc: usize,
    ld: usize,
    w: &mut Vec<T>,
    w2: &mut Vec<T>,
) {
    let (rows, b) = (v.rows(), v.cols());
    w.clear();
    w.resize(b * nc, T::ZERO);
    mm(
        T::ONE,
        v.t(),
        cm(c, rows, nc, ld),
        T::ZERO,
        cm_mut(w, b, nc, b),
    );
    finish_block_reflector(v, t, c, nc, ld, w, w2);
}

/// The rest of [`apply_block_reflector`] once `w` holds `W = Vᵀ C`
/// (`b × nc`, `ld = b`): `C ← C − V (T W)`.
fn finish_block_reflector<T: Real>(
    v: MatRef<'_, T>,
    t: MatRef<'_, T>,
    c: &mut [T],
    nc: usize,
    ld: usize,
    w: &[T],
    w2: &mut Vec<T>,
) {
    let (rows, b) = (v.rows(), v.cols());
    w2.clear();
    w2.resize(b * nc, T::ZERO);
    mm(T::ONE, t, cm(w, b, nc, b), T::ZERO, cm_mut(w2, b, nc, b));
    mm(
        -T::ONE,
        v,
        cm(w2, b, nc, b),
        T::ONE,
        cm_mut(c, rows, nc, ld),
    );
}

/// Makes `x` (a column from the diagonal down) into a reflector: on return
/// `x[0] = β` and `x[1..] = v[1..]`; returns `τ` (0 when `x[1..]` is already
/// zero: `H = I`, `β = x[0]`).
#[inline(always)]
fn reflector<T: Real>(x: &mut [T]) -> T {
    let alpha = x[0].to_f64();
    let xnorm2 = sum_sq_f64(&x[1..]);
    if xnorm2 == 0.0 {
        return T::ZERO;
    }
    let norm = (alpha * alpha + xnorm2).sqrt();
    let beta = if alpha >= 0.0 { -norm } else { norm };
    let tau = (beta - alpha) / beta;
    let scale = T::from_f64(1.0 / (alpha - beta));
    for v in &mut x[1..] {
        *v *= scale;
    }
    x[0] = T::from_f64(beta);
    T::from_f64(tau)
}

impl<T: Real> Qr<'_, T> {
    /// `R[j, j]`.
    pub(crate) fn r_diag(&self, j: usize) -> T {
        self.a[j + j * self.m]
    }

    /// `R` (`n × n`, column-major), for tests.
    #[cfg(test)]
    fn r(&self) -> Vec<T> {
        let n = self.n;
        let mut r = vec![T::ZERO; n * n];
        for j in 0..n {
            for i in 0..=j {
                r[i + j * n] = self.a[i + j * self.m];
            }
        }
        r
    }

    /// Writes the thin `Q` into `q`: the first `n` columns of `H_1⋯H_n`,
    /// `m × n` column-major.
    ///
    /// The columns of `Q` are independent (`Q e_j = H_1⋯H_n e_j`), so they
    /// are cut into one range per thread, of about equal work, and each
    /// range takes every block in turn on its own; a product's columns give
    /// the same bits however they are split, so the result does not depend
    /// on the ranges. (Applying each block to all columns with parallel
    /// GEMMs ran 1.3× faster on two threads than on one: the products per
    /// block are too small to split well.)
    ///
    /// # Panics
    /// If `q` is not `m · n` long (a bug of the caller).
    pub(crate) fn form_q(&self, q: &mut [T]) {
        let (m, n) = (self.m, self.n);
        assert_eq!(q.len(), m * n, "form_q: {m}x{n} into {}", q.len());
        if n == 0 {
            return;
        }
        // The blocks that are not the identity, with their explicit `V`.
        let blocks: Vec<(usize, Vec<T>)> = (0..n)
            .step_by(NB)
            .filter(|&k| self.tau[k..k + NB.min(n - k)].iter().any(|&t| t != T::ZERO))
            .map(|k| {
                let mut v = Vec::new();
                explicit_v(&self.a[k * m..], m, k, NB.min(n - k), &mut v);
                (k, v)
            })
            .collect();
        let ranges = column_ranges(m, n, rayon::current_num_threads());
        let mut parts = Vec::with_capacity(ranges.len());
        let mut rest = q;
        for &(c0, c1) in &ranges {
            let (part, tail) = rest.split_at_mut((c1 - c0) * m);
            parts.push((c0, c1, part));
            rest = tail;
        }
        parts
            .into_par_iter()
            .for_each(|(c0, c1, part)| self.form_q_columns(&blocks, c0, c1, part));
    }

    /// Columns `c0..c1` of `Q` into `part` (`m × (c1 − c0)`, `ld = m`).
    fn form_q_columns(&self, blocks: &[(usize, Vec<T>)], c0: usize, c1: usize, part: &mut [T]) {
        let (m, n) = (self.m, self.n);
        part.fill(T::ZERO);
        for j in c0..c1 {
            part[j + (j - c0) * m] = T::ONE;
        }
        let (mut w, mut w2) = (Vec::new(), Vec::new());
        for (k, v) in blocks.iter().rev() {
            let k = *k;
            if k >= c1 {
                continue;
            }
            let b = NB.min(n - k);
            let (rows, lo) = (m - k, k.max(c0));
            let nc = c1 - lo;
            let vm = cm(v, rows, b, rows);
            let tm = cm(&self.t[(k / NB) * NB * NB..], b, b, NB);
            // Q2 ← (I − V T Vᵀ) Q2 = Q2 − V (T (Vᵀ Q2)) on rows k.. of
            // columns lo..c1. The block's own columns are still those of
            // the identity (later blocks touch columns from their own on),
            // so their part of `W = Vᵀ Q2` is rows of `V`: only the other
            // columns take a product.
            let off = k + (lo - c0) * m;
            let ident = (k + b).saturating_sub(lo).min(nc);
            w.clear();
            w.resize(b * nc, T::ZERO);
            for jj in 0..ident {
                let r = lo + jj - k;
                for i in 0..b {
                    w[i + jj * b] = v[r + i * rows];
                }
            }
            if nc > ident {
                // Those columns (past the block's own) are still zero in the
                // block's `b` rows, so the product skips them: the chain
                // over `k` starts at `+0` and stays there through zero
                // terms, so the bits are those of the full product.
                mm(
                    T::ONE,
                    cm(&v[b..], rows - b, b, rows).t(),
                    cm(&part[off + b + ident * m..], rows - b, nc - ident, m),
                    T::ZERO,
                    cm_mut(&mut w[ident * b..], b, nc - ident, b),
                );
            }
            finish_block_reflector(vm, tm, &mut part[off..], nc, m, &w, &mut w2);
        }
    }
}

/// Cuts columns `0..n` of an `m × n` thin `Q` into `parts` ranges of about
/// equal work, at multiples of 32 columns: column `j` costs one row of work
/// per row below each block that starts at or before it.
fn column_ranges(m: usize, n: usize, parts: usize) -> Vec<(usize, usize)> {
    const STEP: usize = 32;
    let cost = |j: usize| -> f64 { (0..=j / NB).map(|p| (m - p * NB) as f64).sum() };
    let total: f64 = (0..n).map(cost).sum();
    let mut ranges = Vec::new();
    let (mut start, mut acc) = (0, 0.0);
    for j in 0..n {
        acc += cost(j);
        let boundary = (j + 1) % STEP == 0 || j + 1 == n;
        let share = total * (ranges.len() + 1) as f64 / parts.max(1) as f64;
        if boundary && (acc >= share || j + 1 == n) {
            ranges.push((start, j + 1));
            start = j + 1;
        }
    }
    ranges
}

/// The `Q` of the QR factorization of `a` (`m × n` column-major, `m >= n`)
/// whose `R` has a non-negative diagonal: the thin `Q` with column `j`
/// multiplied by `sign(R[j, j])`, taking `sign(0) = +1`. For a matrix of full
/// column rank this `Q` is unique (it does not depend on the reflector sign
/// convention), and it is what `torch.linalg.qr` followed by PyTorch's sign
/// correction computes. Factors `a` in place and writes `Q` into `q`, both
/// `m × n` column-major.
///
/// # Panics
/// If `m < n` or either slice is not `m · n` long (bugs of the caller).
pub(crate) fn orthonormal_columns<T: Real>(a: &mut [T], m: usize, n: usize, q: &mut [T]) {
    let f = qr(a, m, n);
    f.form_q(q);
    for j in 0..n {
        if f.r_diag(j) < T::ZERO {
            for x in &mut q[j * m..(j + 1) * m] {
                *x = -*x;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reproducible matrix with entries in [-1, 1).
    fn matrix(m: usize, n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..m * n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
            })
            .collect()
    }

    /// `aᵀ b` of column-major matrices (a: m×p, b: m×q) in f64, naive.
    fn at_b(a: &[f64], b: &[f64], m: usize, p: usize, q: usize) -> Vec<f64> {
        let mut c = vec![0.0; p * q];
        for i in 0..p {
            for j in 0..q {
                c[i + j * p] = (0..m).map(|r| a[r + i * m] * b[r + j * m]).sum();
            }
        }
        c
    }

    /// Unblocked Householder QR, reflectors applied one at a time to the
    /// whole matrix and to the identity: the textbook algorithm.
    fn reference_qr(a: &[f64], m: usize, n: usize) -> (Vec<f64>, Vec<f64>) {
        let mut r = a.to_vec();
        let mut q = vec![0.0; m * m];
        for i in 0..m {
            q[i + i * m] = 1.0;
        }
        for j in 0..n {
            let x: Vec<f64> = (j..m).map(|i| r[i + j * m]).collect();
            // As LAPACK: no reflection when the part below the diagonal is
            // already zero.
            if x[1..].iter().all(|&v| v == 0.0) {
                continue;
            }
            let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
            let mut v = x.clone();
            v[0] += if x[0] >= 0.0 { norm } else { -norm };
            let vv: f64 = v.iter().map(|a| a * a).sum();
            // r ← (I − 2 v vᵀ / vᵀv) r on rows j..m.
            for c in 0..n {
                let s: f64 = (0..v.len()).map(|i| v[i] * r[j + i + c * m]).sum::<f64>() * 2.0 / vv;
                for i in 0..v.len() {
                    r[j + i + c * m] -= s * v[i];
                }
            }
            // q ← q (I − 2 v vᵀ / vᵀv) on columns j..m.
            for row in 0..m {
                let s: f64 = (0..v.len())
                    .map(|i| q[row + (j + i) * m] * v[i])
                    .sum::<f64>()
                    * 2.0
                    / vv;
                for i in 0..v.len() {
                    q[row + (j + i) * m] -= s * v[i];
                }
            }
        }
        let thin_q = q[..m * n].to_vec();
        let mut thin_r = vec![0.0; n * n];
        for j in 0..n {
            for i in 0..=j {
                thin_r[i + j * n] = r[i + j * m];
            }
        }
        (thin_q, thin_r)
    }

    fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    fn check(m: usize, n: usize, seed: u64) {
        let a = matrix(m, n, seed);
        let mut fa = a.clone();
        let f = qr(&mut fa, m, n);
        let mut q = vec![0.0; m * n];
        f.form_q(&mut q);
        let r = f.r();
        // R upper triangular (by construction of `r()`, check the storage
        // really holds β on the diagonal), A = QR, QᵀQ = I.
        let mut qr_prod = vec![0.0; m * n];
        for j in 0..n {
            for i in 0..m {
                qr_prod[i + j * m] = (0..=j).map(|p| q[i + p * m] * r[p + j * n]).sum();
            }
        }
        let scale = a.iter().fold(1.0f64, |s, x| s.max(x.abs()));
        assert!(
            max_abs_diff(&qr_prod, &a) <= 1e-12 * scale * m as f64,
            "{m}x{n}: A != QR"
        );
        let mut qtq = at_b(&q, &q, m, n, n);
        for i in 0..n {
            qtq[i + i * n] -= 1.0;
        }
        assert!(qtq.iter().all(|x| x.abs() < 1e-13), "{m}x{n}: QᵀQ != I");
        // Against the unblocked textbook algorithm (same sign convention).
        let (q_ref, r_ref) = reference_qr(&a, m, n);
        assert!(max_abs_diff(&q, &q_ref) < 1e-11, "{m}x{n}: Q differs");
        assert!(
            max_abs_diff(&r, &r_ref) <= 1e-11 * m as f64,
            "{m}x{n}: R differs"
        );
        // Sign-corrected Q has R with a non-negative diagonal.
        let mut qs = vec![0.0; m * n];
        orthonormal_columns(&mut a.clone(), m, n, &mut qs);
        let rs = at_b(&qs, &a, m, n, n);
        for j in 0..n {
            assert!(rs[j + j * n] >= -1e-12, "{m}x{n}: diag {j} negative");
            for i in j + 1..n {
                assert!(
                    rs[i + j * n].abs() < 1e-11,
                    "{m}x{n}: QᵀA not upper triangular"
                );
            }
        }
    }

    #[test]
    fn qr_matches_the_unblocked_reference() {
        for (m, n) in [
            (1, 1),
            (5, 1),
            (1, 0),
            (0, 0),
            (7, 0),
            (3, 3),
            (17, 5),
            (31, 31),
            (32, 32),
            (33, 33),
            (65, 40),
            (100, 67),
            (130, 129),
            (97, 97),
            // Several blocks of `NB` columns, with partial panels and a
            // partial last block.
            (300, 300),
            (420, 290),
            (261, 257),
        ] {
            check(m, n, (m * 131 + n) as u64);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Random sizes around the panel width, random seeds: the blocked
        /// factorization against the unblocked one.
        #[test]
        fn qr_of_random_sizes(n in 0usize..75, extra in 0usize..40, seed in 0u64..1000) {
            check(n + extra, n, seed);
        }
    }

    #[test]
    fn zero_and_rank_deficient_columns() {
        // A zero column and a repeated column: H = I for the zero one,
        // QᵀQ = I still.
        let (m, n) = (40, 36);
        let mut a = matrix(m, n, 9);
        for i in 0..m {
            a[i + 3 * m] = 0.0;
            a[i + 34 * m] = a[i + 33 * m];
        }
        let mut q = vec![0.0; m * n];
        orthonormal_columns(&mut a, m, n, &mut q);
        let mut qtq = at_b(&q, &q, m, n, n);
        for i in 0..n {
            qtq[i + i * n] -= 1.0;
        }
        assert!(qtq.iter().all(|x| x.abs() < 1e-12));
    }

    #[test]
    fn f32_is_orthogonal_to_1e_5() {
        for (m, n) in [(300, 300), (513, 200)] {
            let mut a: Vec<f32> = matrix(m, n, 3).iter().map(|&x| x as f32).collect();
            let mut q = vec![0.0; m * n];
            orthonormal_columns(&mut a, m, n, &mut q);
            let q64: Vec<f64> = q.iter().map(|&x| x as f64).collect();
            let mut qtq = at_b(&q64, &q64, m, n, n);
            for i in 0..n {
                qtq[i + i * n] -= 1.0;
            }
            let worst = qtq.iter().fold(0.0f64, |s, x| s.max(x.abs()));
            assert!(worst < 1e-5, "{m}x{n}: |QᵀQ − I| = {worst:e}");
        }
    }

    #[test]
    fn transpose_tiles_cover_everything() {
        for (rows, cols) in [(0, 3), (1, 1), (3, 70), (33, 65), (64, 32)] {
            let src: Vec<u32> = (0..(rows * cols) as u32).collect();
            let mut dst = vec![0u64; rows * cols];
            transpose(&src, rows, cols, &mut dst, |x| x as u64 + 1);
            for i in 0..rows {
                for j in 0..cols {
                    assert_eq!(dst[j * rows + i], src[i * cols + j] as u64 + 1);
                }
            }
        }
    }

    #[test]
    fn gemm_checks_and_handles_edges() {
        // k = 0: c ← beta c; beta = 0 overwrites NaN.
        let mut c = vec![f64::NAN; 4];
        mm(
            1.0,
            cm(&[], 2, 0, 2),
            cm(&[], 0, 2, 1),
            0.0,
            cm_mut(&mut c, 2, 2, 2),
        );
        assert_eq!(c, [0.0; 4]);
        // A transposed view: [[1, 2], [3, 4]]ᵀ · I.
        let a = [1.0f32, 3.0, 2.0, 4.0];
        let i = [1.0f32, 0.0, 0.0, 1.0];
        let mut c = [0.0f32; 4];
        mm(
            1.0,
            cm(&a, 2, 2, 2).t(),
            cm(&i, 2, 2, 2),
            0.0,
            cm_mut(&mut c, 2, 2, 2),
        );
        assert_eq!(c, [1.0, 2.0, 3.0, 4.0]);
        let r = std::panic::catch_unwind(|| {
            let mut c = [0.0f32; 3];
            mm(
                1.0,
                cm(&a, 2, 2, 2),
                cm(&i, 2, 2, 2),
                0.0,
                cm_mut(&mut c, 2, 2, 2),
            );
        });
        assert!(r.is_err(), "an output view past its slice must panic");
    }
}
