//! Optimizers.

use std::collections::HashSet;

use super::Parameter;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Stochastic gradient descent, exactly as `torch.optim.SGD` defines it.
///
/// For each parameter `p` with a gradient `g` (parameters without one are
/// skipped), at step `t`:
/// ```text
/// g ← g + weight_decay · p                      (if weight_decay ≠ 0)
/// b ← g                          at t = 1       (if momentum ≠ 0)
/// b ← momentum · b + (1 − dampening) · g  after
/// g ← g + momentum · b  if nesterov, else g ← b
/// p ← p − lr · g
/// ```
/// Each parameter is stepped once, however many names or uses it has (the
/// list is de-duplicated by identity).
///
/// ```
/// use nninit::nn::{Linear, Module, MSELoss, SGD};
/// use nninit::{Generator, Tensor};
///
/// let mut layer = Linear::with_options(3, 1, true, Some(&mut Generator::new(0))).unwrap();
/// let mut opt = SGD::new(layer.parameters(), 0.1).unwrap();
/// let x = Tensor::ones(&[4, 3]).unwrap();
/// let y = Tensor::zeros(&[4, 1]).unwrap();
/// let mut loss = MSELoss::new();
/// layer.train(true);
/// let first = loss.forward(&layer.forward(&x).unwrap(), &y).unwrap().item().unwrap();
/// layer.backward(&loss.backward().unwrap()).unwrap();
/// opt.step().unwrap();
/// opt.zero_grad();
/// let second = loss.forward(&layer.forward(&x).unwrap(), &y).unwrap().item().unwrap();
/// assert!(second < first);
/// ```
#[derive(Debug)]
pub struct SGD {
    params: Vec<Parameter>,
    options: SgdOptions,
    momentum_buffers: Vec<Option<Tensor>>,
}

/// The hyper-parameters of [`SGD`], with PyTorch's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdOptions {
    /// Learning rate (default 0.001).
    pub lr: f64,
    /// Momentum factor (default 0).
    pub momentum: f64,
    /// Dampening for momentum (default 0).
    pub dampening: f64,
    /// L2 penalty (default 0).
    pub weight_decay: f64,
    /// Nesterov momentum (default false); needs momentum > 0 and dampening 0.
    pub nesterov: bool,
}

impl Default for SgdOptions {
    fn default() -> SgdOptions {
        SgdOptions {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

impl SGD {
    /// Plain SGD with learning rate `lr`.
    ///
    /// # Errors
    /// As [`SGD::with_options`].
    pub fn new(params: Vec<Parameter>, lr: f64) -> Result<SGD> {
        SGD::with_options(
            params,
            SgdOptions {
                lr,
                ..SgdOptions::default()
            },
        )
    }

    /// SGD with every option.
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] for a negative or non-finite learning rate,
    /// momentum, dampening or weight decay (PyTorch's texts:
    /// `Invalid learning rate: -0.1`, `Invalid momentum value: -1`, …; PyTorch
    /// lets NaN through), [`Error::Nesterov`] for nesterov without momentum
    /// or with dampening.
    pub fn with_options(params: Vec<Parameter>, options: SgdOptions) -> Result<SGD> {
        for (name, value) in [
            ("learning rate", options.lr),
            ("momentum value", options.momentum),
            ("dampening value", options.dampening),
            ("weight_decay value", options.weight_decay),
        ] {
            if !(value >= 0.0 && value.is_finite()) {
                return Err(Error::Hyperparameter { name, value });
            }
        }
        if options.nesterov && (options.momentum <= 0.0 || options.dampening != 0.0) {
            return Err(Error::Nesterov);
        }
        let mut seen = HashSet::new();
        let params: Vec<Parameter> = params.into_iter().filter(|p| seen.insert(p.id())).collect();
        let momentum_buffers = vec![None; params.len()];
        Ok(SGD {
            params,
            options,
            momentum_buffers,
        })
    }

    /// The hyper-parameters.
    pub fn options(&self) -> SgdOptions {
        self.options
    }

    /// Changes the learning rate (for a schedule).
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] for a negative or non-finite value.
    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        if !(lr >= 0.0 && lr.is_finite()) {
            return Err(Error::Hyperparameter {
                name: "learning rate",
                value: lr,
            });
        }
        self.options.lr = lr;
        Ok(())
    }

    /// The parameters stepped, each once.
    pub fn params(&self) -> &[Parameter] {
        &self.params
    }

    /// One update of every parameter that has a gradient.
    ///
    /// # Errors
    /// [`Error::UninitializedParameter`] if a parameter has no data (a lazy
    /// module that has not run); nothing is updated then.
    pub fn step(&mut self) -> Result<()> {
        if self.params.iter().any(|p| !p.is_initialized()) {
            return Err(Error::UninitializedParameter);
        }
        let o = self.options;
        let (lr, momentum, dampening, wd) = (
            o.lr as f32,
            o.momentum as f32,
            o.dampening as f32,
            o.weight_decay as f32,
        );
        for (p, buf) in self.params.iter().zip(&mut self.momentum_buffers) {
            p.with_data_and_grad(|data, grad| {
                let Some(grad) = grad else { return };
                if wd == 0.0 && momentum == 0.0 {
                    // Plain SGD: no intermediate tensor.
                    for (w, &g) in data.as_mut_slice().iter_mut().zip(grad.as_slice()) {
                        *w -= lr * g;
                    }
                    return;
                }
                let mut d = grad.clone();
                if wd != 0.0 {
                    for (g, &w) in d.as_mut_slice().iter_mut().zip(data.as_slice()) {
                        *g += wd * w;
                    }
                }
                if momentum != 0.0 {
                    match buf {
                        Some(b) if b.shape() == d.shape() => {
                            for (b, &g) in b.as_mut_slice().iter_mut().zip(d.as_slice()) {
                                *b = momentum * *b + (1.0 - dampening) * g;
                            }
                        }
                        _ => *buf = Some(d.clone()),
                    }
                    let b = buf.as_ref().expect("set just above");
                    if o.nesterov {
                        for (g, &b) in d.as_mut_slice().iter_mut().zip(b.as_slice()) {
                            *g += momentum * b;
                        }
                    } else {
                        d.as_mut_slice().copy_from_slice(b.as_slice());
                    }
                }
                for (w, &g) in data.as_mut_slice().iter_mut().zip(d.as_slice()) {
                    *w -= lr * g;
                }
            })?;
        }
        Ok(())
    }

    /// Clears every parameter's gradient (`set_to_none=True`).
    pub fn zero_grad(&self) {
        for p in &self.params {
            p.clear_grad();
        }
    }
}
