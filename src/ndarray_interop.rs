//! `ndarray` support (cargo feature `ndarray`): every initializer fills
//! `ndarray` arrays and views, and [`Tensor`] converts to and from
//! [`ArrayD<f32>`](::ndarray::ArrayD).
//!
//! The module is named `ndarray_interop` rather than `ndarray` so that
//! `nninit::ndarray` never stands in for the `ndarray` crate itself (after a
//! `use nninit::*`, a module `nninit::ndarray` would shadow the crate's name
//! in paths such as `ndarray::Array2`). Everything it adds is a trait
//! implementation or a method of [`Tensor`]: there is nothing to import from
//! it.
//!
//! # Arrays as init targets
//! [`InitTarget`] is implemented for
//! * `ArrayViewMut<f32, D>` (by value, as `a.view_mut()` or
//!   `a.slice_mut(s![..])` give it),
//! * `&mut ArrayBase<S, D>` for any mutable storage `S` of `f32` (`&mut
//!   Array2<f32>`, `&mut ArrayD<f32>`, `&mut ArcArray<f32, D>`, `&mut` a
//!   view),
//! * `&mut ArrayRef<f32, D>` (what `ndarray` 0.17 functions take),
//!
//! for every dimension `D`, so every function of [`crate::init`] and
//! [`Init::apply`](crate::init::Init::apply) accepts them.
//!
//! **The values are defined by the logical row-major order of the array's
//! elements**: an initializer writes into an array of shape `s` exactly the
//! values it writes into a [`Tensor`] of shape `s` (`a[[i, j, …]]` gets
//! `t[[i, j, …]]`), bit for bit, from the same generator state, whatever
//! the array's strides. The fans follow PyTorch's rules on the array's
//! (logical) shape, as [`calculate_fan_in_and_fan_out`](crate::init::calculate_fan_in_and_fan_out):
//! `fan_in = shape[1] · ∏ shape[2..]`, `fan_out = shape[0] · ∏ shape[2..]`,
//! fewer than 2 dimensions an error for Xavier and Kaiming. So a transposed
//! view `w.t()` of a `[out, in]` weight has the fans of an `[in, out]`
//! weight.
//!
//! An array in standard layout (C order, contiguous, as every freshly built
//! array is) is filled in place, in parallel, with no copy. Any other
//! layout (a strided slice `s![.., ..;2]`, a transposed or reversed view, a
//! Fortran-order array) is filled through a temporary buffer in logical
//! order that is then copied into the array: the same values, one extra
//! pass. If the initializer fails, the array is unchanged.
//!
//! ```
//! use ndarray::{Array2, s};
//! use nninit::init::{self, FanMode, Nonlinearity};
//! use nninit::{Generator, Tensor};
//!
//! let mut w = Array2::<f32>::zeros((256, 128));
//! let mut g = Generator::new(0);
//! init::kaiming_uniform_(&mut w, 0.0, FanMode::FanIn, Nonlinearity::Relu, Some(&mut g)).unwrap();
//! let bound = (6.0f32 / 128.0).sqrt(); // gain √2 · √3 / √fan_in
//! assert!(w.iter().all(|x| x.abs() <= bound));
//!
//! // The same values as on a Tensor of the same shape from the same seed.
//! let mut t = Tensor::zeros(&[256, 128]).unwrap();
//! let mut g = Generator::new(0);
//! init::kaiming_uniform_(&mut t, 0.0, FanMode::FanIn, Nonlinearity::Relu, Some(&mut g)).unwrap();
//! assert_eq!(w.as_slice().unwrap(), t.as_slice());
//!
//! // A strided view: the values of a contiguous [256, 64] array.
//! let mut every_other = Array2::<f32>::zeros((256, 128));
//! init::normal_(every_other.slice_mut(s![.., ..;2]), 0.0, 1.0, Some(&mut Generator::new(1))).unwrap();
//! let mut dense = Array2::<f32>::zeros((256, 64));
//! init::normal_(&mut dense, 0.0, 1.0, Some(&mut Generator::new(1))).unwrap();
//! assert_eq!(every_other.slice(s![.., ..;2]), dense);
//! assert!(every_other.slice(s![.., 1..;2]).iter().all(|&x| x == 0.0));
//! ```
//!
//! The README's example:
//!
//! ```
//! use ndarray::{Array2, s};
//! use nninit::init::{self, FanMode, Nonlinearity};
//! use nninit::{Generator, Tensor};
//!
//! let mut w = Array2::<f32>::zeros((256, 128));
//! init::kaiming_uniform_(&mut w, 0.0, FanMode::FanIn, Nonlinearity::Relu, Some(&mut Generator::new(0)))?;
//! let mut t = Tensor::zeros(&[256, 128])?;
//! init::kaiming_uniform_(&mut t, 0.0, FanMode::FanIn, Nonlinearity::Relu, Some(&mut Generator::new(0)))?;
//! assert_eq!(w.as_slice().unwrap(), t.as_slice()); // the same bits
//!
//! init::normal_(w.slice_mut(s![.., ..;2]), 0.0, 0.02, None)?; // any view, strided too
//! let back = Tensor::from_ndarray(&w);                        // a copy, in logical order
//! let view = back.as_ndarray_view();                          // ArrayViewD<f32>, no copy
//! assert_eq!(view.as_ptr(), back.as_slice().as_ptr());
//! # Ok::<(), nninit::Error>(())
//! ```
//!
//! # Tensors and arrays
//! * [`Tensor::as_ndarray_view`] and [`Tensor::as_ndarray_view_mut`]: an
//!   `ArrayViewD<f32>` of the tensor's own memory (a tensor is always
//!   row-major and contiguous, so this never copies);
//!   [`Tensor::as_ndarray_view_dim`] with a fixed dimension type.
//! * [`Tensor::to_ndarray`] (and `ArrayD::from(&tensor)`, `ArrayD::from(tensor)`),
//!   [`Tensor::to_ndarray_dim`]: an owned copy. `ndarray` owns its memory in
//!   a `Vec`, and a tensor's storage is aligned to 64 bytes or 2 MiB, so an
//!   owned array is always a copy.
//! * [`Tensor::from_ndarray`] (and `Tensor::from(&array)`, `Tensor::from(array)`):
//!   a copy into a tensor's aligned storage, in logical order, from any
//!   layout.
//!
//! A fixed number of dimensions that differs from the tensor's is
//! [`Error::ArrayDims`].
//!
//! ```
//! use ndarray::{Array2, ArrayD, Ix2, IxDyn};
//! use nninit::Tensor;
//!
//! let t = Tensor::from_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
//! let view = t.as_ndarray_view();
//! assert_eq!(view.shape(), &[2, 3]);
//! assert_eq!(view.as_ptr(), t.as_slice().as_ptr()); // no copy
//! let a: ArrayD<f32> = t.to_ndarray();
//! assert_eq!(Tensor::from_ndarray(&a), t);
//! let m: Array2<f32> = t.to_ndarray_dim::<Ix2>().unwrap();
//! assert_eq!(m[[1, 0]], 4.0);
//! assert_eq!(Tensor::from_ndarray(&m.t()).shape(), &[3, 2]);
//! ```

