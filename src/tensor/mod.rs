//! [`Tensor`]: a flat, 64-byte-aligned `f32` buffer with a row-major shape.

use std::ops::{AddAssign, DivAssign, Index, IndexMut, MulAssign, Range, SubAssign};

use crate::Generator;
use crate::distributions::{Distribution, Normal, Uniform};
use crate::error::{Error, Result};
use crate::kernels::{Kernels, par_chunks};
use crate::rng::{Source, with_source};

mod display;
mod int;
mod storage;

pub use int::{AnyTensor, IntTensor};

use storage::AlignedBuf;

/// A dense, row-major `f32` tensor that owns its data.
///
/// The storage is one allocation aligned to 64 bytes (2 MiB, with transparent
/// huge pages on Linux, for buffers of 4 MiB and more). A tensor of shape `[]`
/// is a 0-d scalar with one element; any dimension may be 0.
///
/// ```
/// use nninit::Tensor;
/// let mut w = Tensor::zeros(&[2, 3]).unwrap();
/// w += 1.0;
/// w[[0, 0]] = 42.0;
/// assert_eq!(w.row(0).unwrap(), &[42.0, 1.0, 1.0]);
/// assert_eq!(w.to_string(), "tensor([[42.,  1.,  1.],\n        [ 1.,  1.,  1.]])");
/// ```
#[derive(Clone)]
pub struct Tensor {
    buf: AlignedBuf,
    shape: Vec<usize>,
}

/// `repr(t)` with extra suffixes such as `requires_grad=True`.
pub(crate) fn repr_with(t: &Tensor, precision: Option<usize>, suffixes: &[&str]) -> String {
    display::repr(t.as_slice(), t.shape(), precision, suffixes)
}

/// The number of elements of `shape`, or [`Error::ShapeOverflow`].
pub(crate) fn numel_of(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= isize::MAX as usize / size_of::<f32>())
        .ok_or_else(|| Error::ShapeOverflow {
            shape: shape.to_vec(),
        })
}

impl Tensor {
    /// A tensor of `shape` whose elements `fill` writes (every one of them:
    /// callers pass only fills that write every slot).
    pub(crate) fn filled_with(
        shape: &[usize],
        fill: impl FnOnce(&mut [std::mem::MaybeUninit<f32>]),
    ) -> Result<Tensor> {
        let numel = numel_of(shape)?;
        // SAFETY: every caller passes a fill that writes all of its slots
        // (constant fills and distribution fills write every element).
        let buf = unsafe { AlignedBuf::new_with(numel, shape, fill)? };
        Ok(Tensor {
            buf,
            shape: shape.to_vec(),
        })
    }

    /// A tensor of `shape` with every element `value`.
    pub fn full(shape: &[usize], value: f32) -> Result<Tensor> {
        Tensor::filled_with(shape, |out| {
            Kernels::active().fill_constant_uninit(out, value)
        })
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Result<Tensor> {
        Tensor::full(shape, 0.0)
    }

    /// A tensor of ones.
    pub fn ones(shape: &[usize]) -> Result<Tensor> {
        Tensor::full(shape, 1.0)
    }

    /// A 0-d tensor holding `value`.
    pub fn scalar(value: f32) -> Tensor {
        Tensor {
            buf: AlignedBuf::from_slice(&[value]),
            shape: Vec::new(),
        }
    }

    /// A tensor of `shape` holding a copy of `data` (row-major).
    ///
    /// Errors if `data.len()` is not the number of elements of `shape`:
    /// `shape '[2, 3]' is invalid for input of size 5`.
    pub fn from_slice(data: &[f32], shape: &[usize]) -> Result<Tensor> {
        if numel_of(shape)? != data.len() {
            return Err(Error::ShapeDataMismatch {
                shape: shape.to_vec(),
                len: data.len(),
            });
        }
        Ok(Tensor {
            buf: AlignedBuf::from_slice(data),
            shape: shape.to_vec(),
        })
    }

    /// A tensor of `shape` holding `data` (copied into aligned storage).
    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_slice(&data, shape)
    }

    /// A tensor of `shape` sampled from `dist`, from `generator` (the
    /// global generator if `None`): its next stream if it is counter-based,
    /// PyTorch's sampler if it is torch-exact (see
    /// [`Distribution::fill`]).
    pub fn sample(
        shape: &[usize],
        dist: &impl Distribution,
        generator: Option<&mut Generator>,
    ) -> Result<Tensor> {
        numel_of(shape)?;
        with_source(generator, |source| match source {
            Source::Counter(counter) => {
                let stream = counter.take();
                Tensor::filled_with(shape, |out| {
                    dist.fill_uninit(Kernels::active(), stream, 0, out)
                })
            }
            Source::Torch(g) => {
                Tensor::filled_with(shape, |out| dist.fill_torch(Kernels::active(), g, out))
            }
        })
    }

