//! Matrix products for the `nn` layers and the QR: one safe, shape-checked
//! entry point over our own packed, cache-blocked GEMM.
//!
//! [`gemm`] computes `C ← α·A·B + β·C` where `A` and `B` are strided views
//! ([`MatRef`]): a transpose is a view with its strides swapped
//! ([`MatRef::t`]), never a copy. `C` is a strided [`MatMut`] whose
//! elements are distinct. The layers use three products, all through
//! [`gemm`]:
//!
//! | product | `A` | `B` |
//! |---|---|---|
//! | forward `Y = X·Wᵀ + b` ([`linear`], the bias add fused into the product) | `X` `[batch, in]` | `Wᵀ` (view of `W` `[out, in]`) |
//! | weight gradient `dW += dYᵀ·X` | `dYᵀ` (view) | `X` |
//! | input gradient `dX = dY·W` | `dY` | `W` |
//!
//! # The same bits everywhere
//! Every element of `C` is one chain of single-rounding fused multiply-adds
//! over `k` in ascending order, from `+0`, followed by a fixed epilogue
//! (`α ⊗ acc`, `fma(β, c, α ⊗ acc)` or `acc ⊕ bias`; the exact rules are in
//! the `kernel` module's docs, next to the kernel). The portable kernel
//! (`f32::mul_add`), the AVX2+FMA one and the AVX-512 one all compute that
//! chain, and neither the register tile, the cache blocks, the edge of the
//! matrix nor the thread that computes a tile changes it. So products, the
//! `Linear` forward and backward, training steps and
//! [`orthogonal_`](crate::init::orthogonal_) give the same bits on every CPU,
//! every [`Isa`](crate::kernels::Isa) (chosen as for the fills:
//! [`Kernels::active`], `NNINIT_ISA`; [`gemm_with`] picks one) and every
//! thread count (all tested).
//!
//! # How
//! BLIS's scheme: `op(A)` is packed into panels of `MR` rows and `B` into
//! panels of `NR` columns (64-byte-aligned buffers, kept per thread between
//! calls), both once per product and shared by every thread; `C` is cut into
//! blocks of `MC × NC`, one rayon task each, and a task walks its block in
//! `k` blocks of `KC` with an `MR × NR` register-tile micro-kernel (sizes and
//! reasons: the `blocking` module). When `C` is column-major the product is
//! computed as `Cᵀ = Bᵀ·Aᵀ` (the same chains), so that the kernel's vectors
//! run along `C`'s contiguous dimension.
//!
//! # Threads
//! Products of fewer than [`INLINE_FLOPS`] floating-point operations run on
//! the calling thread (a small network's forward pays no pool overhead), and
//! the smallest ones (at most [`SMALL_FMAS`] multiply-adds, like the
//! chapter's `2×4 · 4×8`) skip packing too. Larger ones pack and compute on
//! rayon's current pool (the one pool the crate uses).

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::kernels::Kernels;
use crate::tensor::Tensor;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod blocking;
mod kernel;
mod pack;
mod scalar;

use blocking::Backend;
use kernel::{Block, Epilogue};
use pack::Slot;

/// Products with fewer floating-point operations (`2·m·k·n`) than this run
/// inline on the calling thread.
pub const INLINE_FLOPS: usize = 1 << 21;

/// Products of at most this many multiply-adds (`m·k·n`) are computed
/// straight from the views, without packing.
pub const SMALL_FMAS: usize = 1 << 12;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The element types [`gemm`] multiplies: `f32` (the layers) and `f64`
/// (sealed).
pub trait Element:
    Copy + Send + Sync + PartialEq + std::fmt::Debug + 'static + sealed::Sealed
{
    /// Zero.
    const ZERO: Self;
    /// `β · x`, or `0` when `β = 0`.
    fn scale(self, beta: Self) -> Self;
    /// `self · b + c` with one rounding.
    #[doc(hidden)]
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// `self ⊗ b`.
    #[doc(hidden)]
    fn fmul(self, b: Self) -> Self;
    /// `self ⊕ b`.
    #[doc(hidden)]
    fn fadd(self, b: Self) -> Self;
    /// Packs columns `j0..j0 + cols` of a column-contiguous view into a panel
    /// with `backend`'s vector transposes; `false` if there are none for
    /// this type (the caller packs element by element).
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    fn pack_cols(
        backend: Backend,
        data: &[Self],
        cs: usize,
        j0: usize,
        cols: usize,
        k: usize,
        w: usize,
        panel: &mut [Self],
    ) -> bool;
    /// Runs one block on `backend`'s kernel for this type.
    ///
    /// # Safety
    /// As `kernel::run_block`.
    #[doc(hidden)]
    unsafe fn block(backend: Backend, blk: &mut Block<'_, Self>);
    /// The small-product path on `backend`.
    ///
    /// # Safety
    /// As `kernel::small`.
    #[doc(hidden)]
    unsafe fn small(
        backend: Backend,
        a: MatRef<'_, Self>,
        b: MatRef<'_, Self>,
        c: *mut Self,
        rs: usize,
        cs: usize,
        epi: Epilogue<'_, Self>,
    );
}

macro_rules! element_impl {
    ($t:ty, $block:ident, $pack_cols:expr) => {
        impl Element for $t {
            fn pack_cols(
                backend: Backend,
                data: &[Self],
                cs: usize,
                j0: usize,
                cols: usize,
                k: usize,
                w: usize,
                panel: &mut [Self],
            ) -> bool {
                $pack_cols(backend, data, cs, j0, cols, k, w, panel)
            }
            const ZERO: Self = 0.0;
            fn scale(self, beta: Self) -> Self {
                if beta == 0.0 { 0.0 } else { beta * self }
            }
            #[inline(always)]
            fn mul_add(self, b: Self, c: Self) -> Self {
                <$t>::mul_add(self, b, c)
            }
            #[inline(always)]
            fn fmul(self, b: Self) -> Self {
                self * b
            }
            #[inline(always)]
            fn fadd(self, b: Self) -> Self {
                self + b
            }
            unsafe fn block(backend: Backend, blk: &mut Block<'_, Self>) {
                // SAFETY: forwarded to the caller; a backend value exists
                // only on a CPU with its features.
                unsafe {
                    match backend {
                        Backend::Scalar => scalar::block(blk),
                        #[cfg(target_arch = "x86_64")]
                        Backend::Avx2(t) => avx2::$block(t, blk),
                        #[cfg(target_arch = "x86_64")]
                        Backend::Avx512(t) => avx512::$block(t, blk),
                    }
                }
            }
            unsafe fn small(
                backend: Backend,
                a: MatRef<'_, Self>,
                b: MatRef<'_, Self>,
                c: *mut Self,
                rs: usize,
                cs: usize,
                epi: Epilogue<'_, Self>,
            ) {
                // SAFETY: forwarded to the caller; a backend value exists
                // only on a CPU with its features.
                unsafe {
                    match backend {
                        Backend::Scalar => kernel::small(a, b, c, rs, cs, epi),
                        #[cfg(target_arch = "x86_64")]
                        Backend::Avx2(t) => avx2::small(t, a, b, c, rs, cs, epi),
                        #[cfg(target_arch = "x86_64")]
                        Backend::Avx512(t) => avx512::small(t, a, b, c, rs, cs, epi),
                    }
                }
            }
        }
    };
}

/// The `f32` vector transposes: AVX (on both x86 backends).
#[allow(clippy::too_many_arguments)]
fn pack_cols_f32(
    backend: Backend,
    data: &[f32],
    cs: usize,
    j0: usize,
    cols: usize,
    k: usize,
    w: usize,
    panel: &mut [f32],
) -> bool {
    let t = match backend {
        Backend::Scalar => return false,
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2(t) => t,
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512(t) => avx2::Avx2::from_avx512(t),
    };
    #[cfg(target_arch = "x86_64")]
    avx2::pack_cols_f32(t, data, cs, j0, cols, k, w, panel);
    true
}

element_impl!(f32, block_f32, pack_cols_f32);
element_impl!(f64, block_f64, |_, _, _, _, _, _, _, _| false);

/// One past the last element of a strided `rows × cols` view (0 when
/// empty), or `None` on overflow or a stride beyond `isize`.
fn span(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    if isize::try_from(rs).is_err() || isize::try_from(cs).is_err() {
        return None;
    }
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1)
        .checked_mul(rs)?
        .checked_add((cols - 1).checked_mul(cs)?)?
        .checked_add(1)
}

