//! Loss functions.

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Mean squared error, PyTorch's `nn.MSELoss()` (mean reduction):
/// `ℓ = (1/n) Σ (xᵢ − yᵢ)²`, summed in `f64`.
///
/// [`forward`](MSELoss::forward) records `x − y`; [`backward`](MSELoss::backward)
/// consumes it and returns `∂ℓ/∂x = 2 (x − y) / n`. Input and target must
/// have the same shape (PyTorch broadcasts with a warning; we refuse). An
/// empty input gives a NaN loss, as in PyTorch.
///
/// ```
/// use nninit::nn::MSELoss;
/// use nninit::Tensor;
///
/// let x = Tensor::from_vec(vec![1.0, 2.0], &[2, 1]).unwrap();
/// let y = Tensor::from_vec(vec![0.0, 4.0], &[2, 1]).unwrap();
/// let mut loss = MSELoss::new();
/// assert_eq!(loss.forward(&x, &y).unwrap().item().unwrap(), 2.5);
/// assert_eq!(loss.backward().unwrap().as_slice(), &[1.0, -2.0]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct MSELoss {
    diff: Option<Tensor>,
}

impl MSELoss {
    /// The loss with mean reduction.
    pub fn new() -> MSELoss {
        MSELoss::default()
    }

    /// The loss of `input` against `target`, a 0-d tensor.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the shapes differ.
    pub fn forward(&mut self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
        if input.shape() != target.shape() {
            return Err(Error::ShapeMismatch {
                op: "mse_loss",
                left: input.shape().to_vec(),
                right: target.shape().to_vec(),
            });
        }
        let mut diff = input.clone();
        let mut sum = 0.0f64;
        for (d, &t) in diff.as_mut_slice().iter_mut().zip(target.as_slice()) {
            *d -= t;
            sum += f64::from(*d) * f64::from(*d);
        }
        let n = diff.numel();
        self.diff = Some(diff);
        Ok(Tensor::scalar((sum / n as f64) as f32))
    }

    /// `∂ℓ/∂input` for the latest forward (consumed).
    ///
    /// # Errors
    /// [`Error::BackwardBeforeForward`] without a forward since the last
    /// backward.
    pub fn backward(&mut self) -> Result<Tensor> {
        let mut grad = self.diff.take().ok_or(Error::BackwardBeforeForward {
            module: "MSELoss".to_string(),
        })?;
        let scale = 2.0 / grad.numel() as f32;
        grad *= scale;
        Ok(grad)
    }
}
