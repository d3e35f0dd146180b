//! Activation functions as modules.

use super::{Module, check_grad_shape};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// `max(0, x)` elementwise: PyTorch's `nn.ReLU`. NaN stays NaN, as in
/// PyTorch.
///
/// In training mode ([`Module::train`]) each forward records which inputs
/// were positive, and each [`backward`](Module::backward) consumes the latest
/// record: `dx = dy` where `x > 0`, else 0.
///
/// ```
/// use nninit::nn::{Module, ReLU};
/// use nninit::Tensor;
///
/// let x = Tensor::from_vec(vec![-1.0, 0.5, f32::NAN], &[3]).unwrap();
/// let y = ReLU::new().forward(&x).unwrap();
/// assert_eq!(y[[0]], 0.0);
/// assert_eq!(y[[1]], 0.5);
/// assert!(y[[2]].is_nan());
/// assert_eq!(ReLU::new().to_string(), "ReLU()");
/// ```
#[derive(Debug, Clone, Default)]
pub struct ReLU {
    training: bool,
    /// Outputs of the training forwards not yet consumed by a backward
    /// (`y > 0` exactly where `x > 0`).
    outputs: Vec<Tensor>,
}

impl ReLU {
    /// A ReLU (in inference mode).
    pub fn new() -> ReLU {
        ReLU::default()
    }
}

impl Module for ReLU {
    fn type_name(&self) -> &'static str {
        "ReLU"
    }

    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        let mut out = input.clone();
        for x in out.as_mut_slice() {
            // `x < 0` is false for NaN, which passes through.
            if *x < 0.0 {
                *x = 0.0;
            }
        }
        if self.training {
            self.outputs.push(out.clone());
        }
        Ok(out)
    }

    fn backward(&mut self, grad_output: &Tensor) -> Result<Tensor> {
        let y = self.outputs.pop().ok_or(Error::BackwardBeforeForward {
            module: "ReLU".to_string(),
        })?;
        check_grad_shape("grad_output of ReLU", y.shape(), grad_output.shape())?;
        let mut dx = grad_output.clone();
        for (d, &y) in dx.as_mut_slice().iter_mut().zip(y.as_slice()) {
            if y.is_nan() || y <= 0.0 {
                *d = 0.0;
            }
        }
        Ok(dx)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        if !training {
            self.outputs.clear();
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }
}