/// A read-only strided view of a matrix: element `(i, j)` is
/// `data[i·row_stride + j·col_stride]`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a, T: Element = f32> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a, T: Element> MatRef<'a, T> {
    /// A general strided view.
    ///
    /// # Errors
    /// [`Error::MatrixView`] if some element of the view lies outside `data`
    /// or a stride exceeds `isize::MAX`.
    pub fn new(
        data: &'a [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<MatRef<'a, T>> {
        match span(rows, cols, row_stride, col_stride) {
            Some(end) if end <= data.len() => Ok(MatRef {
                data,
                rows,
                cols,
                row_stride,
                col_stride,
            }),
            _ => Err(Error::MatrixView {
                rows,
                cols,
                row_stride,
                col_stride,
                len: data.len(),
            }),
        }
    }

    /// A row-major `rows × cols` matrix at the start of `data`.
    ///
    /// # Errors
    /// [`Error::MatrixView`] if `data` holds fewer than `rows·cols` elements.
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Result<MatRef<'a, T>> {
        MatRef::new(data, rows, cols, cols, 1)
    }

    /// A column-major `rows × cols` matrix with leading dimension `ld`
    /// (element `(i, j)` at `i + j·ld`).
    ///
    /// # Errors
    /// [`Error::MatrixView`] if it does not fit in `data`.
    pub fn col_major(data: &'a [T], rows: usize, cols: usize, ld: usize) -> Result<MatRef<'a, T>> {
        MatRef::new(data, rows, cols, 1, ld)
    }

    /// The transpose: the same data with rows and columns swapped.
    pub fn t(self) -> MatRef<'a, T> {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Element `(i, j)`.
    ///
    /// # Panics
    /// If `i` or `j` is out of range.
    pub fn at(&self, i: usize, j: usize) -> T {
        assert!(i < self.rows && j < self.cols, "({i}, {j}) out of range");
        self.data[i * self.row_stride + j * self.col_stride]
    }

    /// Rows `r0..r0 + rows` and columns `c0..c0 + cols` (callers stay in
    /// range and ask for a non-empty part).
    fn sub(self, r0: usize, rows: usize, c0: usize, cols: usize) -> MatRef<'a, T> {
        debug_assert!(rows > 0 && cols > 0 && r0 + rows <= self.rows && c0 + cols <= self.cols);
        MatRef {
            data: &self.data[r0 * self.row_stride + c0 * self.col_stride..],
            rows,
            cols,
            ..self
        }
    }
}

