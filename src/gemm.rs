//! Matrix products for the `nn` layers: one safe, shape-checked entry point
//! over [`matrixmultiply::sgemm`].
//!
//! [`gemm`] computes `C ← α·A·B + β·C` where `A` and `B` are strided views
//! ([`MatRef`]): a transpose is a view with its strides swapped
//! ([`MatRef::t`]), never a copy. `C` is a contiguous row-major
//! [`MatMut`]. The layers use three products, all through [`gemm`]:
//!
//! | product | `A` | `B` |
//! |---|---|---|
//! | forward `Y = X·Wᵀ + b` ([`linear`]) | `X` `[batch, in]` | `Wᵀ` (view of `W` `[out, in]`) |
//! | weight gradient `dW += dYᵀ·X` | `dYᵀ` (view) | `X` |
//! | input gradient `dX = dY·W` | `dY` | `W` |
//!
//! # Threads
//! Products of fewer than [`INLINE_FLOPS`] floating-point operations run on
//! the calling thread: a small network's forward pays no pool overhead. Larger
//! ones are split into one part per thread of rayon's current pool (the one
//! pool the crate uses; matrixmultiply's own threading is not enabled), along
//! the larger of `C`'s two dimensions: each part packs its own panel of the
//! operand it splits and the whole of the other, so splitting the larger
//! dimension duplicates the smaller packing; column parts write their block
//! of `C` in place. The result does not depend on
//! the split: each element of `C` is computed by the same kernel over the
//! same `k` loop whatever the number of threads, so products are
//! bit-identical for any pool size (tested).

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Products with fewer floating-point operations (`2·m·k·n`) than this run
/// inline on the calling thread.
pub const INLINE_FLOPS: usize = 1 << 21;

/// Rows or columns of `C` per part are rounded to a multiple of this, so
/// parts start on register-tile boundaries of matrixmultiply's kernels.
const TILE: usize = 16;

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
    /// `β · x` (used when `k = 0`).
    fn scale(self, beta: Self) -> Self;
    /// matrixmultiply's GEMM for this type.
    ///
    /// # Safety
    /// As `matrixmultiply::sgemm`: every element of the three strided views
    /// is valid, `c`'s elements are distinct and not aliased by `a` or `b`.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn raw_gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

macro_rules! element_impl {
    ($t:ty, $gemm:path) => {
        impl Element for $t {
            const ZERO: Self = 0.0;
            fn scale(self, beta: Self) -> Self {
                if beta == 0.0 { 0.0 } else { beta * self }
            }
            unsafe fn raw_gemm(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: *const Self,
                rsa: isize,
                csa: isize,
                b: *const Self,
                rsb: isize,
                csb: isize,
                beta: Self,
                c: *mut Self,
                rsc: isize,
                csc: isize,
            ) {
                // SAFETY: forwarded to the caller (same contract).
                unsafe { $gemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
            }
        }
    };
}

element_impl!(f32, matrixmultiply::sgemm);
element_impl!(f64, matrixmultiply::dgemm);

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

    /// The rows `start..start + len` (callers stay in range).
    fn rows_from(self, start: usize, len: usize) -> MatRef<'a, T> {
        debug_assert!(start + len <= self.rows);
        let offset = if len == 0 { 0 } else { start * self.row_stride };
        MatRef {
            data: &self.data[offset.min(self.data.len())..],
            rows: len,
            ..self
        }
    }

    /// The columns `start..start + len` (callers stay in range).
    fn cols_from(self, start: usize, len: usize) -> MatRef<'a, T> {
        debug_assert!(start + len <= self.cols);
        let offset = if len == 0 { 0 } else { start * self.col_stride };
        MatRef {
            data: &self.data[offset.min(self.data.len())..],
            cols: len,
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

/// `C ← α·A·B + β·C`, parallel on rayon's current pool for large products.
///
/// With `β = 0`, `C` is only written (its old values, even NaN, are ignored).
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
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let flops = 2usize.saturating_mul(m).saturating_mul(k).saturating_mul(n);
    let threads = rayon::current_num_threads();
    let (rs, cs) = (c.row_stride, c.col_stride);
    let len = c.data.len();
    let out = OutPtr(c.data.as_mut_ptr());
    if flops < INLINE_FLOPS || threads == 1 {
        // SAFETY: `c` is a checked view (its elements are inside its `len`
        // elements and distinct), exclusively borrowed for this call.
        unsafe { gemm_raw(alpha, a, b, beta, out, rs, cs, len) };
    } else {
        // Split C along its larger dimension (see the module docs): part `p`
        // writes rows (or columns) [start, start + len) only.
        let by_rows = m >= n;
        let (extent, stride) = if by_rows { (m, rs) } else { (n, cs) };
        let size = extent.div_ceil(threads).next_multiple_of(TILE);
        (0..extent.div_ceil(size)).into_par_iter().for_each(|p| {
            let start = p * size;
            let part = size.min(extent - start);
            let (a, b) = if by_rows {
                (a.rows_from(start, part), b)
            } else {
                (a, b.cols_from(start, part))
            };
            // SAFETY: `c`'s view is checked (inside `len`, distinct
            // elements) and exclusively borrowed for the whole loop. Part
            // `p`'s view starts at offset start·stride < len (start < extent)
            // and covers rows (columns) start..start+part of the checked
            // view; the parts' ranges are disjoint, so (elements being
            // distinct) no element is touched by two parts.
            unsafe {
                let at = OutPtr(out.at(start * stride));
                gemm_raw(alpha, a, b, beta, at, rs, cs, len - start * stride)
            };
        });
    }
    Ok(())
}