use ::ndarray::{
    Array, ArrayBase, ArrayD, ArrayRef, ArrayView, ArrayViewD, ArrayViewMut, ArrayViewMutD, Data,
    DataMut, Dimension, IxDyn,
};

use crate::error::{Error, Result};
use crate::init::InitTarget;
use crate::tensor::Tensor;

/// Runs `f` on the shape and row-major elements of `a`: its own memory when
/// it is in standard layout, else a copy in logical order that is written
/// back if `f` succeeds.
fn array_elements<D: Dimension, R>(
    a: &mut ArrayRef<f32, D>,
    f: impl FnOnce(&[usize], &mut [f32]) -> Result<R>,
) -> Result<R> {
    let shape = a.shape().to_vec();
    if let Some(data) = a.as_slice_mut() {
        return f(&shape, data);
    }
    let mut logical: Vec<f32> = a.iter().copied().collect();
    let r = f(&shape, &mut logical)?;
    let filled = ArrayView::from_shape(a.raw_dim(), &logical)
        .expect("a buffer of the array's length has its shape");
    a.assign(&filled);
    Ok(r)
}

/// Runs `f` on a tensor holding a copy of `a`, and copies the tensor back
/// into `a` if `f` succeeds (and left its shape alone).
fn array_tensor<D: Dimension, R>(
    a: &mut ArrayRef<f32, D>,
    f: impl FnOnce(&mut Tensor) -> Result<R>,
) -> Result<R> {
    let mut t = Tensor::from_ndarray(a);
    let r = f(&mut t)?;
    if t.shape() != a.shape() {
        return Err(Error::ShapeMismatch {
            op: "with_tensor",
            left: a.shape().to_vec(),
            right: t.shape().to_vec(),
        });
    }
    array_elements(a, |_, data| {
        data.copy_from_slice(t.as_slice());
        Ok(r)
    })
}