impl<'a> MatRef<'a, f32> {
    /// A 2-D tensor as a row-major matrix.
    ///
    /// # Errors
    /// [`Error::MatrixDims`] if the tensor is not 2-D.
    pub fn from_tensor(t: &'a Tensor) -> Result<MatRef<'a, f32>> {
        match *t.shape() {
            [rows, cols] => MatRef::row_major(t.as_slice(), rows, cols),
            _ => Err(Error::MatrixDims {
                shape: t.shape().to_vec(),
            }),
        }
    }
}

/// A mutable strided matrix (the output of [`gemm`]) whose elements are
/// distinct places of its buffer.
#[derive(Debug)]
pub struct MatMut<'a, T: Element = f32> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a, T: Element> MatMut<'a, T> {
    /// A general strided view.
    ///
    /// # Errors
    /// [`Error::MatrixView`] if some element lies outside `data`, or the
    /// strides would map two elements to one place (one stride must span the
    /// other dimension: `col_stride ≥ rows·row_stride` or
    /// `row_stride ≥ cols·col_stride`).
    pub fn new(
        data: &'a mut [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<MatMut<'a, T>> {
        let distinct = rows == 0
            || cols == 0
            || ((rows == 1 || row_stride >= 1)
                && (cols == 1 || col_stride >= 1)
                && (rows == 1
                    || cols == 1
                    || col_stride >= rows.saturating_mul(row_stride)
                    || row_stride >= cols.saturating_mul(col_stride)));
        match span(rows, cols, row_stride, col_stride) {
            Some(end) if end <= data.len() && distinct => Ok(MatMut {
                data,
                rows,
                cols,
                row_stride,
                col_stride,
            }),
            _ => Err(Error::MatrixView {
                rows,
                cols,
                row_stride,
                col_stride,
                len: data.len(),
            }),
        }
    }

    /// A row-major `rows × cols` matrix at the start of `data`.
    ///
    /// # Errors
    /// [`Error::MatrixView`] if `data` is too short.
    pub fn row_major(data: &'a mut [T], rows: usize, cols: usize) -> Result<MatMut<'a, T>> {
        MatMut::new(data, rows, cols, cols, 1)
    }

    /// A column-major `rows × cols` matrix with leading dimension `ld`.
    ///
    /// # Errors
    /// [`Error::MatrixView`] if it does not fit or `ld < rows`.
    pub fn col_major(
        data: &'a mut [T],
        rows: usize,
        cols: usize,
        ld: usize,
    ) -> Result<MatMut<'a, T>> {
        MatMut::new(data, rows, cols, 1, ld)
    }
}

impl<'a> MatMut<'a, f32> {
    /// A 2-D tensor as a mutable row-major matrix.
    ///
    /// # Errors
    /// [`Error::MatrixDims`] if the tensor is not 2-D.
    pub fn from_tensor(t: &'a mut Tensor) -> Result<MatMut<'a, f32>> {
        match *t.shape() {
            [rows, cols] => MatMut::row_major(t.as_mut_slice(), rows, cols),
            _ => Err(Error::MatrixDims {
                shape: t.shape().to_vec(),
            }),
        }
    }
}

/// `C ← α·A·B + β·C` on the active kernels ([`Kernels::active`]), parallel
/// on rayon's current pool for large products.
///
/// With `β = 0`, `C` is only written (its old values, even NaN, are
/// ignored); with `k = 0` or `α = 0`, `A` and `B` are not read. Each element
/// is computed as the module docs say, with the same bits on every
/// instruction set and thread count.
///
/// # Errors
/// [`Error::MatmulShape`] if `A`'s columns differ from `B`'s rows (PyTorch's
/// text: `mat1 and mat2 shapes cannot be multiplied (2x5 and 4x8)`), and
/// [`Error::GemmOutputShape`] if `C` is not `A.rows × B.cols`.
///
/// ```
/// use nninit::gemm::{gemm, MatMut, MatRef};
///
/// let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2×3
/// let w = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0]; // 2×3, used transposed
/// let mut c = [0.0f32; 4];
/// gemm(
///     1.0,
///     MatRef::row_major(&a, 2, 3).unwrap(),
///     MatRef::row_major(&w, 2, 3).unwrap().t(),
///     0.0,
///     MatMut::row_major(&mut c, 2, 2).unwrap(),
/// )
/// .unwrap();
/// assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
/// ```
pub fn gemm<T: Element>(
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: MatMut<'_, T>,
) -> Result<()> {
    gemm_with(Kernels::active(), alpha, a, b, beta, c)
}

/// [`gemm`] on the kernels of `kernels`' instruction set (which proves the
/// CPU has it): for tests and benchmarks that compare instruction sets. The
/// result is the same on every one.
///
/// # Errors
/// As [`gemm`].
///
/// ```
/// use nninit::gemm::{gemm_with, MatMut, MatRef};
/// use nninit::kernels::{Isa, Kernels};
///
/// let a = [1.5f64, -2.0, 0.25, 3.0];
/// let mut c = [[0.0f64; 4]; 2];
/// for (isa, c) in [Isa::Scalar, Isa::best()].into_iter().zip(&mut c) {
///     let m = MatRef::row_major(&a, 2, 2).unwrap();
///     gemm_with(Kernels::new(isa).unwrap(), 1.0, m, m.t(), 0.0,
///               MatMut::row_major(c, 2, 2).unwrap()).unwrap();
/// }
/// assert_eq!(c[0], c[1]);
/// ```
pub fn gemm_with<T: Element>(
    kernels: Kernels,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: MatMut<'_, T>,
) -> Result<()> {
    check_shapes(&a, &b, &c)?;
    let epi = if beta == T::ZERO {
        Epilogue::Overwrite { alpha }
    } else {
        Epilogue::Accumulate { alpha, beta }
    };
    run(Backend::of(kernels), a, b, c, epi);
    Ok(())
}

fn check_shapes<T: Element>(a: &MatRef<'_, T>, b: &MatRef<'_, T>, c: &MatMut<'_, T>) -> Result<()> {
    if a.cols != b.rows {
        return Err(Error::MatmulShape {
            left: [a.rows, a.cols],
            right: [b.rows, b.cols],
        });
    }
    if c.rows != a.rows || c.cols != b.cols {
        return Err(Error::GemmOutputShape {
            expected: [a.rows, b.cols],
            found: [c.rows, c.cols],
        });
    }
    Ok(())
}

/// The output pointer shared by the tasks of a product.
#[derive(Clone, Copy)]
struct OutPtr<T>(*mut T);

impl<T> OutPtr<T> {
    /// The pointer `offset` elements on (a method, so closures capture the
    /// whole `Send + Sync` wrapper rather than its raw field).
    ///
    /// # Safety
    /// As `pointer::add`: the result must stay inside the buffer.
    unsafe fn at(self, offset: usize) -> *mut T {
        // SAFETY: forwarded to the caller.
        unsafe { self.0.add(offset) }
    }
}

// SAFETY: the pointer is only dereferenced by kernel calls whose written
// elements are disjoint (see `run`); the buffer outlives them.
unsafe impl<T: Send> Send for OutPtr<T> {}
// SAFETY: as for `Send`: shared use writes disjoint elements only.
unsafe impl<T: Send> Sync for OutPtr<T> {}

/// Whether the padded work of `Cᵀ = Bᵀ·Aᵀ` is smaller than that of
/// `C = A·B`. A `C` whose columns are not contiguous costs a scalar
/// epilogue per element (weighed as 64 multiply-adds).
fn transposed_is_cheaper(
    m: usize,
    n: usize,
    k: usize,
    rs: usize,
    cs: usize,
    mr: usize,
    nr: usize,
) -> bool {
    let cost = |m: usize, n: usize, cs: usize| {
        let padded = (m.div_ceil(mr) * mr) as f64 * (n.div_ceil(nr) * nr) as f64 * k as f64;
        padded
            + if cs == 1 {
                0.0
            } else {
                64.0 * m as f64 * n as f64
            }
    };
    cost(n, m, rs) < cost(m, n, cs)
}

/// The product with shapes checked: `C ← epilogue(A·B)`.
fn run<T: Element>(
    backend: Backend,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: MatMut<'_, T>,
    epi: Epilogue<'_, T>,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    let (rs, cs) = (c.row_stride, c.col_stride);
    let zero_alpha = match epi {
        Epilogue::Overwrite { alpha } | Epilogue::Accumulate { alpha, .. } => alpha == T::ZERO,
        Epilogue::Bias(_) => false,
    };
    if k == 0 || zero_alpha {
        // The product is not computed: every accumulator is +0.
        for i in 0..m {
            for j in 0..n {
                let at = i * rs + j * cs;
                let old = c.data[at];
                c.data[at] = epi.apply(T::ZERO, || old, j);
            }
        }
        return;
    }
    let bl = backend.blocking(size_of::<T>());
    let (mr, nr) = (bl.mr, bl.nr);
    let bias = matches!(epi, Epilogue::Bias(_));
    let (a, b, m, n, rs, cs) = if !bias && transposed_is_cheaper(m, n, k, rs, cs, mr, nr) {
        (b.t(), a.t(), n, m, cs, rs)
    } else {
        (a, b, m, n, rs, cs)
    };
    let out = OutPtr(c.data.as_mut_ptr());
    if m.saturating_mul(n).saturating_mul(k) <= SMALL_FMAS {
        // SAFETY: `c` is a checked view (its elements lie inside `c.data`
        // and are distinct), borrowed mutably for this call; in the
        // transposed orientation element (j, i) of Cᵀ is element (i, j) of C.
        unsafe { T::small(backend, a, b, out.0, rs, cs, epi) };
        return;
    }
    let parallel = is_parallel(m, n, k);
    let (mc, nc) = c_blocks(m, n, &bl, parallel);
    // B is packed once for all tasks (shared) when several row blocks use
    // each of its panels; when one row block spans all of C's rows, each
    // task packs its own columns of B, one `k` block at a time, into a
    // buffer that stays in L2 (no panel is packed twice either way).
    let shared_b = m.div_ceil(mc) > 1;
    pack::with_buf(Slot::A, |buf_a| {
        pack::with_buf(Slot::B, |buf_b| {
            let pa = buf_a.slice_mut::<T>(m.div_ceil(mr) * mr * k);
            pack::pack(backend, a.t(), mr, pa, parallel);
            let panels = if shared_b {
                let pb = buf_b.slice_mut::<T>(n.div_ceil(nr) * nr * k);
                pack::pack(backend, b, nr, pb, parallel);
                PanelsB::Shared(&*pb)
            } else {
                PanelsB::PerTask(b)
            };
            let shape = Shape { m, n, k, mc, nc };
            // SAFETY: `out` addresses the checked, distinct, exclusively
            // borrowed view `c` (in the transposed orientation, its
            // transpose) with strides `rs`, `cs`; the panels were packed
            // just above with this backend's `mr` and `nr`.
            unsafe { compute(backend, &bl, pa, panels, shape, out, rs, cs, epi, parallel) };
        })
    });
}

/// Whether an `m × k · k × n` product runs on rayon's pool.
fn is_parallel(m: usize, n: usize, k: usize) -> bool {
    rayon::current_num_threads() > 1
        && m.saturating_mul(n).saturating_mul(k).saturating_mul(2) >= INLINE_FLOPS
}

/// The blocks of `C` (`mc × nc`), one task each: one row block for up to
/// 4·MC rows (then every panel of B is used by one task only), as even as
/// the block sizes allow, and at least two per thread when parallel,
/// splitting columns first (the split changes no bit of the result).
fn c_blocks(m: usize, n: usize, bl: &blocking::Blocking, parallel: bool) -> (usize, usize) {
    let threads = rayon::current_num_threads();
    let (mr, nr) = (bl.mr, bl.nr);
    let even = |len: usize, max: usize, unit: usize| {
        len.div_ceil(len.div_ceil(max)).next_multiple_of(unit)
    };
    let mc_max = if m <= 4 * bl.mc { m } else { bl.mc };
    let (mut mc, mut nc) = (even(m, mc_max, mr), even(n, bl.nc, nr));
    while parallel && m.div_ceil(mc) * n.div_ceil(nc) < 2 * threads {
        if nc > nr {
            nc = even(n, nc.div_ceil(2), nr);
        } else if mc > mr {
            mc = even(m, mc.div_ceil(2), mr);
        } else {
            break;
        }
    }
    (mc, nc)
}

/// Where the tasks of a product find their `B` panels.
#[derive(Clone, Copy)]
enum PanelsB<'a, T: Element> {
    /// All of `B` packed (panels over the whole `k`, `k·NR` apart), shared
    /// by the tasks.
    Shared(&'a [T]),
    /// Each task packs its own columns of this view, one `k` block at a
    /// time.
    PerTask(MatRef<'a, T>),
}

/// The sizes of a product and of its blocks of `C`.
#[derive(Clone, Copy)]
struct Shape {
    m: usize,
    n: usize,
    k: usize,
    mc: usize,
    nc: usize,
}

/// `C ← epilogue(A·B)` from packed `A` panels `pa`, one task per
/// `mc × nc` block of `C`, each walking `k` in blocks of `KC`.
///
/// # Safety
/// `out` with strides `rs`, `cs` must address `m × n` distinct elements,
/// valid for writes (and reads, for `Accumulate`) and not accessed otherwise
/// during the call. `pa` holds the `⌈m / MR⌉` panels of `Aᵀ` (`k · MR`
/// each) and a shared `B` its `⌈n / NR⌉` panels (`k · NR` each), packed
/// with this backend's `MR` and `NR`.
#[allow(clippy::too_many_arguments)]
unsafe fn compute<T: Element>(
    backend: Backend,
    bl: &blocking::Blocking,
    pa: &[T],
    panels: PanelsB<'_, T>,
    shape: Shape,
    out: OutPtr<T>,
    rs: usize,
    cs: usize,
    epi: Epilogue<'_, T>,
    parallel: bool,
) {
    let Shape { m, n, k, mc, nc } = shape;
    let (mr, nr) = (bl.mr, bl.nr);
    let (tasks_m, tasks_n) = (m.div_ceil(mc), n.div_ceil(nc));
    let task = |t: usize| {
        let (i0, j0) = ((t / tasks_n) * mc, (t % tasks_n) * nc);
        let (mcb, ncb) = (mc.min(m - i0), nc.min(n - j0));
        let tiles = mcb.div_ceil(mr) * ncb.div_ceil(nr) * mr * nr;
        pack::with_buf(Slot::Scratch, |buf_s| {
            pack::with_buf(Slot::BlockB, |buf_b| {
                let scratch = if k > bl.kc {
                    buf_s.slice_mut::<T>(tiles)
                } else {
                    &mut []
                };
                let local_b = match panels {
                    PanelsB::Shared(_) => &mut [],
                    PanelsB::PerTask(_) => {
                        buf_b.slice_mut::<T>(ncb.div_ceil(nr) * nr * bl.kc.min(k))
                    }
                };
                let mut p0 = 0;
                while p0 < k {
                    let len = bl.kc.min(k - p0);
                    let (b_panels, b_stride): (&[T], usize) = match panels {
                        PanelsB::Shared(pb) => (&pb[(j0 / nr) * k * nr + p0 * nr..], k * nr),
                        PanelsB::PerTask(b) => {
                            pack::pack(backend, b.sub(p0, len, j0, ncb), nr, local_b, false);
                            (&*local_b, len * nr)
                        }
                    };
                    let mut blk = Block {
                        a: &pa[(i0 / mr) * k * mr + p0 * mr..],
                        a_stride: k * mr,
                        b: b_panels,
                        b_stride,
                        len,
                        first: p0 == 0,
                        last: p0 + len == k,
                        mc: mcb,
                        nc: ncb,
                        // SAFETY: (i0, j0) is an element of C (i0 < m,
                        // j0 < n), inside the caller's buffer.
                        c: unsafe { out.at(i0 * rs + j0 * cs) },
                        rs,
                        cs,
                        epi: epi.starting_at(j0),
                        scratch: &mut *scratch,
                    };
                    // SAFETY: the panels were packed with this backend's
                    // `mr`/`nr` (the caller's promise, and `local_b` just
                    // above); the block's elements of C are among the
                    // caller's distinct, exclusively usable elements, and
                    // blocks of different tasks are disjoint, so no element
                    // is touched by two tasks.
                    unsafe { T::block(backend, &mut blk) };
                    p0 += len;
                }
            })
        });
    };
    if parallel {
        (0..tasks_m * tasks_n).into_par_iter().for_each(task);
    } else {
        (0..tasks_m * tasks_n).for_each(task);
    }
}

/// The panels of width `w` of a `k × n` view, packed once (the layout of
/// the `pack` module) for several products: the shared part of [`PackedA`]
/// and [`PackedB`].
struct Panels<T: Element> {
    backend: Backend,
    /// Rows of the packed view (the product's `k`).
    k: usize,
    /// Its columns: `A`'s rows, or `B`'s columns.
    n: usize,
    /// The packed panels: the first `len` elements of `buf`.
    buf: pack::AlignedBuf,
    len: usize,
    _element: std::marker::PhantomData<T>,
}

impl<T: Element> Panels<T> {
    /// Packs `view` in panels of `width(backend's blocking)` columns.
    fn new(
        kernels: Kernels,
        view: MatRef<'_, T>,
        width: impl Fn(&blocking::Blocking) -> usize,
    ) -> Self {
        let backend = Backend::of(kernels);
        let w = width(&backend.blocking(size_of::<T>()));
        let len = view.cols.div_ceil(w) * w * view.rows;
        let mut buf = pack::AlignedBuf::default();
        let panels = buf.slice_mut::<T>(len);
        pack::pack(
            backend,
            view,
            w,
            panels,
            is_parallel(view.rows, view.cols, view.rows),
        );
        Panels {
            backend,
            k: view.rows,
            n: view.cols,
            buf,
            len,
            _element: std::marker::PhantomData,
        }
    }

    fn as_slice(&self) -> &[T] {
        self.buf.slice::<T>(self.len)
    }
}

/// `A` packed once for several products with the same `A` and different
/// `B`s, whose `B` comes packed too ([`gemm_packed_raw`]): a convolution's
/// weight, multiplied by one column block after another.
pub(crate) struct PackedA<T: Element>(Panels<T>);

impl<T: Element> PackedA<T> {
    /// Packs `a` (the panels of `Aᵀ`, `MR` wide) for `kernels`' instruction
    /// set.
    pub(crate) fn new(kernels: Kernels, a: MatRef<'_, T>) -> PackedA<T> {
        PackedA(Panels::new(kernels, a.t(), |bl| bl.mr))
    }

    /// The panel width `NR` a packed `B` must have for this `A`: `B`'s
    /// `k × n` elements go in `⌈n / NR⌉` panels of `k · NR`, element
    /// `(p, j)` at `(j / NR)·k·NR + p·NR + j % NR` (columns past `n` zero).
    pub(crate) fn b_panel_width(&self) -> usize {
        self.0.backend.blocking(size_of::<T>()).nr
    }

    /// The length of a packed `B` of `n` columns.
    pub(crate) fn b_len(&self, n: usize) -> usize {
        n.div_ceil(self.b_panel_width()) * self.b_panel_width() * self.0.k
    }
}

/// `B` packed once (all its panels, over the whole `k`) for several
/// products with the same `B`: a `Linear` layer's `Wᵀ`, kept between
/// forwards ([`linear_prepacked`]).
pub(crate) struct PackedB<T: Element>(Panels<T>);

impl<T: Element> PackedB<T> {
    /// Packs `b` (its panels, `NR` wide) for `kernels`' instruction set.
    pub(crate) fn new(kernels: Kernels, b: MatRef<'_, T>) -> PackedB<T> {
        PackedB(Panels::new(kernels, b, |bl| bl.nr))
    }
}

/// `C ← epilogue(A·B)` with `B` pre-packed: `A` packed here, then the
/// shared task loop, on `B`'s instruction set.
fn run_prepacked_b<T: Element>(
    a: MatRef<'_, T>,
    b: &PackedB<T>,
    c: MatMut<'_, T>,
    epi: Epilogue<'_, T>,
) {
    let b = &b.0;
    let (m, k, n) = (a.rows, a.cols, b.n);
    debug_assert!(k == b.k && c.rows == m && c.cols == n);
    if m == 0 || n == 0 || k == 0 {
        // Nothing packed to multiply: the plain path handles these edges.
        let empty = MatRef {
            data: &[],
            rows: k,
            cols: n,
            row_stride: 0,
            col_stride: 0,
        };
        return run(b.backend, a, empty, c, epi);
    }
    let backend = b.backend;
    let bl = backend.blocking(size_of::<T>());
    let (rs, cs) = (c.row_stride, c.col_stride);
    let out = OutPtr(c.data.as_mut_ptr());
    let parallel = is_parallel(m, n, k);
    let (mc, nc) = c_blocks(m, n, &bl, parallel);
    pack::with_buf(Slot::A, |buf_a| {
        let pa = buf_a.slice_mut::<T>(m.div_ceil(bl.mr) * bl.mr * k);
        pack::pack(backend, a.t(), bl.mr, pa, parallel);
        let shape = Shape { m, n, k, mc, nc };
        // SAFETY: `out` addresses the checked, distinct, exclusively
        // borrowed view `c` with strides `rs`, `cs`; `pa` was packed just
        // above and `b` by `PackedB::new`, both with this backend's tiles.
        unsafe {
            compute(
                backend,
                &bl,
                pa,
                PanelsB::Shared(b.as_slice()),
                shape,
                out,
                rs,
                cs,
                epi,
                parallel,
            )
        };
    });
}

/// `C ← α·A·B + β·C` (`β` 0 or not, as in [`gemm`]) from a packed `A` and
/// a `B` of `n` columns packed in the layout [`PackedA::b_panel_width`]
/// describes: the same bits as [`gemm`] on the unpacked operands, with
/// `C` row-major-or-strided as there.
///
/// # Panics
/// If `packed_b` is shorter than [`PackedA::b_len`] or `C` is not
/// `A.rows × n` (bugs of the crate's callers).
#[cfg(test)]
pub(crate) fn gemm_packed<T: Element>(
    alpha: T,
    a: &PackedA<T>,
    packed_b: &[T],
    n: usize,
    beta: T,
    c: MatMut<'_, T>,
) {
    assert!(
        c.rows == a.0.n && c.cols == n,
        "gemm_packed: {}x{} output for a {}x{n} product",
        c.rows,
        c.cols,
        a.0.n
    );
    let parallel = is_parallel(a.0.n, n, a.0.k);
    // SAFETY: `c` is a checked view (its elements lie inside `c.data` and
    // are distinct), borrowed mutably for this call.
    unsafe {
        gemm_packed_raw(
            alpha,
            a,
            packed_b,
            n,
            beta,
            c.data.as_mut_ptr(),
            (c.row_stride, c.col_stride),
            parallel,
        )
    };
}

/// [`gemm_packed`] with `C` given as a pointer and its strides, for
/// callers whose tasks write disjoint blocks of one buffer (a
/// convolution's column blocks), and on rayon's pool only if `parallel`.
///
/// # Safety
/// `c` with strides `(rs, cs)` must address `A.rows × n` distinct elements,
/// valid for reads and writes and not accessed by anything else during the
/// call.
///
/// # Panics
/// If `packed_b` is shorter than [`PackedA::b_len`].
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_packed_raw<T: Element>(
    alpha: T,
    a: &PackedA<T>,
    packed_b: &[T],
    n: usize,
    beta: T,
    c: *mut T,
    (rs, cs): (usize, usize),
    parallel: bool,
) {
    let (m, k) = (a.0.n, a.0.k);
    assert!(
        packed_b.len() >= a.b_len(n),
        "gemm_packed: {m}x{k} times {k}x{n} with {} packed elements",
        packed_b.len()
    );
    let epi = if beta == T::ZERO {
        Epilogue::Overwrite { alpha }
    } else {
        Epilogue::Accumulate { alpha, beta }
    };
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for i in 0..m {
            for j in 0..n {
                // SAFETY: `(i, j)` is an element of `C` (the caller's
                // contract).
                unsafe {
                    let at = c.add(i * rs + j * cs);
                    *at = epi.apply(T::ZERO, || *at, j);
                }
            }
        }
        return;
    }
    let bl = a.0.backend.blocking(size_of::<T>());
    let pa = a.0.as_slice();
    let (mc, nc) = c_blocks(m, n, &bl, parallel);
    let shape = Shape { m, n, k, mc, nc };
    // SAFETY: `c` addresses `m × n` distinct elements that are ours alone
    // (the caller's contract); `pa` was packed by `PackedA::new` with the
    // backend's `mr`, and `packed_b` holds (checked above) the panels of
    // width `nr` the caller packed as `b_panel_width` describes.
    unsafe {
        compute(
            a.0.backend,
            &bl,
            pa,
            PanelsB::Shared(packed_b),
            shape,
            OutPtr(c),
            rs,
            cs,
            epi,
            parallel,
        )
    };
}

/// `torch.nn.functional.linear`: `input · weightᵀ + bias`.
///
/// `input` is `[*, in_features]` (any number of leading dimensions, or just
/// `[in_features]`), `weight` is `[out_features, in_features]`, `bias` is
/// `[out_features]`; the result is `[*, out_features]`. The bias add is
/// fused into the product's epilogue (`y = acc ⊕ bias[j]`, the same bits as
/// accumulating the product onto a bias-filled output with `β = 1`), so the
/// output is written once.
///
/// # Errors
/// * [`Error::LinearDims`] for a 0-d input or a weight that is not 2-D;
/// * [`Error::MatmulShape`] when the input's last dimension is not
///   `in_features`: `mat1 and mat2 shapes cannot be multiplied (2x5 and 4x8)`
///   for a `[2, 5]` input and a `[8, 4]` weight, as PyTorch says it;
/// * [`Error::BiasShape`] when the bias is not `[out_features]`.
///
/// ```
/// use nninit::{Tensor, gemm};
///
/// let x = Tensor::from_vec(vec![1.0, 2.0], &[1, 2]).unwrap();
/// let w = Tensor::from_vec(vec![1.0, 1.0, 0.0, 3.0], &[2, 2]).unwrap();
/// let b = Tensor::from_vec(vec![0.5, -1.0], &[2]).unwrap();
/// let y = gemm::linear(&x, &w, Some(&b)).unwrap();
/// assert_eq!(y.as_slice(), &[3.5, 5.0]);
///
/// let bad = Tensor::zeros(&[2, 5]).unwrap();
/// let w = Tensor::zeros(&[8, 4]).unwrap();
/// let err = gemm::linear(&bad, &w, None).unwrap_err();
/// assert_eq!(err.to_string(), "mat1 and mat2 shapes cannot be multiplied (2x5 and 4x8)");
/// ```
pub fn linear(input: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    linear_with(Kernels::active(), input, weight, bias)
}

/// [`linear`] on the kernels of `kernels`' instruction set (the same bits
/// on every one).
///
/// # Errors
/// As [`linear`].
pub fn linear_with(
    kernels: Kernels,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let (rows, mut out) = linear_output(input, weight, bias)?;
    let [out_features, in_features] = *weight.shape() else {
        unreachable!("checked by linear_output")
    };
    let x = MatRef::row_major(input.as_slice(), rows, in_features)?;
    let wt = MatRef::row_major(weight.as_slice(), out_features, in_features)?.t();
    let y = MatMut::row_major(out.as_mut_slice(), rows, out_features)?;
    run(Backend::of(kernels), x, wt, y, linear_epilogue(bias));
    Ok(out)
}

/// [`linear`] with `Wᵀ` already packed (`packed_wt`, made by
/// [`PackedB::new`] from this `weight`'s transpose on the active
/// instruction set): the same result, bit for bit, without packing the
/// weight again. A layer keeps the packed form between forwards.
///
/// # Errors
/// As [`linear`].
///
/// # Panics
/// If `packed_wt` is not `weight`'s `in_features × out_features` shape.
pub(crate) fn linear_prepacked(
    input: &Tensor,
    weight: &Tensor,
    packed_wt: &PackedB<f32>,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let (rows, mut out) = linear_output(input, weight, bias)?;
    let [out_features, in_features] = *weight.shape() else {
        unreachable!("checked by linear_output")
    };
    assert!(
        packed_wt.0.k == in_features && packed_wt.0.n == out_features,
        "a packed {}x{} weight for a {in_features}x{out_features} product",
        packed_wt.0.k,
        packed_wt.0.n
    );
    let x = MatRef::row_major(input.as_slice(), rows, in_features)?;
    let y = MatMut::row_major(out.as_mut_slice(), rows, out_features)?;
    run_prepacked_b(x, packed_wt, y, linear_epilogue(bias));
    Ok(out)
}

fn linear_epilogue(bias: Option<&Tensor>) -> Epilogue<'_, f32> {
    match bias {
        Some(b) => Epilogue::Bias(b.as_slice()),
        None => Epilogue::Overwrite { alpha: 1.0 },
    }
}

/// The checks of [`linear`], then its rows (`∏` of the leading dimensions,
/// 1 for a 1-d input) and a zeroed output.
fn linear_output(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
) -> Result<(usize, Tensor)> {
    let [out_features, in_features] = *weight.shape() else {
        return Err(Error::LinearDims {
            input: input.dim(),
            weight: weight.dim(),
        });
    };
    let Some((&width, lead)) = input.shape().split_last() else {
        return Err(Error::LinearDims {
            input: 0,
            weight: 2,
        });
    };
    let batch: usize = lead.iter().product();
    if width != in_features {
        return Err(Error::MatmulShape {
            left: [batch.max(usize::from(lead.is_empty())), width],
            right: [in_features, out_features],
        });
    }
    if let Some(b) = bias
        && b.shape() != [out_features]
    {
        return Err(Error::BiasShape {
            expected: out_features,
            found: b.shape().to_vec(),
        });
    }
    let mut out_shape = lead.to_vec();
    out_shape.push(out_features);
    let rows = if lead.is_empty() { 1 } else { batch };
    Ok((rows, Tensor::zeros(&out_shape)?))
}

/// The matrix product of two 2-D tensors, `a · b`.
///
/// # Errors
/// [`Error::MatrixDims`] if either is not 2-D, [`Error::MatmulShape`] if
/// the inner dimensions differ.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (ma, mb) = (MatRef::from_tensor(a)?, MatRef::from_tensor(b)?);
    if ma.cols != mb.rows {
        return Err(Error::MatmulShape {
            left: [ma.rows, ma.cols],
            right: [mb.rows, mb.cols],
        });
    }
    let mut out = Tensor::zeros(&[ma.rows, mb.cols])?;
    gemm(1.0, ma, mb, 0.0, MatMut::from_tensor(&mut out)?)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Isa;

