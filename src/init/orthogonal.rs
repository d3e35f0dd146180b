//! `orthogonal_`: a QR of a normal matrix (see [`crate::linalg`]).

use crate::distributions::sealed::FillUninit;
use crate::distributions::{Distribution, Normal};
use crate::kernels::Kernels;
use crate::kernels::math::as_uninit;
use crate::linalg;
use crate::rng::Stream;
use crate::rng::torch::TorchGenerator;

/// [`orthogonal_`] on a non-empty `rows × cols` buffer.
pub(super) fn orthogonal_fill(
    kernels: Kernels,
    stream: Stream,
    rows: usize,
    cols: usize,
    gain: f64,
    out: &mut [f32],
) {
    // The same standard normals `normal_(t, 0, 1)` would write.
    Normal::standard().fill_with(kernels, stream, 0, out);
    orthogonalize(rows, cols, gain, out);
}

/// [`orthogonal_`] with PyTorch's generator: `normal_(0, 1)` on the
/// contiguous `rows × cols` matrix (PyTorch's draws), then the same QR.
pub(super) fn orthogonal_torch(
    kernels: Kernels,
    g: &mut TorchGenerator,
    rows: usize,
    cols: usize,
    gain: f64,
    out: &mut [f32],
) {
    Normal::standard().fill_torch(kernels, g, as_uninit(out));
    orthogonalize(rows, cols, gain, out);
}

/// Replaces the `rows × cols` matrix in `out` (row-major) by the `Q` of its
/// QR factorization (of its transpose when `rows < cols`), columns signed so
/// that `R` has a non-negative diagonal, times `gain`.
fn orthogonalize(rows: usize, cols: usize, gain: f64, out: &mut [f32]) {
    if rows < cols {
        // The row-major `rows × cols` buffer is its transpose, `cols × rows`,
        // in column-major order: factor that, and Qᵀ is `q` read row-major.
        let q = linalg::orthonormal_columns(out.to_vec(), cols, rows);
        for (o, q) in out.iter_mut().zip(&q) {
            *o = (*q as f64 * gain) as f32;
        }
    } else {
        // Column-major `rows × cols` is the row-major transpose.
        let mut a = vec![0.0f32; rows * cols];
        linalg::transpose(out, rows, cols, &mut a, |x| x);
        let q = linalg::orthonormal_columns(a, rows, cols);
        linalg::transpose(&q, cols, rows, out, |x| (x as f64 * gain) as f32);
    }
}