/// A mutable view as an init target: filled in place when in standard
/// layout, through a temporary in logical order otherwise (see the
/// [module docs](self)).
///
/// ```
/// use ndarray::{Array3, s};
/// use nninit::{Generator, init};
///
/// let mut a = Array3::<f32>::zeros((4, 8, 3));
/// // Xavier on the [4, 8] matrices of channel 0: fans 8 and 4.
/// init::xavier_uniform_(a.slice_mut(s![.., .., 0]), 1.0, Some(&mut Generator::new(0))).unwrap();
/// let bound = (6.0f32 / 12.0).sqrt();
/// assert!(a.slice(s![.., .., 0]).iter().all(|x| x.abs() <= bound && *x != 0.0));
/// assert!(a.slice(s![.., .., 1..]).iter().all(|&x| x == 0.0));
/// ```
impl<D: Dimension> InitTarget for ArrayViewMut<'_, f32, D> {
    fn with_tensor<R>(mut self, f: impl FnOnce(&mut Tensor) -> Result<R>) -> Result<R> {
        array_tensor(&mut self, f)
    }

    fn with_elements<R>(mut self, f: impl FnOnce(&[usize], &mut [f32]) -> Result<R>) -> Result<R> {
        array_elements(&mut self, f)
    }
}

/// An array (owned, shared or a view) as an init target, as its
/// [`view_mut`](ArrayRef::view_mut).
///
/// ```
/// use ndarray::{ArrayD, IxDyn};
/// use nninit::{Generator, init};
///
/// let mut w = ArrayD::<f32>::zeros(IxDyn(&[16, 3, 5, 5]));
/// init::kaiming_normal_(&mut w, 0.0, Default::default(), "relu".parse().unwrap(), Some(&mut Generator::new(2))).unwrap();
/// assert!(w.iter().all(|x| x.is_finite()));
/// let e = init::xavier_uniform_(&mut ArrayD::<f32>::zeros(IxDyn(&[5])), 1.0, None).unwrap_err();
/// assert_eq!(e.to_string(), "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions");
/// ```
impl<S, D> InitTarget for &mut ArrayBase<S, D>
where
    S: DataMut<Elem = f32>,
    D: Dimension,
{
    fn with_tensor<R>(self, f: impl FnOnce(&mut Tensor) -> Result<R>) -> Result<R> {
        array_tensor(self, f)
    }

    fn with_elements<R>(self, f: impl FnOnce(&[usize], &mut [f32]) -> Result<R>) -> Result<R> {
        array_elements(self, f)
    }
}

/// An array reference (what `ndarray` 0.17 functions take) as an init
/// target.
///
/// ```
/// use ndarray::{Array1, ArrayRef1};
/// use nninit::init;
///
/// fn reset(bias: &mut ArrayRef1<f32>) {
///     init::zeros_(bias).unwrap();
/// }
/// let mut b = Array1::<f32>::ones(10);
/// reset(&mut b);
/// assert!(b.iter().all(|&x| x == 0.0));
/// ```
impl<D: Dimension> InitTarget for &mut ArrayRef<f32, D> {
    fn with_tensor<R>(self, f: impl FnOnce(&mut Tensor) -> Result<R>) -> Result<R> {
        array_tensor(self, f)
    }

