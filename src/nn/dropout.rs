//! [`Dropout`]: random zeroing in training mode.

use super::{Module, check_grad_shape};
use crate::distributions::{Distribution, Uniform};
use crate::error::{Error, Result};
use crate::rng::{Generator, Source, with_source};
use crate::tensor::Tensor;

/// PyTorch's `nn.Dropout(p=0.5)`: in training mode each element is zeroed
/// with probability `p` and the others are scaled by `1/(1 − p)`; in
/// inference mode (the initial state in this crate) it is the identity.
///
/// The mask is drawn at each training forward from the global generator
/// ([`Dropout::forward_with`] takes one): from a counter-based generator, one
/// stream (element `i` is kept when its uniform `u_i < 1 − p`); from a
/// torch-exact one, as PyTorch's CPU `bernoulli_(1 − p)` draws it (a 53-bit
/// uniform from two words per element, kept when `u < 1 − p`), then
/// `x · (keep / (1 − p))` in `float`, so the values are PyTorch's. `p = 0` and
/// `p = 1` draw nothing (identity, zeros), as in PyTorch. Backward multiplies
/// the gradient by the same mask.
///
/// ```
/// use nninit::nn::{Dropout, Module};
/// use nninit::{Generator, Tensor};
///
/// let mut d = Dropout::new(0.3).unwrap();
/// assert_eq!(d.to_string(), "Dropout(p=0.3, inplace=False)");
/// let x = Tensor::ones(&[1000]).unwrap();
/// assert_eq!(d.forward(&x).unwrap(), x); // inference mode
/// d.train(true);
/// let y = d.forward_with(&x, Some(&mut Generator::new(0))).unwrap();
/// let kept = y.as_slice().iter().filter(|&&v| v != 0.0).count();
/// assert!((600..800).contains(&kept));
/// assert!(Dropout::new(1.5).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Dropout {
    p: f64,
    training: bool,
    /// The scale (`1/(1 − p)` or 0) of each element, per training forward.
    masks: Vec<Tensor>,
}

impl Dropout {
    /// `Dropout(p)`.
    ///
    /// # Errors
    /// [`Error::DropoutP`] unless `0 <= p <= 1`.
    pub fn new(p: f64) -> Result<Dropout> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::DropoutP { p });
        }
        Ok(Dropout {
            p,
            training: false,
            masks: Vec::new(),
        })
    }

    /// The probability of zeroing an element.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// [`forward`](Module::forward) drawing the mask from `generator` (the
    /// global generator if `None`).
    ///
    /// # Errors
    /// None beyond allocation; the `Result` matches `forward`.
    pub fn forward_with(
        &mut self,
        input: &Tensor,
        generator: Option<&mut Generator>,
    ) -> Result<Tensor> {
        if !self.training || self.p == 0.0 || input.is_empty() {
            if self.training {
                self.masks.push(Tensor::ones(input.shape())?);
            }
            return Ok(input.clone());
        }
        let mut mask = Tensor::zeros(input.shape())?;
        if self.p < 1.0 {
            let keep = 1.0 - self.p;
            // PyTorch: `noise.div_(1 - p)` on a float tensor of 0s and 1s.
            let scale = 1.0f32 / keep as f32;
            with_source(generator, |source| match source {
                Source::Counter(counter) => {
                    let unit = Uniform::new(0.0, 1.0).expect("[0, 1) is a valid range");
                    unit.fill_at(counter.take(), 0, mask.as_mut_slice());
                    for m in mask.as_mut_slice() {
                        *m = if f64::from(*m) < keep { scale } else { 0.0 };
                    }
                }
                Source::Torch(g) => {
                    for m in mask.as_mut_slice() {
                        let u = (g.random64() & ((1 << 53) - 1)) as f64 / (1u64 << 53) as f64;
                        *m = if u < keep { scale } else { 0.0 };
                    }
                }
            });
        }
        let mut out = input.clone();
        for (o, &m) in out.as_mut_slice().iter_mut().zip(mask.as_slice()) {
            *o *= m;
        }
        self.masks.push(mask);
        Ok(out)
    }
}

impl Module for Dropout {
    fn type_name(&self) -> &'static str {
        "Dropout"
    }

    fn extra_repr(&self) -> String {
        format!("p={}, inplace=False", super::norm::python_float(self.p))
    }

    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        self.forward_with(input, None)
    }

    fn backward(&mut self, grad_output: &Tensor) -> Result<Tensor> {
        let mask = self.masks.pop().ok_or(Error::BackwardBeforeForward {
            module: "Dropout".to_string(),
        })?;
        check_grad_shape("grad_output of Dropout", mask.shape(), grad_output.shape())?;
        let mut dx = grad_output.clone();
        for (d, &m) in dx.as_mut_slice().iter_mut().zip(mask.as_slice()) {
            *d *= m;
        }
        Ok(dx)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        if !training {
            self.masks.clear();
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

super::display_as_module!(Dropout);
