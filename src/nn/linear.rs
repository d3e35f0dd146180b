//! [`Linear`]: `y = x·Wᵀ + b`, eager or lazy.

use super::parameter::{Derived, KEEP_PACKED_FLOATS};
use super::{Module, Parameter, check_grad_shape};
use crate::error::{Error, Result};
use crate::gemm::{self, MatMut, MatRef, PackedB};
use crate::kernels::Kernels;
use crate::rng::Generator;
use crate::tensor::Tensor;

/// A fully connected layer, PyTorch's `nn.Linear`: `y = x·Wᵀ + b` with
/// `weight` of shape `[out_features, in_features]` and `bias` `[out_features]`.
///
/// **Default initialization** (PyTorch's): the weight by
/// `kaiming_uniform_(a = √5)`, which is `U(−1/√in, 1/√in)`, then the bias by
/// `U(−1/√in, 1/√in)` (bound 0 when `in_features == 0`), in that order, from
/// the generator given or the global one: one stream each from a
/// counter-based generator, PyTorch's own numbers from a torch-exact one
/// (`in · out + out` words).
///
/// **Lazy** ([`Linear::lazy`], PyTorch's `LazyLinear`): `in_features` is
/// taken from the last dimension of the first input, and the parameters are
/// created and initialized then (from the global generator, as PyTorch does;
/// [`Linear::initialize_parameters`] takes a generator). Before that they
/// are uninitialized ([`Parameter::data`] is an error) and the layer prints
/// as `LazyLinear(in_features=0, out_features=8, bias=True)`; after, as
/// `Linear(...)`. A later input of another width is an error, as for any
/// `Linear`.
///
/// **Clones share parameters**: `shared.clone()` placed at a second position
/// of a network is a tied layer (see [`nn`](super)).
///
/// ```
/// use nninit::nn::{Linear, Module};
/// use nninit::{Generator, Tensor};
///
/// let mut layer = Linear::with_options(4, 3, true, Some(&mut Generator::new(1))).unwrap();
/// let bound = 1.0 / 2.0; // 1/√4
/// assert!(layer.weight.data().unwrap().as_slice().iter().all(|w| w.abs() <= bound));
/// let y = layer.forward(&Tensor::ones(&[2, 4]).unwrap()).unwrap();
/// assert_eq!(y.shape(), &[2, 3]);
/// assert_eq!(layer.to_string(), "Linear(in_features=4, out_features=3, bias=True)");
///
/// let err = layer.forward(&Tensor::ones(&[2, 5]).unwrap()).unwrap_err();
/// assert_eq!(err.to_string(), "mat1 and mat2 shapes cannot be multiplied (2x5 and 4x3)");
/// ```
#[derive(Debug, Clone)]
pub struct Linear {
    /// `[out_features, in_features]`.
    pub weight: Parameter,
    /// `[out_features]`, or `None` for a layer built without bias.
    pub bias: Option<Parameter>,
    out_features: usize,
    training: bool,
    /// Inputs of the training forwards not yet consumed by a backward.
    inputs: Vec<Tensor>,
    /// `Wᵀ` packed for the GEMM, kept between inference forwards while the
    /// weight is unchanged.
    packed_wt: Derived<PackedB<f32>>,
}

impl Linear {
    /// `Linear(in_features, out_features)` with a bias, initialized from the
    /// global generator.
    ///
    /// # Errors
    /// [`Error::ShapeOverflow`](crate::Error::ShapeOverflow) or
    /// [`Error::OutOfMemory`](crate::Error::OutOfMemory) for impossible sizes.
    pub fn new(in_features: usize, out_features: usize) -> Result<Linear> {
        Linear::with_options(in_features, out_features, true, None)
    }

    /// `Linear(in_features, out_features, bias)`, initialized from
    /// `generator` (the global one if `None`).
    ///
    /// # Errors
    /// As [`Linear::new`].
    pub fn with_options(
        in_features: usize,
        out_features: usize,
        bias: bool,
        generator: Option<&mut Generator>,
    ) -> Result<Linear> {
        let (weight, bias) = default_parameters(in_features, out_features, bias, generator)?;
        Ok(Linear {
            weight,
            bias,
            out_features,
            training: false,
            inputs: Vec::new(),
            packed_wt: Derived::default(),
        })
    }

    /// PyTorch's `LazyLinear(out_features)`: `in_features` is inferred at the
    /// first forward.
    pub fn lazy(out_features: usize) -> Linear {
        Linear::lazy_with_bias(out_features, true)
    }

    /// `LazyLinear(out_features, bias)`.
    pub fn lazy_with_bias(out_features: usize, bias: bool) -> Linear {
        Linear {
            weight: Parameter::uninitialized(),
            bias: bias.then(Parameter::uninitialized),
            out_features,
            training: false,
            inputs: Vec::new(),
            packed_wt: Derived::default(),
        }
    }

    /// `in_features`, or `None` for a lazy layer before its first forward.
    pub fn in_features(&self) -> Option<usize> {
        self.weight.shape().and_then(|s| s.get(1).copied())
    }

    /// `out_features`.
    pub fn out_features(&self) -> usize {
        self.weight
            .shape()
            .and_then(|s| s.first().copied())
            .unwrap_or(self.out_features)
    }

    /// Whether this is a lazy layer that has not seen an input yet.
    pub fn is_lazy(&self) -> bool {
        self.weight.shape().is_none()
    }