    fn with_elements<R>(self, f: impl FnOnce(&[usize], &mut [f32]) -> Result<R>) -> Result<R> {
        array_elements(self, f)
    }
}

impl Tensor {
    /// A tensor holding a copy of `a`'s elements in logical row-major order
    /// (`t[[i, j, …]] == a[[i, j, …]]`), from any layout, with `a`'s shape.
    ///
    /// ```
    /// use ndarray::{array, s};
    /// use nninit::Tensor;
    ///
    /// let a = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
    /// let t = Tensor::from_ndarray(&a.slice(s![.., ..;2]));
    /// assert_eq!(t.shape(), &[2, 2]);
    /// assert_eq!(t.as_slice(), &[1.0, 3.0, 4.0, 6.0]);
    /// ```
    pub fn from_ndarray<D: Dimension>(a: &ArrayRef<f32, D>) -> Tensor {
        let shape = a.shape();
        let made = match a.as_slice() {
            Some(data) => Tensor::from_slice(data, shape),
            None => Tensor::filled_with(shape, |out| {
                for (slot, &x) in out.iter_mut().zip(a.iter()) {
                    slot.write(x);
                }
            }),
        };
        made.expect("an existing array has an allocatable shape")
    }

    /// An owned copy as an `ndarray` array of the same shape.
    ///
    /// ```
    /// use ndarray::ArrayD;
    /// use nninit::Tensor;
    ///
    /// let t = Tensor::ones(&[2, 3, 4]).unwrap();
    /// let a: ArrayD<f32> = t.to_ndarray();
    /// assert_eq!(a.shape(), &[2, 3, 4]);
    /// assert_eq!(a.sum(), 24.0);
    /// ```
    pub fn to_ndarray(&self) -> ArrayD<f32> {
        self.as_ndarray_view().to_owned()
    }

    /// An owned copy as an array of the fixed dimension type `D`
    /// (`Ix2` for an `Array2<f32>`, …).
    ///
    /// # Errors
    /// [`Error::ArrayDims`] if the tensor does not have `D`'s number of
    /// dimensions.
    ///
    /// ```
    /// use ndarray::{Array2, Ix2, Ix3};
    /// use nninit::Tensor;
    ///
    /// let t = Tensor::zeros(&[4, 5]).unwrap();
    /// let m: Array2<f32> = t.to_ndarray_dim::<Ix2>().unwrap();
    /// assert_eq!(m.dim(), (4, 5));
    /// let e = t.to_ndarray_dim::<Ix3>().unwrap_err();
    /// assert_eq!(e.to_string(), "cannot convert a tensor of shape [4, 5] (2 dimensions) to an array of 3 dimensions");
    /// ```
    pub fn to_ndarray_dim<D: Dimension>(&self) -> Result<Array<f32, D>> {
        Ok(self.as_ndarray_view_dim::<D>()?.to_owned())
    }