    /// Uniform samples from `[0, 1)`, like `torch.rand` (with a torch-exact
    /// generator, PyTorch's values).
    pub fn rand(shape: &[usize], generator: Option<&mut Generator>) -> Result<Tensor> {
        let unit = Uniform::new(0.0, 1.0).expect("[0, 1) is a valid range");
        Tensor::sample(shape, &unit, generator)
    }

    /// Standard normal samples, like `torch.randn` (with a torch-exact
    /// generator, PyTorch's values).
    pub fn randn(shape: &[usize], generator: Option<&mut Generator>) -> Result<Tensor> {
        Tensor::sample(shape, &Normal::standard(), generator)
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of dimensions (0 for a scalar).
    pub fn dim(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.buf.len()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.buf.len() == 0
    }

    /// The elements in row-major order.
    pub fn as_slice(&self) -> &[f32] {
        self.buf.as_slice()
    }

    /// The elements in row-major order, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        self.buf.as_mut_slice()
    }

    /// The shape and the elements, mutably (both borrowed at once).
    pub(crate) fn shape_and_slice_mut(&mut self) -> (&[usize], &mut [f32]) {
        (&self.shape, self.buf.as_mut_slice())
    }

    /// A copy of the elements.
    pub fn to_vec(&self) -> Vec<f32> {
        self.as_slice().to_vec()
    }

    /// The value of a 0-d or one-element tensor, like `Tensor.item()`.
    pub fn item(&self) -> Result<f32> {
        match self.as_slice() {
            [v] => Ok(*v),
            _ => Err(Error::ShapeDataMismatch {
                shape: Vec::new(),
                len: self.numel(),
            }),
        }
    }

    /// The flat position of `index`, or an error naming the bad coordinate.
    fn flat_index(&self, index: &[usize]) -> Result<usize> {
        if index.len() != self.shape.len() {
            return Err(Error::IndexRank {
                given: index.len(),
                dims: self.shape.len(),
            });
        }
        let mut flat = 0;
        for (dim, (&i, &size)) in index.iter().zip(&self.shape).enumerate() {
            if i >= size {
                return Err(Error::IndexOutOfRange {
                    index: i,
                    dim,
                    size,
                });
            }
            flat = flat * size + i;
        }
        Ok(flat)
    }

    /// The element at `index`.
    pub fn get(&self, index: &[usize]) -> Result<f32> {
        let i = self.flat_index(index)?;
        Ok(self.as_slice()[i])
    }

    /// The element at `index`, mutably.
    pub fn get_mut(&mut self, index: &[usize]) -> Result<&mut f32> {
        let i = self.flat_index(index)?;
        Ok(&mut self.as_mut_slice()[i])
    }

    /// Sets the element at `index` to `value`.
    pub fn set(&mut self, index: &[usize], value: f32) -> Result<()> {
        *self.get_mut(index)? = value;
        Ok(())
    }

    /// The size of one sub-tensor along dimension 0 and the number of them.
    fn rows_layout(&self, op: &'static str) -> Result<(usize, usize)> {
        let (&rows, rest) = self.shape.split_first().ok_or(Error::ZeroDim { op })?;
        Ok((rows, rest.iter().product()))
    }

    /// The elements of `self[i]` (the `i`-th sub-tensor along dimension 0).
    pub fn row(&self, i: usize) -> Result<&[f32]> {
        let (rows, inner) = self.rows_layout("row")?;
        if i >= rows {
            return Err(Error::IndexOutOfRange {
                index: i,
                dim: 0,
                size: rows,
            });
        }
        Ok(&self.as_slice()[i * inner..(i + 1) * inner])
    }

    /// The elements of `self[i]`, mutably.
    pub fn row_mut(&mut self, i: usize) -> Result<&mut [f32]> {
        let (rows, inner) = self.rows_layout("row_mut")?;
        if i >= rows {
            return Err(Error::IndexOutOfRange {
                index: i,
                dim: 0,
                size: rows,
            });
        }
        Ok(&mut self.as_mut_slice()[i * inner..(i + 1) * inner])
    }

    /// A copy of `self[i]`, with shape `shape[1..]` (PyTorch's `t[i]`).
    pub fn select(&self, i: usize) -> Result<Tensor> {
        let data = self.row(i)?;
        Tensor::from_slice(data, &self.shape[1..])
    }

    /// A copy of `self[range]` along dimension 0 (PyTorch's `t[a:b]`).
    pub fn narrow(&self, range: Range<usize>) -> Result<Tensor> {
        let (rows, inner) = self.rows_layout("narrow")?;
        if range.start > range.end || range.end > rows {
            return Err(Error::RangeOutOfBounds {
                start: range.start,
                end: range.end,
                size: rows,
            });
        }
        let mut shape = self.shape.clone();
        shape[0] = range.len();
        Tensor::from_slice(
            &self.as_slice()[range.start * inner..range.end * inner],
            &shape,
        )
    }