    /// The pre-packed path (`A` packed once, `B` packed by the caller in
    /// the documented layout) gives the bits of `gemm` on the unpacked
    /// operands, on every instruction set, for edge tiles of every height,
    /// several `k` blocks and both epilogues.
    #[test]
    fn packed_operands_give_the_bits_of_gemm() {
        let value = |i: usize, salt: usize| ((i * 37 + salt * 11) % 101) as f32 / 13.0 - 3.5;
        for isa in Isa::supported() {
            let kernels = Kernels::new(isa).unwrap();
            for (m, k, n) in [
                (64, 576, 100),
                (13, 7, 33),
                (31, 600, 45),
                (5, 1, 1),
                (24, 300, 64),
            ] {
                let a: Vec<f32> = (0..m * k).map(|i| value(i, 1)).collect();
                let b: Vec<f32> = (0..k * n).map(|i| value(i, 2)).collect();
                let c0: Vec<f32> = (0..m * n).map(|i| value(i, 3)).collect();
                let am = MatRef::row_major(&a, m, k).unwrap();
                let packed_a = PackedA::new(kernels, am);
                let nr = packed_a.b_panel_width();
                let mut packed_b = vec![f32::NAN; packed_a.b_len(n)];
                for (p, row) in b.chunks_exact(n).enumerate() {
                    for (j, &v) in row.iter().enumerate() {
                        packed_b[(j / nr) * k * nr + p * nr + j % nr] = v;
                    }
                }
                for q in n..n.next_multiple_of(nr) {
                    for p in 0..k {
                        packed_b[(q / nr) * k * nr + p * nr + q % nr] = 0.0;
                    }
                }
                for beta in [0.0, 1.0] {
                    let (mut want, mut got) = (c0.clone(), c0.clone());
                    let bm = MatRef::row_major(&b, k, n).unwrap();
                    let c = MatMut::row_major(&mut want, m, n).unwrap();
                    gemm_with(kernels, 1.0, am, bm, beta, c).unwrap();
                    let c = MatMut::row_major(&mut got, m, n).unwrap();
                    gemm_packed(1.0, &packed_a, &packed_b, n, beta, c);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "{isa}, {m}x{k}x{n}, beta {beta}");
                }
            }
        }
    }

