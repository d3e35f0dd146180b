//! Activation functions as modules.

use super::Module;
use crate::error::Result;
use crate::tensor::Tensor;

/// `max(0, x)` elementwise: PyTorch's `nn.ReLU`. NaN stays NaN, as in
/// PyTorch.
///
/// ```
/// use nninit::nn::{Module, ReLU};
/// use nninit::Tensor;
///
/// let x = Tensor::from_vec(vec![-1.0, 0.5, f32::NAN], &[3]).unwrap();
/// let y = ReLU.forward(&x).unwrap();
/// assert_eq!(y[[0]], 0.0);
/// assert_eq!(y[[1]], 0.5);
/// assert!(y[[2]].is_nan());
/// assert_eq!(ReLU.to_string(), "ReLU()");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ReLU;

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
        Ok(out)
    }
}
