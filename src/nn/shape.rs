//! Layers that only move values: [`Flatten`], [`Identity`].

use super::{Module, check_grad_shape};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Flattens dimensions `start_dim..=end_dim` into one: PyTorch's
/// `nn.Flatten(start_dim=1, end_dim=-1)`. Negative dimensions count from the
/// end. Backward reshapes the gradient back.
///
/// ```
/// use nninit::nn::{Flatten, Module};
/// use nninit::Tensor;
///
/// let mut f = Flatten::new();
/// assert_eq!(f.to_string(), "Flatten(start_dim=1, end_dim=-1)");
/// assert_eq!(f.forward(&Tensor::zeros(&[2, 512, 1, 1]).unwrap()).unwrap().shape(), &[2, 512]);
/// ```
#[derive(Debug, Clone)]
pub struct Flatten {
    start_dim: isize,
    end_dim: isize,
    training: bool,
    shapes: Vec<Vec<usize>>,
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten::with_dims(1, -1)
    }
}

impl Flatten {
    /// `Flatten()`: dimensions 1 to the last.
    pub fn new() -> Flatten {
        Flatten::default()
    }

    /// `Flatten(start_dim, end_dim)`.
    pub fn with_dims(start_dim: isize, end_dim: isize) -> Flatten {
        Flatten {
            start_dim,
            end_dim,
            training: false,
            shapes: Vec::new(),
        }
    }

    fn flattened(&self, shape: &[usize]) -> Result<Vec<usize>> {
        if shape.is_empty() {
            return Ok(vec![1]);
        }
        let n = shape.len() as isize;
        let norm = |d: isize| {
            if d < -n || d >= n {
                Err(Error::DimOutOfRange {
                    dim: d,
                    dims: shape.len(),
                })
            } else {
                Ok(if d < 0 { (d + n) as usize } else { d as usize })
            }
        };
        let (s, e) = (norm(self.start_dim)?, norm(self.end_dim)?);
        if s > e {
            return Err(Error::LayerOption {
                message: "flatten() has invalid args: start_dim cannot come after end_dim",
            });
        }
        let mut out = shape[..s].to_vec();
        out.push(shape[s..=e].iter().product());
        out.extend_from_slice(&shape[e + 1..]);
        Ok(out)
    }
}

impl Module for Flatten {
    fn type_name(&self) -> &'static str {
        "Flatten"
    }

    fn extra_repr(&self) -> String {
        format!("start_dim={}, end_dim={}", self.start_dim, self.end_dim)
    }

    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        let shape = self.flattened(input.shape())?;
        if self.training {
            self.shapes.push(input.shape().to_vec());
        }
        input.clone().reshape(&shape)
    }

    fn backward(&mut self, grad_output: &Tensor) -> Result<Tensor> {
        let shape = self.shapes.pop().ok_or(Error::BackwardBeforeForward {
            module: "Flatten".to_string(),
        })?;
        check_grad_shape(
            "grad_output of Flatten",
            &self.flattened(&shape)?,
            grad_output.shape(),
        )?;
        grad_output.clone().reshape(&shape)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        if !training {
            self.shapes.clear();
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

/// Returns its input: PyTorch's `nn.Identity` (a placeholder, for example
/// for a removed head).
///
/// ```
/// use nninit::nn::{Identity, Module};
/// assert_eq!(Identity::new().to_string(), "Identity()");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Identity {
    training: bool,
    /// Pending backward calls (each returns its gradient unchanged).
    pending: usize,
}

impl Identity {
    /// The identity.
    pub fn new() -> Identity {
        Identity::default()
    }
}

impl Module for Identity {
    fn type_name(&self) -> &'static str {
        "Identity"
    }

    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        if self.training {
            self.pending += 1;
        }
        Ok(input.clone())
    }

    fn backward(&mut self, grad_output: &Tensor) -> Result<Tensor> {
        if self.pending == 0 {
            return Err(Error::BackwardBeforeForward {
                module: "Identity".to_string(),
            });
        }
        self.pending -= 1;
        Ok(grad_output.clone())
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        if !training {
            self.pending = 0;
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

super::display_as_module!(Flatten, Identity);