    fn naive(a: MatRef<'_>, b: MatRef<'_>) -> Vec<f64> {
        let mut c = vec![0.0f64; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                c[i * b.cols + j] = (0..a.cols)
                    .map(|p| f64::from(a.at(i, p)) * f64::from(b.at(p, j)))
                    .sum();
            }
        }
        c
    }

    #[test]
    fn outputs_must_not_overlap() {
        let mut d = [0.0f32; 16];
        assert!(MatMut::new(&mut d, 4, 4, 4, 1).is_ok());
        assert!(MatMut::new(&mut d, 4, 4, 1, 4).is_ok());
        assert!(MatMut::new(&mut d, 4, 0, 0, 1).is_ok());
        assert!(MatMut::new(&mut d, 1, 4, 0, 1).is_ok());
        assert!(MatMut::new(&mut d, 4, 4, 1, 1).is_err()); // (0,1) and (1,0) collide
        assert!(MatMut::new(&mut d, 2, 2, 0, 1).is_err());
        assert!(MatMut::new(&mut d, 3, 3, 2, 3).is_err()); // strides interleave
    }

    #[test]
    fn views_are_checked() {
        let d = [0.0f32; 6];
        assert!(MatRef::new(&d, 2, 3, 3, 1).is_ok());
        assert!(MatRef::new(&d, 3, 3, 3, 1).is_err());
        assert!(MatRef::new(&d, 0, 100, 1000, 1).is_ok());
        assert!(MatRef::new(&d, 2, 2, usize::MAX, 1).is_err());
        let e = MatRef::new(&d, 3, 3, 3, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a 3x3 matrix view with strides (3, 1) does not fit in a buffer of 6 elements"
        );
    }

    #[test]
    fn small_products_match_f64() {
        let mut g = crate::Generator::new(3);
        for (m, k, n) in [
            (1, 1, 1),
            (3, 5, 7),
            (17, 33, 9),
            (0, 4, 3),
            (4, 0, 3),
            (4, 3, 0),
        ] {
            let a = Tensor::randn(&[m, k], Some(&mut g)).unwrap();
            let b = Tensor::randn(&[k, n], Some(&mut g)).unwrap();
            let c = matmul(&a, &b).unwrap();
            let want = naive(
                MatRef::from_tensor(&a).unwrap(),
                MatRef::from_tensor(&b).unwrap(),
            );
            for (x, y) in c.as_slice().iter().zip(&want) {
                assert!((f64::from(*x) - y).abs() < 1e-5 * (k as f64).max(1.0));
            }
        }
    }
}