    /// Creates and initializes the parameters of a lazy layer for
    /// `in_features`, drawing from `generator` (the global one if `None`),
    /// as PyTorch's `LazyLinear.initialize_parameters` does at the first
    /// forward (which calls this with `None`). A layer that has its
    /// parameters already is left as it is.
    ///
    /// ```
    /// use nninit::nn::{Linear, Module};
    /// use nninit::{Generator, Tensor};
    ///
    /// let mut lazy = Linear::lazy(3);
    /// lazy.initialize_parameters(4, Some(&mut Generator::torch(0))).unwrap();
    /// let eager = Linear::with_options(4, 3, true, Some(&mut Generator::torch(0))).unwrap();
    /// assert_eq!(*lazy.weight.data().unwrap(), *eager.weight.data().unwrap());
    /// ```
    ///
    /// # Errors
    /// As [`Linear::new`].
    pub fn initialize_parameters(
        &self,
        in_features: usize,
        generator: Option<&mut Generator>,
    ) -> Result<()> {
        if !self.is_lazy() {
            return Ok(());
        }
        let (weight, bias) = default_parameters(
            in_features,
            self.out_features,
            self.bias.is_some(),
            generator,
        )?;
        self.weight.adopt(weight);
        if let (Some(p), Some(b)) = (&self.bias, bias) {
            p.adopt(b);
        }
        Ok(())
    }
}

/// PyTorch's `reset_parameters` for `Linear` (the same as a convolution's),
/// allocating and drawing in one pass: weight then bias.
fn default_parameters(
    in_features: usize,
    out_features: usize,
    bias: bool,
    generator: Option<&mut Generator>,
) -> Result<(Parameter, Option<Parameter>)> {
    super::conv::default_parameters(&[out_features, in_features], bias, generator)
}

impl Module for Linear {
    fn type_name(&self) -> &'static str {
        if self.is_lazy() {
            "LazyLinear"
        } else {
            "Linear"
        }
    }

    fn extra_repr(&self) -> String {
        format!(
            "in_features={}, out_features={}, bias={}",
            self.in_features().unwrap_or(0),
            self.out_features(),
            if self.bias.is_some() { "True" } else { "False" }
        )
    }

    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        if self.is_lazy()
            && let Some(&width) = input.shape().last()
        {
            self.initialize_parameters(width, None)?;
        }
        let weight = self.weight.data()?;
        let bias = self.bias.as_ref().map(|b| b.data()).transpose()?;
        let bias = bias.as_deref();
        // In inference mode, a product big enough to be packed uses `Wᵀ`
        // packed once and kept while the weight is unchanged (the same
        // bits as packing it on every call).
        let rows = input.numel() / input.shape().last().copied().unwrap_or(1).max(1);
        let keep = !self.training
            && weight.numel() <= KEEP_PACKED_FLOATS
            && rows.saturating_mul(weight.numel()) > gemm::SMALL_FMAS;
        let out = match weight.shape() {
            &[out_f, in_f] if keep && input.shape().last() == Some(&in_f) => {
                let packed = self.packed_wt.get_or_make(&self.weight, &weight, |w| {
                    let wt = MatRef::row_major(w.as_slice(), out_f, in_f)?.t();
                    Ok(PackedB::new(Kernels::active(), wt))
                })?;
                gemm::linear_prepacked(input, &weight, packed, bias)
            }
            _ => gemm::linear(input, &weight, bias),
        }?;
        if self.training {
            self.inputs.push(input.clone());
        }
        Ok(out)
    }

    /// `dW += dYᵀ·X`, `db += Σ_rows dY`, returns `dX = dY·W`; all products
    /// through [`gemm`](crate::gemm) with transposes as strided views.
    fn backward(&mut self, grad_output: &Tensor) -> Result<Tensor> {
        let x = self.inputs.pop().ok_or(Error::BackwardBeforeForward {
            module: "Linear".to_string(),
        })?;
        let Some([out_f, in_f]) = self
            .weight
            .shape()
            .and_then(|s| <[usize; 2]>::try_from(s).ok())
        else {
            return Err(Error::UninitializedParameter);
        };
        let mut y_shape = x.shape().to_vec();
        *y_shape.last_mut().expect("a Linear input is at least 1-D") = out_f;
        check_grad_shape("grad_output of Linear", &y_shape, grad_output.shape())?;
        let rows: usize = x.shape()[..x.dim() - 1].iter().product();
        let dy = MatRef::row_major(grad_output.as_slice(), rows, out_f)?;
        let xm = MatRef::row_major(x.as_slice(), rows, in_f)?;

        // dX first, under the read lock (the gradient update takes the
        // write lock).
        let mut dx = Tensor::zeros(x.shape())?;
        gemm::gemm(
            1.0,
            dy,
            MatRef::from_tensor(&*self.weight.data()?)?,
            0.0,
            MatMut::row_major(dx.as_mut_slice(), rows, in_f)?,
        )?;
        self.weight.update_grad(&[out_f, in_f], |g| match g {
            Some(acc) => gemm::gemm(1.0, dy.t(), xm, 1.0, MatMut::from_tensor(acc)?),
            None => {
                let mut acc = Tensor::zeros(&[out_f, in_f])?;
                gemm::gemm(1.0, dy.t(), xm, 0.0, MatMut::from_tensor(&mut acc)?)?;
                *g = Some(acc);
                Ok(())
            }
        })?;
        if let Some(b) = &self.bias {
            let mut db = vec![0.0f32; out_f];
            for row in grad_output.as_slice().chunks_exact(out_f.max(1)) {
                for (d, &v) in db.iter_mut().zip(row) {
                    *d += v;
                }
            }
            b.accumulate_grad(&Tensor::from_vec(db, &[out_f])?)?;
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

    fn own_parameters(&self) -> Vec<(&str, &Parameter)> {
        let mut v = vec![("weight", &self.weight)];
        if let Some(b) = &self.bias {
            v.push(("bias", b));
        }
        v
    }
}
