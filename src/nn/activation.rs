//! Activation functions as modules.

use std::mem::MaybeUninit;

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
    /// Printed as `ReLU(inplace=True)` (PyTorch's in-place flag; the values
    /// are the same either way).
    inplace: bool,
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

    /// PyTorch's `ReLU(inplace=True)`, as torchvision's models build it: the
    /// same values (this crate's layers always return a new tensor); it
    /// prints as `ReLU(inplace=True)`.
    pub fn inplace() -> ReLU {
        ReLU {
            inplace: true,
            ..ReLU::default()
        }
    }
}

impl Module for ReLU {
    fn type_name(&self) -> &'static str {
        "ReLU"
    }

    fn extra_repr(&self) -> String {
        if self.inplace {
            "inplace=True".to_string()
        } else {
            String::new()
        }
    }

    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        let out = Tensor::filled_with(input.shape(), |slots| {
            for (o, &x) in slots.iter_mut().zip(input.as_slice()) {
                // `x < 0` is false for NaN (and −0), which pass through.
                *o = MaybeUninit::new(if x < 0.0 { 0.0 } else { x });
            }
        })?;
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

/// `value` applied to every element of `input` (in f64, rounded once).
fn pointwise_forward(input: &Tensor, value: impl Fn(f64) -> f64) -> Tensor {
    let mut out = input.clone();
    for v in out.as_mut_slice() {
        *v = value(f64::from(*v)) as f32;
    }
    out
}

/// The backward of a pointwise activation `module` whose saved input is
/// `x`: `grad_output · derivative(x)` element by element.
fn pointwise_backward(
    x: Option<Tensor>,
    module: &str,
    grad_output: &Tensor,
    derivative: impl Fn(f64) -> f64,
) -> Result<Tensor> {
    let x = x.ok_or_else(|| Error::BackwardBeforeForward {
        module: module.to_string(),
    })?;
    check_grad_shape(
        &format!("grad_output of {module}"),
        x.shape(),
        grad_output.shape(),
    )?;
    let mut dx = grad_output.clone();
    for (d, &x) in dx.as_mut_slice().iter_mut().zip(x.as_slice()) {
        *d = (f64::from(*d) * derivative(f64::from(x))) as f32;
    }
    Ok(dx)
}

/// An elementwise activation `y = f(x)` whose backward is `dx = dy · f'(x)`
/// (computed in `f64` from the recorded input).
macro_rules! elementwise {
    ($(#[$doc:meta])* $name:ident, $py:literal, |$x:ident, $s:ident| $f:expr, |$dx:ident, $ds:ident| $df:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default)]
        pub struct $name {
            training: bool,
            inputs: Vec<Tensor>,
        }

        impl $name {
            /// The activation (in inference mode).
            pub fn new() -> $name {
                $name::default()
            }

            #[inline]
            fn value(&self, $x: f64) -> f64 {
                let $s = self;
                let _ = $s;
                $f
            }

            #[inline]
            fn derivative(&self, $dx: f64) -> f64 {
                let $ds = self;
                let _ = $ds;
                $df
            }
        }

        impl Module for $name {
            fn type_name(&self) -> &'static str {
                $py
            }

            fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
                let this = &*self;
                let out = pointwise_forward(input, |x| this.value(x));
                if self.training {
                    self.inputs.push(input.clone());
                }
                Ok(out)
            }

            fn backward(&mut self, grad_output: &Tensor) -> Result<Tensor> {
                let x = self.inputs.pop();
                pointwise_backward(x, $py, grad_output, |x| self.derivative(x))
            }

            fn set_training(&mut self, training: bool) {
                self.training = training;
                if !training {
                    self.inputs.clear();
                }
            }

            fn is_training(&self) -> bool {
                self.training
            }
        }
    };
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

elementwise!(
    /// `tanh(x)`: PyTorch's `nn.Tanh`.
    ///
    /// ```
    /// use nninit::nn::{Module, Tanh};
    /// assert_eq!(Tanh::new().to_string(), "Tanh()");
    /// ```
    Tanh, "Tanh", |x, _s| x.tanh(), |x, _s| 1.0 - x.tanh().powi(2)
);

elementwise!(
    /// `1 / (1 + e⁻ˣ)`: PyTorch's `nn.Sigmoid`.
    Sigmoid, "Sigmoid", |x, _s| sigmoid(x), |x, _s| sigmoid(x) * (1.0 - sigmoid(x))
);

elementwise!(
    /// `x · σ(x)`: PyTorch's `nn.SiLU`.
    SiLU, "SiLU", |x, _s| x * sigmoid(x), |x, _s| sigmoid(x) * (1.0 + x * (1.0 - sigmoid(x)))
);

