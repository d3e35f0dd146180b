//! `orthogonal_`: a QR of a normal matrix (see [`crate::linalg`]).

use crate::distributions::sealed::FillUninit;
use crate::distributions::{Distribution, Normal};
use crate::kernels::Kernels;
use crate::kernels::math::as_uninit;
use crate::linalg;
use crate::rng::Stream;
use crate::rng::torch::TorchGenerator;
use crate::tensor::Tensor;

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
    let len = rows * cols;
    let (mut a, mut q) = (scratch(len), scratch(len));
    let (a, q) = (a.as_mut_slice(), q.as_mut_slice());
    let scale = |x: f32| (x as f64 * gain) as f32;
    if rows < cols {
        // The row-major `rows × cols` buffer is its transpose, `cols × rows`,
        // in column-major order: factor that, and Qᵀ is `q` read row-major.
        a.copy_from_slice(out);
        linalg::orthonormal_columns(a, cols, rows, q);
        for (o, &q) in out.iter_mut().zip(q.iter()) {
            *o = scale(q);
        }
    } else {
        // Column-major `rows × cols` is the row-major transpose.
        linalg::transpose(out, rows, cols, a, |x| x);
        linalg::orthonormal_columns(a, rows, cols, q);
        linalg::transpose(q, cols, rows, out, scale);
    }
}

/// `len` values of scratch in a tensor's storage: large buffers are backed
/// by transparent huge pages (a fresh 4 MiB `Vec` costs a thousand page
/// faults, more than the QR's GEMMs spend on it). Allocation failure aborts,
/// as a `Vec`'s does.
fn scratch(len: usize) -> Tensor {
    Tensor::zeros(&[len]).unwrap_or_else(|_| {
        std::alloc::handle_alloc_error(
            std::alloc::Layout::array::<f32>(len).expect("the tensor being filled has this size"),
        )
    })
}
