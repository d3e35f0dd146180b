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

/// Rows or columns of `C` per part are rounded to a multiple of this, the
/// register-tile size of matrixmultiply's AVX2 kernel, so no part ends in a
/// partial tile that the whole product would not have had.
const TILE: usize = 16;

/// A read-only strided view of an `f32` matrix: element `(i, j)` is
/// `data[i·row_stride + j·col_stride]`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A general strided view.
    ///
    /// # Errors
    /// [`Error::MatrixView`] if some element of the view lies outside `data`.
    pub fn new(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<MatRef<'a>> {
        let fits = rows == 0
            || cols == 0
            || (rows - 1)
                .checked_mul(row_stride)
                .zip((cols - 1).checked_mul(col_stride))
                .and_then(|(r, c)| r.checked_add(c))
                .is_some_and(|last| last < data.len());
        // Strides must also fit matrixmultiply's `isize` arithmetic.
        let strides_ok = isize::try_from(row_stride).is_ok() && isize::try_from(col_stride).is_ok();
        if !fits || !strides_ok {
            return Err(Error::MatrixView {
                rows,
                cols,
                row_stride,
                col_stride,
                len: data.len(),
            });
        }
        Ok(MatRef {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        })
    }

    /// A contiguous row-major `rows × cols` matrix.
    ///
    /// # Errors
    /// [`Error::MatrixView`] if `data` holds fewer than `rows·cols` elements.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Result<MatRef<'a>> {
        MatRef::new(data, rows, cols, cols, 1)
    }

    /// A 2-D tensor as a row-major matrix.
    ///
    /// # Errors
    /// [`Error::MatrixDims`] if the tensor is not 2-D.
    pub fn from_tensor(t: &'a Tensor) -> Result<MatRef<'a>> {
        match *t.shape() {
            [rows, cols] => MatRef::row_major(t.as_slice(), rows, cols),
            _ => Err(Error::MatrixDims {
                shape: t.shape().to_vec(),
            }),
        }
    }

    /// The transpose: the same data with rows and columns swapped.
    pub fn t(self) -> MatRef<'a> {
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
    pub fn at(&self, i: usize, j: usize) -> f32 {
        assert!(i < self.rows && j < self.cols, "({i}, {j}) out of range");
        self.data[i * self.row_stride + j * self.col_stride]
    }

    /// The rows `start..start + len` (no check: callers stay in range).
    fn rows_from(self, start: usize, len: usize) -> MatRef<'a> {
        debug_assert!(start + len <= self.rows);
        let offset = if len == 0 { 0 } else { start * self.row_stride };
        MatRef {
            data: &self.data[offset.min(self.data.len())..],
            rows: len,
            ..self
        }
    }

    /// The columns `start..start + len` (no check: callers stay in range).
    fn cols_from(self, start: usize, len: usize) -> MatRef<'a> {
        debug_assert!(start + len <= self.cols);
        let offset = if len == 0 { 0 } else { start * self.col_stride };
        MatRef {
            data: &self.data[offset.min(self.data.len())..],
            cols: len,
            ..self
        }
    }
}

/// A mutable contiguous row-major `f32` matrix (the output of [`gemm`]).
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
}