    /// The same elements with another shape of the same element count.
    pub fn reshape(mut self, shape: &[usize]) -> Result<Tensor> {
        if numel_of(shape)? != self.numel() {
            return Err(Error::ShapeDataMismatch {
                shape: shape.to_vec(),
                len: self.numel(),
            });
        }
        self.shape = shape.to_vec();
        Ok(self)
    }

    /// Copies `other`'s elements into `self`; the shapes must be equal.
    pub fn copy_from(&mut self, other: &Tensor) -> Result<()> {
        self.check_same_shape("copy_", other)?;
        self.as_mut_slice().copy_from_slice(other.as_slice());
        Ok(())
    }

    fn check_same_shape(&self, op: &'static str, other: &Tensor) -> Result<()> {
        if self.shape != other.shape {
            return Err(Error::ShapeMismatch {
                op,
                left: self.shape.clone(),
                right: other.shape.clone(),
            });
        }
        Ok(())
    }

    /// Applies `f` to every element, in parallel for large tensors.
    fn map_inplace(&mut self, f: impl Fn(f32) -> f32 + Sync) {
        par_chunks(self.as_mut_slice(), |chunk| {
            for x in chunk {
                *x = f(*x);
            }
        });
    }

    /// Sets every element to `value`.
    pub fn fill_(&mut self, value: f32) {
        Kernels::active().fill_constant(self.as_mut_slice(), value);
    }

    /// Adds `value` to every element (`t += value`).
    pub fn add_scalar_(&mut self, value: f32) {
        self.map_inplace(|x| x + value);
    }

    /// Multiplies every element by `value` (`t *= value`).
    pub fn mul_scalar_(&mut self, value: f32) {
        self.map_inplace(|x| x * value);
    }

    /// Adds `other` element-wise (`t += other`, a residual connection);
    /// the shapes must be equal.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] naming both shapes.
    pub fn add_(&mut self, other: &Tensor) -> Result<()> {
        self.check_same_shape("add_", other)?;
        for (x, y) in self.as_mut_slice().iter_mut().zip(other.as_slice()) {
            *x += y;
        }
        Ok(())
    }

    /// Multiplies element-wise by `other` (a mask of zeros and ones, say),
    /// which must have the same shape.
    pub fn mul_(&mut self, other: &Tensor) -> Result<()> {
        self.check_same_shape("mul_", other)?;
        for (x, m) in self.as_mut_slice().iter_mut().zip(other.as_slice()) {
            *x *= m;
        }
        Ok(())
    }

    /// A mask with 1 where `|x| >= threshold` and 0 elsewhere (PyTorch's
    /// `t.abs() >= threshold`, as floats).
    pub fn abs_ge(&self, threshold: f32) -> Tensor {
        let mut mask = self.clone();
        mask.map_inplace(|x| if x.abs() >= threshold { 1.0 } else { 0.0 });
        mask
    }

    /// `t *= (t.abs() >= threshold)` in one vectorized pass: elements with
    /// `|x| < threshold` become zero (keeping their sign), others are kept.
    /// A NaN threshold is an error.
    pub fn threshold_mask_(&mut self, threshold: f32) -> Result<()> {
        Kernels::active().threshold_mask(self.as_mut_slice(), threshold)
    }

    /// The sum of the elements, accumulated in `f64`.
    pub fn sum(&self) -> f64 {
        self.as_slice().iter().map(|&x| f64::from(x)).sum()
    }
}

impl PartialEq for Tensor {
    /// Same shape and equal elements (`torch.equal`; NaN is unequal to itself).
    fn eq(&self, other: &Tensor) -> bool {
        self.shape == other.shape && self.as_slice() == other.as_slice()
    }
}

impl<const N: usize> Index<[usize; N]> for Tensor {
    type Output = f32;

    /// `t[[i, j]]`. Panics on a bad index, like slice indexing; use
    /// [`Tensor::get`] for a `Result`.
    fn index(&self, index: [usize; N]) -> &f32 {
        match self.flat_index(&index) {
            Ok(i) => &self.as_slice()[i],
            Err(e) => panic!("{e}"),
        }
    }
}

impl<const N: usize> IndexMut<[usize; N]> for Tensor {
    /// `t[[i, j]] = v`. Panics on a bad index; use [`Tensor::get_mut`] for a
    /// `Result`.
    fn index_mut(&mut self, index: [usize; N]) -> &mut f32 {
        match self.flat_index(&index) {
            Ok(i) => &mut self.as_mut_slice()[i],
            Err(e) => panic!("{e}"),
        }
    }
}

impl AddAssign<f32> for Tensor {
    fn add_assign(&mut self, value: f32) {
        self.add_scalar_(value);
    }
}