    /// A view of the tensor's memory as an `ndarray` view of the same shape,
    /// in standard layout: no copy.
    ///
    /// ```
    /// use nninit::Tensor;
    ///
    /// let t = Tensor::from_slice(&[1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let v = t.as_ndarray_view();
    /// assert_eq!(v.as_ptr(), t.as_slice().as_ptr());
    /// assert_eq!(v.t()[[0, 1]], 3.0);
    /// ```
    pub fn as_ndarray_view(&self) -> ArrayViewD<'_, f32> {
        ArrayView::from_shape(IxDyn(self.shape()), self.as_slice())
            .expect("a tensor's elements fill its shape")
    }

    /// A view of the tensor's memory as an `ndarray` view of the fixed
    /// dimension type `D`: no copy.
    ///
    /// # Errors
    /// [`Error::ArrayDims`] if the tensor does not have `D`'s number of
    /// dimensions.
    ///
    /// ```
    /// use ndarray::{Ix1, Ix2};
    /// use nninit::Tensor;
    ///
    /// let t = Tensor::ones(&[3, 2]).unwrap();
    /// let v = t.as_ndarray_view_dim::<Ix2>().unwrap();
    /// assert_eq!(v.dim(), (3, 2));
    /// assert!(t.as_ndarray_view_dim::<Ix1>().is_err());
    /// ```
    pub fn as_ndarray_view_dim<D: Dimension>(&self) -> Result<ArrayView<'_, f32, D>> {
        self.as_ndarray_view()
            .into_dimensionality::<D>()
            .map_err(|_| self.array_dims::<D>())
    }

    /// A mutable view of the tensor's memory as an `ndarray` view of the same
    /// shape: writes through it change the tensor; no copy.
    ///
    /// ```
    /// use ndarray::Axis;
    /// use nninit::Tensor;
    ///
    /// let mut t = Tensor::zeros(&[2, 3]).unwrap();
    /// t.as_ndarray_view_mut().index_axis_mut(Axis(0), 1).fill(7.0);
    /// assert_eq!(t.as_slice(), &[0.0, 0.0, 0.0, 7.0, 7.0, 7.0]);
    /// ```
    pub fn as_ndarray_view_mut(&mut self) -> ArrayViewMutD<'_, f32> {
        let (shape, data) = self.shape_and_slice_mut();
        ArrayViewMut::from_shape(IxDyn(shape), data).expect("a tensor's elements fill its shape")
    }

    /// The error for a tensor that does not have `D`'s number of dimensions.
    fn array_dims<D: Dimension>(&self) -> Error {
        Error::ArrayDims {
            expected: D::NDIM.unwrap_or(self.dim()),
            shape: self.shape().to_vec(),
        }
    }
}

/// A copy of the tensor as an array ([`Tensor::to_ndarray`]).
///
/// ```
/// use ndarray::ArrayD;
/// use nninit::Tensor;
///
/// let t = Tensor::full(&[2, 2], 3.0).unwrap();
/// assert_eq!(ArrayD::from(&t), t.to_ndarray());
/// ```
impl From<&Tensor> for ArrayD<f32> {
    fn from(t: &Tensor) -> ArrayD<f32> {
        t.to_ndarray()
    }
}

/// The tensor as an array: a copy ([`Tensor::to_ndarray`]); the tensor's
/// aligned storage cannot become an `ndarray`'s `Vec`.
///
/// ```
/// use ndarray::ArrayD;
/// use nninit::Tensor;
///
/// let a = ArrayD::from(Tensor::ones(&[3]).unwrap());
/// assert_eq!(a.shape(), &[3]);
/// ```
impl From<Tensor> for ArrayD<f32> {
    fn from(t: Tensor) -> ArrayD<f32> {
        t.to_ndarray()
    }
}

/// A copy of any array or view ([`Tensor::from_ndarray`]).
///
/// ```
/// use ndarray::Array2;
/// use nninit::Tensor;
///
/// let a = Array2::<f32>::ones((2, 5));
/// let t = Tensor::from(&a.view());
/// assert_eq!(t.shape(), &[2, 5]);
/// ```
impl<S, D> From<&ArrayBase<S, D>> for Tensor
where
    S: Data<Elem = f32>,
    D: Dimension,
{
    fn from(a: &ArrayBase<S, D>) -> Tensor {
        Tensor::from_ndarray(a)
    }
}

/// A copy of an owned array ([`Tensor::from_ndarray`]).
///
/// ```
/// use ndarray::Array3;
/// use nninit::Tensor;
///
/// let t = Tensor::from(Array3::<f32>::zeros((2, 3, 4)));
/// assert_eq!(t.shape(), &[2, 3, 4]);
/// ```
impl<D: Dimension> From<Array<f32, D>> for Tensor {
    fn from(a: Array<f32, D>) -> Tensor {
        Tensor::from_ndarray(&a)
    }
}