impl<'a> MatMut<'a> {
    /// A contiguous row-major `rows × cols` matrix over the first
    /// `rows·cols` elements of `data`.
    ///
    /// # Errors
    /// [`Error::MatrixView`] if `data` is too short.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Result<MatMut<'a>> {
        match rows.checked_mul(cols) {
            Some(n) if n <= data.len() && isize::try_from(cols).is_ok() => Ok(MatMut {
                data: &mut data[..n],
                rows,
                cols,
            }),
            _ => Err(Error::MatrixView {
                rows,
                cols,
                row_stride: cols,
                col_stride: 1,
                len: data.len(),
            }),
        }
    }

    /// A 2-D tensor as a mutable row-major matrix.
    ///
    /// # Errors
    /// [`Error::MatrixDims`] if the tensor is not 2-D.
    pub fn from_tensor(t: &'a mut Tensor) -> Result<MatMut<'a>> {
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
pub fn gemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: MatMut<'_>) -> Result<()> {
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
    if flops < INLINE_FLOPS || threads == 1 {
        sgemm_checked(alpha, a, b, beta, c.data, n);
    } else if m >= n {
        let rows = m.div_ceil(threads).next_multiple_of(TILE);
        c.data
            .par_chunks_mut(rows * n)
            .enumerate()
            .for_each(|(i, chunk)| {
                let r0 = i * rows;
                let len = chunk.len() / n;
                sgemm_checked(alpha, a.rows_from(r0, len), b, beta, chunk, n);
            });
    } else {
        // Split the columns of C: part `p` writes columns [c0, c0 + w) of
        // every row, in place (row stride n).
        let cols = n.div_ceil(threads).next_multiple_of(TILE);
        let parts = n.div_ceil(cols);
        let out = OutPtr(c.data.as_mut_ptr());
        let len = c.data.len();
        (0..parts).into_par_iter().for_each(|p| {
            let c0 = p * cols;
            let w = cols.min(n - c0);
            // SAFETY: `out` points at the m×n row-major buffer `c.data` of
            // `len` elements, mutably borrowed for the whole parallel loop.
            // Part `p` passes a view starting at column c0 whose elements
            // (i, j), i < m, j < w, are at offsets c0 + i·n + j < len; the
            // parts' column ranges are disjoint, so no element is written by
            // two parts or read by another part.
            unsafe { sgemm_raw(alpha, a, b.cols_from(c0, w), beta, out.at(c0), n, len - c0) };
        });
    }
    Ok(())
}

/// A raw output pointer shared by the parts of a column split.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);

impl OutPtr {
    /// The pointer `offset` elements on (a method, so closures capture the
    /// whole `Send + Sync` wrapper rather than its raw field).
    ///
    /// # Safety
    /// As `pointer::add`: the result must stay inside the buffer.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: forwarded to the caller.
        unsafe { self.0.add(offset) }
    }
}

// SAFETY: the pointer is only dereferenced by `sgemm_raw` calls whose
// written regions are disjoint (see the call site); the buffer outlives them.
unsafe impl Send for OutPtr {}
// SAFETY: as for `Send`: shared use writes disjoint regions only.
unsafe impl Sync for OutPtr {}

/// One call of `matrixmultiply::sgemm` on views already checked to fit:
/// `c` is `a.rows × b.cols` row-major with row stride `ldc`.
fn sgemm_checked(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: &mut [f32], ldc: usize) {
    // SAFETY: `c` is a valid, exclusively borrowed buffer of `c.len()`
    // elements.
    unsafe { sgemm_raw(alpha, a, b, beta, c.as_mut_ptr(), ldc, c.len()) }
}

/// `C ← α·A·B + β·C` for `C` at `c` with row stride `ldc`.
///
/// # Safety
/// `c` must be valid for reads and writes of `c_len` elements, and no other
/// thread may access elements `(i, j)` (offset `i·ldc + j`, `i < a.rows`,
/// `j < b.cols`) during the call.
unsafe fn sgemm_raw(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: *mut f32,
    ldc: usize,
    c_len: usize,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(a.cols, b.rows);
    if m == 0 || n == 0 {
        return;
    }
    assert!(c_len >= (m - 1) * ldc + n, "output too short");
    if k == 0 {
        // A·B is the zero matrix (the views of A and B may be empty slices).
        for i in 0..m {
            // SAFETY: row i, columns 0..n, is inside the `c_len` elements
            // (asserted above) and reserved to this call by the contract.
            let row = unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc), n) };
            for x in row {
                *x = if beta == 0.0 { 0.0 } else { beta * *x };
            }
        }
        return;
    }
    // SAFETY: `MatRef::new` checked that every element (i, j) of `a` and `b`
    // (offset i·rs + j·cs) lies inside their slices and that the strides fit
    // in `isize`; `rows_from`/`cols_from` only shrink a view within its
    // checked range. The elements of C lie inside the `c_len` valid elements
    // (asserted above) and are ours alone by the caller's contract.
    // matrixmultiply reads only the elements the views describe and writes
    // only those of C.
    unsafe {
        matrixmultiply::sgemm(
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
            c,
            ldc as isize,
            1,
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