impl SubAssign<f32> for Tensor {
    fn sub_assign(&mut self, value: f32) {
        self.map_inplace(|x| x - value);
    }
}

impl MulAssign<f32> for Tensor {
    fn mul_assign(&mut self, value: f32) {
        self.mul_scalar_(value);
    }
}

impl DivAssign<f32> for Tensor {
    fn div_assign(&mut self, value: f32) {
        self.map_inplace(|x| x / value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_and_shapes() {
        let t = Tensor::zeros(&[2, 3]).unwrap();
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.numel(), 6);
        assert!(t.as_slice().iter().all(|&x| x == 0.0));
        assert_eq!(Tensor::ones(&[0, 5]).unwrap().numel(), 0);
        let s = Tensor::scalar(2.5);
        assert_eq!((s.dim(), s.numel(), s.item().unwrap()), (0, 1, 2.5));
        assert_eq!(s.get(&[]).unwrap(), 2.5);
        let f = Tensor::full(&[70_000], -1.0).unwrap();
        assert!(f.as_slice().iter().all(|&x| x == -1.0));
        assert_eq!(f.as_slice().as_ptr() as usize % 64, 0);
    }

    #[test]
    fn shape_errors() {
        let e = Tensor::from_vec(vec![1.0; 5], &[2, 3]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape '[2, 3]' is invalid for input of size 5"
        );
        let e = Tensor::zeros(&[usize::MAX, 2]).unwrap_err();
        assert!(matches!(e, Error::ShapeOverflow { .. }), "{e}");
        let e = Tensor::zeros(&[1 << 62]).unwrap_err();
        assert!(matches!(e, Error::ShapeOverflow { .. }), "{e}");
        let e = Tensor::rand(&[1 << 40, 1 << 40], None).unwrap_err();
        assert!(matches!(e, Error::ShapeOverflow { .. }), "{e}");
        let t = Tensor::zeros(&[2, 3]).unwrap();
        assert_eq!(
            t.get(&[2, 0]).unwrap_err().to_string(),
            "index 2 is out of bounds for dimension 0 with size 2"
        );
        assert!(matches!(
            t.get(&[0]),
            Err(Error::IndexRank { given: 1, dims: 2 })
        ));
        assert!(t.clone().reshape(&[4]).is_err());
        assert!(Tensor::scalar(1.0).row(0).is_err());
        assert!(t.narrow(1..3).is_err());
    }

    #[test]
    fn element_and_row_access() {
        let mut t = Tensor::from_vec((0..6).map(|x| x as f32).collect(), &[2, 3]).unwrap();
        assert_eq!(t[[1, 2]], 5.0);
        t[[0, 0]] = 42.0;
        assert_eq!(t.row(0).unwrap(), &[42.0, 1.0, 2.0]);
        t.row_mut(1).unwrap()[0] = -3.0;
        assert_eq!(t.select(1).unwrap().to_vec(), vec![-3.0, 4.0, 5.0]);
        assert_eq!(t.narrow(1..2).unwrap().shape(), &[1, 3]);
        let r = t.clone().reshape(&[3, 2]).unwrap();
        assert_eq!(r.as_slice(), t.as_slice());
    }

    #[test]
    #[should_panic(expected = "index 3 is out of bounds for dimension 1 with size 3")]
    fn index_panics_with_message() {
        let t = Tensor::zeros(&[2, 3]).unwrap();
        let _ = t[[0, 3]];
    }

    #[test]
    fn in_place_arithmetic_and_masks() {
        let mut t = Tensor::from_vec(vec![-6.0, -1.0, 0.5, 7.0], &[4]).unwrap();
        t += 1.0;
        assert_eq!(t.to_vec(), vec![-5.0, 0.0, 1.5, 8.0]);
        t *= 2.0;
        t -= 1.0;
        t /= 2.0;
        assert_eq!(t.to_vec(), vec![-5.5, -0.5, 1.0, 7.5]);
        let mask = t.abs_ge(5.0);
        assert_eq!(mask.to_vec(), vec![1.0, 0.0, 0.0, 1.0]);
        let mut u = t.clone();
        u.mul_(&mask).unwrap();
        t.threshold_mask_(5.0).unwrap();
        assert_eq!(t, u);
        assert!(t.mul_(&Tensor::zeros(&[3]).unwrap()).is_err());
        assert!(t.threshold_mask_(f32::NAN).is_err());
        t.fill_(3.0);
        assert_eq!(t.sum(), 12.0);
    }

    #[test]
    fn large_tensor_ops_run_in_parallel_chunks() {
        let mut t = Tensor::ones(&[300_001]).unwrap();
        t += 1.0;
        t.threshold_mask_(2.5).unwrap();
        assert_eq!(t.sum(), 0.0);
    }
}