/// The output pointer shared by the parts of a parallel product.
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

// SAFETY: the pointer is only dereferenced by `gemm_raw` calls whose written
// elements are disjoint (see the call sites); the buffer outlives them.
unsafe impl<T: Send> Send for OutPtr<T> {}
// SAFETY: as for `Send`: shared use writes disjoint elements only.
unsafe impl<T: Send> Sync for OutPtr<T> {}

/// `C ← α·A·B + β·C` for `C` (`a.rows × b.cols`) at `c` with strides
/// `(rs, cs)`, on the calling thread.
///
/// # Safety
/// `c` must be valid for reads and writes of `c_len` elements; the elements
/// `(i, j)` at `i·rs + j·cs` must lie inside them, be distinct, and not be
/// accessed by anything else during the call.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw<T: Element>(
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: OutPtr<T>,
    rs: usize,
    cs: usize,
    c_len: usize,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(a.cols, b.rows);
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        span(m, n, rs, cs).is_some_and(|e| e <= c_len),
        "output too short"
    );
    if k == 0 {
        // A·B is the zero matrix (the views of A and B may be empty slices).
        for i in 0..m {
            for j in 0..n {
                // SAFETY: (i, j) is an element of C, inside `c_len` (asserted
                // above) and ours alone by the contract.
                unsafe {
                    let x = c.at(i * rs + j * cs);
                    *x = (*x).scale(beta);
                }
            }
        }
        return;
    }
    // SAFETY: `MatRef::new` checked that every element (i, j) of `a` and `b`
    // (offset i·rs + j·cs) lies inside their slices and that the strides fit
    // in `isize`; `rows_from`/`cols_from` only shrink a view within its
    // checked range. The elements of C lie inside the `c_len` valid elements
    // (asserted above), are distinct, and are ours alone by the caller's
    // contract; `a` and `b` are shared borrows, so C cannot alias them.
    // matrixmultiply reads only the elements the views describe and writes
    // only those of C, and keeps no pointer after returning.
    unsafe {
        T::raw_gemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.row_stride as isize,
            a.col_stride as isize,
            b.data.as_ptr(),
            b.row_stride as isize,
            b.col_stride as isize,
            beta,
            c.0,
            rs as isize,
            cs as isize,
        );
    }
}

/// `torch.nn.functional.linear`: `input · weightᵀ + bias`.
///
/// `input` is `[*, in_features]` (any number of leading dimensions, or just
/// `[in_features]`), `weight` is `[out_features, in_features]`, `bias` is
/// `[out_features]`; the result is `[*, out_features]`. The bias is written
/// into the output first and the product accumulated onto it by the same
/// GEMM call (`β = 1`), so no second pass over the output.
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
    let mut out = match bias {
        Some(b) if out_features > 0 => {
            let b = b.as_slice();
            // Every row is written from the bias: the whole buffer is initialized.
            Tensor::filled_with(&out_shape, |dst| {
                for row in dst.chunks_exact_mut(out_features) {
                    for (d, &v) in row.iter_mut().zip(b) {
                        d.write(v);
                    }
                }
            })?
        }
        _ => Tensor::zeros(&out_shape)?,
    };
    let rows = if lead.is_empty() { 1 } else { batch };
    let x = MatRef::row_major(input.as_slice(), rows, in_features)?;
    let wt = MatRef::row_major(weight.as_slice(), out_features, in_features)?.t();
    let beta = if bias.is_some() { 1.0 } else { 0.0 };
    gemm(
        1.0,
        x,
        wt,
        beta,
        MatMut::row_major(out.as_mut_slice(), rows, out_features)?,
    )?;
    Ok(out)
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
