//! [`IntTensor`]: `int64` tensors (embedding indices, BatchNorm's
//! `num_batches_tracked`), and [`AnyTensor`], a tensor of either dtype as a
//! state dict holds it.

use std::fmt;

use super::{Tensor, numel_of};
use crate::error::{Error, Result};

/// A dense, row-major `int64` tensor, PyTorch's `torch.long`: indices for
/// [`Embedding`](crate::nn::Embedding) and integer buffers.
///
/// ```
/// use nninit::IntTensor;
/// let idx = IntTensor::from_vec(vec![1, 0, 4], &[3]).unwrap();
/// assert_eq!(idx.to_string(), "tensor([1, 0, 4])");
/// assert_eq!(IntTensor::scalar(0).to_string(), "tensor(0)");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IntTensor {
    data: Vec<i64>,
    shape: Vec<usize>,
}

impl IntTensor {
    /// A tensor of `shape` holding `data` (row-major).
    ///
    /// # Errors
    /// `shape '[2, 3]' is invalid for input of size 5` if the element counts
    /// differ.
    pub fn from_vec(data: Vec<i64>, shape: &[usize]) -> Result<IntTensor> {
        if numel_of(shape)? != data.len() {
            return Err(Error::ShapeDataMismatch {
                shape: shape.to_vec(),
                len: data.len(),
            });
        }
        Ok(IntTensor {
            data,
            shape: shape.to_vec(),
        })
    }

    /// A 0-d tensor.
    pub fn scalar(value: i64) -> IntTensor {
        IntTensor {
            data: vec![value],
            shape: Vec::new(),
        }
    }

    /// A tensor of zeros.
    ///
    /// # Errors
    /// [`Error::ShapeOverflow`] for impossible sizes.
    pub fn zeros(shape: &[usize]) -> Result<IntTensor> {
        Ok(IntTensor {
            data: vec![0; numel_of(shape)?],
            shape: shape.to_vec(),
        })
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The elements in row-major order.
    pub fn as_slice(&self) -> &[i64] {
        &self.data
    }

    /// The elements in row-major order, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [i64] {
        &mut self.data
    }
}

impl fmt::Display for IntTensor {
    /// PyTorch's `repr`: `tensor([ 1, 22])`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::display::repr_i64(&self.data, &self.shape))
    }
}

impl fmt::Debug for IntTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A tensor of one of the dtypes modules hold: what a
/// [`StateDict`](crate::nn::StateDict) entry or a
/// [`Buffer`](crate::nn::Buffer) is.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyTensor {
    /// `float32` (parameters, most buffers).
    F32(Tensor),
    /// `int64` (BatchNorm's `num_batches_tracked`).
    I64(IntTensor),
}

impl AnyTensor {
    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            AnyTensor::F32(t) => t.shape(),
            AnyTensor::I64(t) => t.shape(),
        }
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        match self {
            AnyTensor::F32(t) => t.numel(),
            AnyTensor::I64(t) => t.numel(),
        }
    }

    /// PyTorch's name of the dtype: `float32` or `int64`.
    pub fn dtype_name(&self) -> &'static str {
        match self {
            AnyTensor::F32(_) => "float32",
            AnyTensor::I64(_) => "int64",
        }
    }

    /// Whether `other` has the same dtype, shape and bits (unlike `==`,
    /// NaN equals the same NaN and `-0.0` differs from `0.0`): an exact
    /// round trip.
    ///
    /// ```
    /// use nninit::{AnyTensor, Tensor};
    /// let a = AnyTensor::F32(Tensor::from_slice(&[f32::NAN, -0.0], &[2]).unwrap());
    /// assert!(a.bit_eq(&a.clone()));
    /// assert!(a != a.clone());
    /// ```
    pub fn bit_eq(&self, other: &AnyTensor) -> bool {
        match (self, other) {
            (AnyTensor::F32(a), AnyTensor::F32(b)) => {
                a.shape() == b.shape()
                    && a.as_slice()
                        .iter()
                        .zip(b.as_slice())
                        .all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (AnyTensor::I64(a), AnyTensor::I64(b)) => a == b,
            _ => false,
        }
    }

    /// The `float32` tensor, if it is one.
    pub fn as_f32(&self) -> Option<&Tensor> {
        match self {
            AnyTensor::F32(t) => Some(t),
            AnyTensor::I64(_) => None,
        }
    }

    /// The `int64` tensor, if it is one.
    pub fn as_i64(&self) -> Option<&IntTensor> {
        match self {
            AnyTensor::I64(t) => Some(t),
            AnyTensor::F32(_) => None,
        }
    }
}

impl From<Tensor> for AnyTensor {
    fn from(t: Tensor) -> AnyTensor {
        AnyTensor::F32(t)
    }
}

impl From<IntTensor> for AnyTensor {
    fn from(t: IntTensor) -> AnyTensor {
        AnyTensor::I64(t)
    }
}

impl fmt::Display for AnyTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyTensor::F32(t) => fmt::Display::fmt(t, f),
            AnyTensor::I64(t) => fmt::Display::fmt(t, f),
        }
    }
}