/// PyTorch's `nn.LeakyReLU(negative_slope=0.01)`: `x` for `x > 0`, else
/// `negative_slope · x`.
///
/// ```
/// use nninit::nn::{LeakyReLU, Module};
/// assert_eq!(LeakyReLU::new().to_string(), "LeakyReLU(negative_slope=0.01)");
/// assert_eq!(LeakyReLU::with_slope(0.2).to_string(), "LeakyReLU(negative_slope=0.2)");
/// ```
#[derive(Debug, Clone)]
pub struct LeakyReLU {
    negative_slope: f64,
    training: bool,
    inputs: Vec<Tensor>,
}

impl Default for LeakyReLU {
    fn default() -> Self {
        LeakyReLU::with_slope(0.01)
    }
}

impl LeakyReLU {
    /// With the default slope 0.01.
    pub fn new() -> LeakyReLU {
        LeakyReLU::default()
    }

    /// With `negative_slope`.
    pub fn with_slope(negative_slope: f64) -> LeakyReLU {
        LeakyReLU {
            negative_slope,
            training: false,
            inputs: Vec::new(),
        }
    }

    /// The slope for negative inputs.
    pub fn negative_slope(&self) -> f64 {
        self.negative_slope
    }
}

impl Module for LeakyReLU {
    fn type_name(&self) -> &'static str {
        "LeakyReLU"
    }

    fn extra_repr(&self) -> String {
        format!(
            "negative_slope={}",
            super::norm::python_float(self.negative_slope)
        )
    }

    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        let slope = self.negative_slope as f32;
        let mut out = input.clone();
        for v in out.as_mut_slice() {
            if *v <= 0.0 {
                *v *= slope;
            }
        }
        if self.training {
            self.inputs.push(input.clone());
        }
        Ok(out)
    }

    fn backward(&mut self, grad_output: &Tensor) -> Result<Tensor> {
        let x = self.inputs.pop().ok_or(Error::BackwardBeforeForward {
            module: "LeakyReLU".to_string(),
        })?;
        check_grad_shape("grad_output of LeakyReLU", x.shape(), grad_output.shape())?;
        let slope = self.negative_slope as f32;
        let mut dx = grad_output.clone();
        for (d, &x) in dx.as_mut_slice().iter_mut().zip(x.as_slice()) {
            // PyTorch: `x > 0 ? dy : dy * slope` (NaN takes the slope).
            if x.is_nan() || x <= 0.0 {
                *d *= slope;
            }
        }
        Ok(dx)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        if !training {
            self.inputs.clear();
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

/// How [`GELU`] computes `Φ(x)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Approximate {
    /// `Φ(x) = (1 + erf(x/√2))/2`, exactly.
    #[default]
    None,
    /// `(1 + tanh(√(2/π)(x + 0.044715x³)))/2`.
    Tanh,
}

impl std::str::FromStr for Approximate {
    type Err = Error;

    /// `none` or `tanh`.
    fn from_str(s: &str) -> Result<Approximate> {
        match s {
            "none" => Ok(Approximate::None),
            "tanh" => Ok(Approximate::Tanh),
            other => Err(Error::GeluApproximate {
                approximate: other.to_string(),
            }),
        }
    }
}

/// `x · Φ(x)`: PyTorch's `nn.GELU(approximate='none')` (or `'tanh'`).
///
/// ```
/// use nninit::nn::{Approximate, GELU, Module};
/// assert_eq!(GELU::new().to_string(), "GELU(approximate='none')");
/// assert_eq!(GELU::with(Approximate::Tanh).to_string(), "GELU(approximate='tanh')");
/// assert!("fast".parse::<Approximate>().is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct GELU {
    approximate: Approximate,
    training: bool,
    inputs: Vec<Tensor>,
}

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_CUBIC: f64 = 0.044_715;

impl GELU {
    /// The exact GELU.
    pub fn new() -> GELU {
        GELU::default()
    }

    /// With the given approximation.
    pub fn with(approximate: Approximate) -> GELU {
        GELU {
            approximate,
            ..GELU::default()
        }
    }

    fn value(&self, x: f64) -> f64 {
        match self.approximate {
            Approximate::None => 0.5 * x * crate::special::erfc(-x / std::f64::consts::SQRT_2),
            Approximate::Tanh => {
                0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x)).tanh())
            }
        }
    }

    fn derivative(&self, x: f64) -> f64 {
        match self.approximate {
            Approximate::None => {
                let cdf = 0.5 * crate::special::erfc(-x / std::f64::consts::SQRT_2);
                let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
                cdf + x * pdf
            }
            Approximate::Tanh => {
                let inner = SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x);
                let t = inner.tanh();
                0.5 * (1.0 + t)
                    + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * x * x)
            }
        }
    }
}

impl Module for GELU {
    fn type_name(&self) -> &'static str {
        "GELU"
    }

    fn extra_repr(&self) -> String {
        match self.approximate {
            Approximate::None => "approximate='none'".to_string(),
            Approximate::Tanh => "approximate='tanh'".to_string(),
        }
    }

    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        let this = &*self;
        let out = pointwise_forward(input, |x| this.value(x));
        if self.training {
            self.inputs.push(input.clone());
        }
        Ok(out)
    }

    fn backward(&mut self, grad_output: &Tensor) -> Result<Tensor> {
        let x = self.inputs.pop();
        pointwise_backward(x, "GELU", grad_output, |x| self.derivative(x))
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        if !training {
            self.inputs.clear();
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

/// `exp(x) / Σ exp(x)` along `dim`: PyTorch's `nn.Softmax(dim)`. `dim` may
/// be negative (from the end); `None` is PyTorch's legacy implicit choice
/// (0 for 0-, 1- and 3-D inputs, else 1).
///
/// ```
/// use nninit::nn::{Module, Softmax};
/// use nninit::Tensor;
///
/// let mut s = Softmax::new(Some(1));
/// assert_eq!(s.to_string(), "Softmax(dim=1)");
/// let y = s.forward(&Tensor::zeros(&[2, 4]).unwrap()).unwrap();
/// assert_eq!(y.as_slice(), &[0.25; 8]);
/// assert_eq!(
///     s.forward(&Tensor::zeros(&[3]).unwrap()).unwrap_err().to_string(),
///     "Dimension out of range (expected to be in range of [-1, 0], but got 1)"
/// );
/// ```
#[derive(Debug, Clone, Default)]
pub struct Softmax {
    dim: Option<isize>,
    training: bool,
    /// Outputs (`dx = y·(dy − Σ dy·y)` along `dim`) and the dimension used.
    records: Vec<(Tensor, usize)>,
}

impl Softmax {
    /// `Softmax(dim)`.
    pub fn new(dim: Option<isize>) -> Softmax {
        Softmax {
            dim,
            ..Softmax::default()
        }
    }

    /// The dimension for an input of `dims` dimensions.
    fn resolve(&self, dims: usize) -> Result<usize> {
        let dim = match self.dim {
            Some(d) => d,
            None if matches!(dims, 0 | 1 | 3) => 0,
            None => 1,
        };
        let n = dims.max(1) as isize;
        if dim < -n || dim >= n {
            return Err(Error::DimOutOfRange { dim, dims });
        }
        Ok(if dim < 0 {
            (dim + n) as usize
        } else {
            dim as usize
        })
    }
}

/// `(outer, size, inner)`: the lanes along `dim` of a row-major `shape`.
fn lanes(shape: &[usize], dim: usize) -> (usize, usize, usize) {
    if shape.is_empty() {
        return (1, 1, 1);
    }
    (
        shape[..dim].iter().product(),
        shape[dim],
        shape[dim + 1..].iter().product(),
    )
}

impl Module for Softmax {
    fn type_name(&self) -> &'static str {
        "Softmax"
    }

    fn extra_repr(&self) -> String {
        match self.dim {
            Some(d) => format!("dim={d}"),
            None => "dim=None".to_string(),
        }
    }

    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        let dim = self.resolve(input.dim())?;
        let (outer, size, inner) = lanes(input.shape(), dim);
        let x = input.as_slice();
        let mut out = input.clone();
        for o in 0..outer {
            for i in 0..inner {
                let at = |k: usize| (o * size + k) * inner + i;
                let max = (0..size)
                    .map(|k| x[at(k)])
                    .fold(f32::NEG_INFINITY, f32::max);
                let sum: f64 = (0..size)
                    .map(|k| (f64::from(x[at(k)]) - f64::from(max)).exp())
                    .sum();
                for k in 0..size {
                    out.as_mut_slice()[at(k)] =
                        ((f64::from(x[at(k)]) - f64::from(max)).exp() / sum) as f32;
                }
            }
        }
        if self.training {
            self.records.push((out.clone(), dim));
        }
        Ok(out)
    }

    fn backward(&mut self, grad_output: &Tensor) -> Result<Tensor> {
        let (y, dim) = self.records.pop().ok_or(Error::BackwardBeforeForward {
            module: "Softmax".to_string(),
        })?;
        check_grad_shape("grad_output of Softmax", y.shape(), grad_output.shape())?;
        let (outer, size, inner) = lanes(y.shape(), dim);
        let (ys, dy) = (y.as_slice(), grad_output.as_slice());
        let mut dx = grad_output.clone();
        for o in 0..outer {
            for i in 0..inner {
                let at = |k: usize| (o * size + k) * inner + i;
                let dot: f64 = (0..size)
                    .map(|k| f64::from(dy[at(k)]) * f64::from(ys[at(k)]))
                    .sum();
                for k in 0..size {
                    dx.as_mut_slice()[at(k)] =
                        (f64::from(ys[at(k)]) * (f64::from(dy[at(k)]) - dot)) as f32;
                }
            }
        }
        Ok(dx)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        if !training {
            self.records.clear();
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

super::display_as_module!(Tanh, Sigmoid, SiLU, LeakyReLU, GELU, Softmax);
