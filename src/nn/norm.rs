//! Normalization layers: [`BatchNorm1d`], [`BatchNorm2d`], [`LayerNorm`].
//!
//! Statistics are accumulated in `f64` (PyTorch accumulates in `float` with
//! its own order), so outputs agree with PyTorch's to rounding.

use std::mem::MaybeUninit;

use super::{Buffer, Module, Parameter, check_grad_shape, meta};
use crate::error::{Error, Result};
use crate::tensor::{IntTensor, Tensor};

/// The options of a batch normalization, with PyTorch's defaults
/// (`eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
/// bias=True`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormOptions {
    /// Added to the variance before the square root.
    pub eps: f64,
    /// The running statistics' update weight; `None` for a cumulative
    /// average (`1 / num_batches_tracked`).
    pub momentum: Option<f64>,
    /// Whether there are a learnable `weight` (and `bias`).
    pub affine: bool,
    /// Whether the layer keeps `running_mean`, `running_var` and
    /// `num_batches_tracked` (and uses them in inference mode).
    pub track_running_stats: bool,
    /// Whether an affine layer has a `bias`.
    pub bias: bool,
}

impl Default for BatchNormOptions {
    fn default() -> Self {
        BatchNormOptions {
            eps: 1e-5,
            momentum: Some(0.1),
            affine: true,
            track_running_stats: true,
            bias: true,
        }
    }
}

/// Batch normalization over the channels of `[N, C]` or `[N, C, L]` inputs
/// ([`BatchNorm1d`], `D = 1`) or `[N, C, H, W]` ([`BatchNorm2d`], `D = 2`):
/// PyTorch's `nn.BatchNorm1d` / `nn.BatchNorm2d`.
///
/// Parameters `weight` (ones) and `bias` (zeros), `[C]`; buffers
/// `running_mean` (zeros), `running_var` (ones) and `num_batches_tracked`
/// (an `int64` 0-d tensor, saved as `I64`), in that order. No random draws.
///
/// **Training mode** ([`Module::train`]): normalizes with the batch's mean
/// and biased variance, and updates `running_mean` and `running_var` with
/// `momentum` (the unbiased variance, as PyTorch) and counts the batch.
/// **Inference mode** (the initial state, unlike PyTorch's `nn.Module`):
/// normalizes with the running statistics (or the batch's, without running
/// statistics). As for every module of this crate, a forward records for
/// backward in training mode only.
///
/// ```
/// use nninit::nn::{BatchNorm2d, Module};
/// use nninit::Tensor;
///
/// let mut bn = BatchNorm2d::new(64).unwrap();
/// assert_eq!(
///     bn.to_string(),
///     "BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
/// );
/// let names: Vec<String> = bn.state_dict().keys().map(String::from).collect();
/// assert_eq!(names, ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]);
/// bn.train(true);
/// bn.forward(&Tensor::rand(&[2, 64, 3, 3], None).unwrap()).unwrap();
/// assert_eq!(bn.num_batches_tracked(), Some(1));
/// ```
#[derive(Debug, Clone)]
pub struct BatchNorm<const D: usize> {
    /// `[C]`, ones; `None` unless affine.
    pub weight: Option<Parameter>,
    /// `[C]`, zeros; `None` unless affine with bias.
    pub bias: Option<Parameter>,
    /// `[C]`, zeros; `None` without running statistics.
    pub running_mean: Option<Buffer>,
    /// `[C]`, ones.
    pub running_var: Option<Buffer>,
    /// 0-d `int64`.
    pub num_batches_tracked: Option<Buffer>,
    num_features: usize,
    options: BatchNormOptions,
    training: bool,
    records: Vec<NormRecord>,
}

/// PyTorch's `nn.BatchNorm1d`: see [`BatchNorm`].
pub type BatchNorm1d = BatchNorm<1>;
/// PyTorch's `nn.BatchNorm2d`: see [`BatchNorm`].
pub type BatchNorm2d = BatchNorm<2>;

/// What a backward needs from one forward of a normalization.
#[derive(Debug, Clone)]
struct NormRecord {
    /// The normalized input `x̂`, in the input's layout.
    xhat: Tensor,
    /// `1/√(var + eps)` per group of normalized values (the batch's
    /// statistics: a forward records only in training mode, where
    /// BatchNorm uses them).
    inv_std: Vec<f64>,
}

impl<const D: usize> BatchNorm<D> {
    /// `BatchNormNd(num_features)` with the default options.
    ///
    /// # Errors
    /// As [`BatchNorm::with_options`].
    pub fn new(num_features: usize) -> Result<BatchNorm<D>> {
        BatchNorm::with_options(num_features, BatchNormOptions::default())
    }

    /// `BatchNormNd(num_features, eps, momentum, affine, track_running_stats, bias=...)`.
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] for a negative or non-finite `eps` or
    /// `momentum`.
    pub fn with_options(num_features: usize, options: BatchNormOptions) -> Result<BatchNorm<D>> {
        let check = |name: &'static str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(Error::Hyperparameter { name, value: v })
            }
        };
        check("eps", options.eps)?;
        if let Some(m) = options.momentum {
            check("momentum", m)?;
        }
        let shape = [num_features];
        let weight = options
            .affine
            .then(|| meta::constant_parameter(&shape, 1.0))
            .transpose()?;
        let bias = (options.affine && options.bias)
            .then(|| meta::constant_parameter(&shape, 0.0))
            .transpose()?;
        let (mean, var, count) = if options.track_running_stats {
            (
                Some(meta::constant_buffer(&shape, 0.0)?),
                Some(meta::constant_buffer(&shape, 1.0)?),
                Some(Buffer::new_i64(IntTensor::scalar(0))),
            )
        } else {
            (None, None, None)
        };
        Ok(BatchNorm {
            weight,
            bias,
            running_mean: mean,
            running_var: var,
            num_batches_tracked: count,
            num_features,
            options,
            training: false,
            records: Vec::new(),
        })
    }

    /// `num_features`.
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// The options.
    pub fn options(&self) -> BatchNormOptions {
        self.options
    }

    /// Batches counted in training mode (`None` without running statistics).
    pub fn num_batches_tracked(&self) -> Option<i64> {
        self.num_batches_tracked
            .as_ref()
            .and_then(|b| b.value().as_i64().map(|t| t.as_slice()[0]))
    }

    /// `(N, C, S)` of `shape`, checked.
    fn layout(&self, shape: &[usize]) -> Result<(usize, usize, usize)> {
        let ok = match D {
            1 => shape.len() == 2 || shape.len() == 3,
            _ => shape.len() == 4,
        };
        if !ok {
            return Err(Error::NormInputDims {
                expected: if D == 1 { "2D or 3D" } else { "4D" },
                got: shape.len(),
            });
        }
        if shape[1] != self.num_features {
            return Err(Error::NormFeatures {
                got: shape[1],
                expected: self.num_features,
            });
        }
        Ok((shape[0], shape[1], shape[2..].iter().product()))
    }
}

impl<const D: usize> Module for BatchNorm<D> {
    fn type_name(&self) -> &'static str {
        match D {
            1 => "BatchNorm1d",
            _ => "BatchNorm2d",
        }
    }

    fn extra_repr(&self) -> String {
        let o = &self.options;
        let py = |b: bool| if b { "True" } else { "False" };
        format!(
            "{}, eps={}, momentum={}, affine={}, bias={}, track_running_stats={}",
            self.num_features,
            python_float(o.eps),
            o.momentum.map_or("None".to_string(), python_float),
            py(o.affine),
            py(self.bias.is_some()),
            py(o.track_running_stats)
        )
    }

    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        let (n, c, s) = self.layout(input.shape())?;
        let m = n * s;
        // PyTorch: batch statistics in training mode, or always without
        // running statistics.
        let batch_stats = self.training || self.running_mean.is_none();
        if batch_stats && m <= 1 && self.training {
            return Err(Error::SingleValuePerChannel {
                shape: input.shape().to_vec(),
            });
        }
        let x = input.as_slice();
        let at = |i: usize, ch: usize, j: usize| (i * c + ch) * s + j;
        let (mean, var): (Vec<f64>, Vec<f64>) = if batch_stats {
            (0..c)
                .map(|ch| {
                    let mut sum = 0.0f64;
                    for i in 0..n {
                        for j in 0..s {
                            sum += f64::from(x[at(i, ch, j)]);
                        }
                    }
                    let mean = sum / m as f64;
                    let mut sq = 0.0f64;
                    for i in 0..n {
                        for j in 0..s {
                            let d = f64::from(x[at(i, ch, j)]) - mean;
                            sq += d * d;
                        }
                    }
                    (mean, sq / m as f64)
                })
                .unzip()
        } else {
            let rm = self.running_mean.as_ref().expect("checked").data()?;
            let rv = self.running_var.as_ref().expect("checked").data()?;
            (
                rm.as_slice().iter().map(|&v| f64::from(v)).collect(),
                rv.as_slice().iter().map(|&v| f64::from(v)).collect(),
            )
        };
        if self.training
            && let (Some(rm), Some(rv), Some(count)) = (
                &self.running_mean,
                &self.running_var,
                &self.num_batches_tracked,
            )
        {
            let tracked = count.update_i64(|t| {
                t.as_mut_slice()[0] += 1;
                t.as_slice()[0]
            })?;
            let f = self.options.momentum.unwrap_or(1.0 / tracked as f64);
            let unbiased = m as f64 / (m as f64 - 1.0).max(1.0);
            let mut rm = rm.data_mut()?;
            let mut rv = rv.data_mut()?;
            for ch in 0..c {
                let r = &mut rm.as_mut_slice()[ch];
                *r = ((1.0 - f) * f64::from(*r) + f * mean[ch]) as f32;
                let r = &mut rv.as_mut_slice()[ch];
                *r = ((1.0 - f) * f64::from(*r) + f * var[ch] * unbiased) as f32;
            }
        }
        let inv_std: Vec<f64> = var
            .iter()
            .map(|v| 1.0 / (v + self.options.eps).sqrt())
            .collect();
        let weight = self.weight.as_ref().map(|w| w.data()).transpose()?;
        let bias = self.bias.as_ref().map(|b| b.data()).transpose()?;
        // Per (sample, channel), one contiguous run of `s` values, written
        // once: `out = x̂·w + b` with `x̂ = (x − mean)/σ` in f64, and in
        // training `x̂` itself, from the same pass, for the backward.
        let affine: Vec<(f64, f64)> = (0..c)
            .map(|ch| {
                let w = weight.as_ref().map_or(1.0, |w| f64::from(w.as_slice()[ch]));
                let b = bias.as_ref().map_or(0.0, |b| f64::from(b.as_slice()[ch]));
                (w, b)
            })
            .collect();
        let runs = |out: &mut [MaybeUninit<f32>], mut xhat: Option<&mut [MaybeUninit<f32>]>| {
            let run = s.max(1);
            for (r, (out, x)) in out
                .chunks_exact_mut(run)
                .zip(x.chunks_exact(run))
                .enumerate()
            {
                let ch = r % c;
                let (mean, inv, (w, b)) = (mean[ch], inv_std[ch], affine[ch]);
                match xhat.as_deref_mut() {
                    Some(xhat) => {
                        let xhat = &mut xhat[r * run..][..run];
                        for ((o, xh), &x) in out.iter_mut().zip(xhat).zip(x) {
                            let h = (f64::from(x) - mean) * inv;
                            *xh = MaybeUninit::new(h as f32);
                            *o = MaybeUninit::new((h * w + b) as f32);
                        }
                    }
                    None => {
                        for (o, &x) in out.iter_mut().zip(x) {
                            let h = (f64::from(x) - mean) * inv;
                            *o = MaybeUninit::new((h * w + b) as f32);
                        }
                    }
                }
            }
        };
        if !self.training {
            return Tensor::filled_with(input.shape(), |out| runs(out, None));
        }
        let mut out = None;
        let xhat = Tensor::filled_with(input.shape(), |xhat| {
            let made = Tensor::filled_with(input.shape(), |out| runs(out, Some(&mut *xhat)));
            if made.is_err() {
                // `out` could not be allocated, so nothing wrote `x̂`: its
                // slots are written anyway, as `filled_with` requires.
                xhat.fill(MaybeUninit::new(0.0));
            }
            out = Some(made);
        })?;
        let out = out.expect("the fill ran")?;
        self.records.push(NormRecord { xhat, inv_std });
        Ok(out)
    }

    /// Through the batch statistics of the recorded training forward:
    /// `dx = (w/σ)(dy − mean(dy) − x̂·mean(dy·x̂))` per channel,
    /// `dw += Σ dy·x̂`, `db += Σ dy`.
    fn backward(&mut self, grad_output: &Tensor) -> Result<Tensor> {
        let r = self.records.pop().ok_or(Error::BackwardBeforeForward {
            module: self.type_name().to_string(),
        })?;
        check_grad_shape(
            &format!("grad_output of {}", self.type_name()),
            r.xhat.shape(),
            grad_output.shape(),
        )?;
        let (n, c, s) = self.layout(r.xhat.shape())?;
        let m = (n * s) as f64;
        let at = |i: usize, ch: usize, j: usize| (i * c + ch) * s + j;
        let (dy, xh) = (grad_output.as_slice(), r.xhat.as_slice());
        let weight = self.weight.as_ref().map(|w| w.data()).transpose()?;
        let mut dx = vec![0.0f32; dy.len()];
        let mut dw = vec![0.0f32; c];
        let mut db = vec![0.0f32; c];
        for ch in 0..c {
            let (mut sum_dy, mut sum_dy_xh) = (0.0f64, 0.0f64);
            for i in 0..n {
                for j in 0..s {
                    let k = at(i, ch, j);
                    sum_dy += f64::from(dy[k]);
                    sum_dy_xh += f64::from(dy[k]) * f64::from(xh[k]);
                }
            }
            dw[ch] = sum_dy_xh as f32;
            db[ch] = sum_dy as f32;
            let w = weight.as_ref().map_or(1.0, |w| f64::from(w.as_slice()[ch]));
            let scale = w * r.inv_std[ch];
            for i in 0..n {
                for j in 0..s {
                    let k = at(i, ch, j);
                    let g = f64::from(dy[k]);
                    dx[k] = (scale * (g - sum_dy / m - f64::from(xh[k]) * sum_dy_xh / m)) as f32;
                }
            }
        }
        drop(weight);
        if let Some(w) = &self.weight {
            w.accumulate_grad(&Tensor::from_vec(dw, &[c])?)?;
        }
        if let Some(b) = &self.bias {
            b.accumulate_grad(&Tensor::from_vec(db, &[c])?)?;
        }
        Tensor::from_vec(dx, r.xhat.shape())
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

    fn own_parameters(&self) -> Vec<(&str, &Parameter)> {
        let mut v = Vec::new();
        if let Some(w) = &self.weight {
            v.push(("weight", w));
        }
        if let Some(b) = &self.bias {
            v.push(("bias", b));
        }
        v
    }

    fn own_buffers(&self) -> Vec<(&str, &Buffer)> {
        let mut v = Vec::new();
        if let (Some(m), Some(var), Some(n)) = (
            &self.running_mean,
            &self.running_var,
            &self.num_batches_tracked,
        ) {
            v.push(("running_mean", m));
            v.push(("running_var", var));
            v.push(("num_batches_tracked", n));
        }
        v
    }
}

/// Python's `str(float)`: `1e-05`, `0.1`, `1.0`.
pub(crate) fn python_float(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e16 {
        return format!("{v:.1}");
    }
    // Python uses the shortest repr; scientific below 1e-4 or from 1e16.
    let shortest = format!("{v}");
    if v.abs() >= 1e-4 && v.abs() < 1e16 {
        return shortest;
    }
    let e = format!("{v:e}");
    let (mantissa, exp) = e.split_once('e').expect("`{:e}` has an exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    format!(
        "{mantissa}e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}

/// Layer normalization over the trailing `normalized_shape` dimensions:
/// PyTorch's `nn.LayerNorm(normalized_shape, eps=1e-5,
/// elementwise_affine=True, bias=True)`.
///
/// Parameters `weight` (ones) and `bias` (zeros) of `normalized_shape`
/// when `elementwise_affine`. Each group of trailing values is normalized
/// with its mean and biased variance; training and inference mode compute
/// the same. Backward gives the input's and the parameters' gradients.
///
/// ```
/// use nninit::nn::{LayerNorm, Module};
/// use nninit::Tensor;
///
/// let mut ln = LayerNorm::new(&[10]).unwrap();
/// assert_eq!(ln.to_string(), "LayerNorm((10,), eps=1e-05, elementwise_affine=True, bias=True)");
/// let y = ln.forward(&Tensor::rand(&[2, 10], None).unwrap()).unwrap();
/// assert!(y.row(0).unwrap().iter().sum::<f32>().abs() < 1e-5);
/// ```
#[derive(Debug, Clone)]
pub struct LayerNorm {
    /// `normalized_shape`, ones; `None` unless `elementwise_affine`.
    pub weight: Option<Parameter>,
    /// `normalized_shape`, zeros; `None` unless affine with bias.
    pub bias: Option<Parameter>,
    normalized_shape: Vec<usize>,
    eps: f64,
    training: bool,
    records: Vec<NormRecord>,
}

impl LayerNorm {
    /// `LayerNorm(normalized_shape)`.
    ///
    /// # Errors
    /// As [`LayerNorm::with_options`].
    pub fn new(normalized_shape: &[usize]) -> Result<LayerNorm> {
        LayerNorm::with_options(normalized_shape, 1e-5, true, true)
    }

    /// `LayerNorm(normalized_shape, eps, elementwise_affine, bias)`.
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] for a negative or non-finite `eps`;
    /// [`Error::ShapeOverflow`] for impossible shapes.
    pub fn with_options(
        normalized_shape: &[usize],
        eps: f64,
        elementwise_affine: bool,
        bias: bool,
    ) -> Result<LayerNorm> {
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(Error::Hyperparameter {
                name: "eps",
                value: eps,
            });
        }
        let weight = elementwise_affine
            .then(|| meta::constant_parameter(normalized_shape, 1.0))
            .transpose()?;
        let b = (elementwise_affine && bias)
            .then(|| meta::constant_parameter(normalized_shape, 0.0))
            .transpose()?;
        Ok(LayerNorm {
            weight,
            bias: b,
            normalized_shape: normalized_shape.to_vec(),
            eps,
            training: false,
            records: Vec::new(),
        })
    }

    /// `normalized_shape`.
    pub fn normalized_shape(&self) -> &[usize] {
        &self.normalized_shape
    }

    /// Groups and their size for `shape`, checked.
    fn layout(&self, shape: &[usize]) -> Result<(usize, usize)> {
        let k = self.normalized_shape.len();
        if shape.len() < k || shape[shape.len() - k..] != self.normalized_shape[..] {
            return Err(Error::LayerNormShape {
                normalized: self.normalized_shape.clone(),
                input: shape.to_vec(),
            });
        }
        let size: usize = self.normalized_shape.iter().product();
        Ok((shape[..shape.len() - k].iter().product(), size))
    }
}

impl Module for LayerNorm {
    fn type_name(&self) -> &'static str {
        "LayerNorm"
    }

    fn extra_repr(&self) -> String {
        let dims: Vec<String> = self.normalized_shape.iter().map(usize::to_string).collect();
        let shape = if dims.len() == 1 {
            format!("({},)", dims[0])
        } else {
            format!("({})", dims.join(", "))
        };
        let py = |b: bool| if b { "True" } else { "False" };
        format!(
            "{shape}, eps={}, elementwise_affine={}, bias={}",
            python_float(self.eps),
            py(self.weight.is_some()),
            py(self.bias.is_some())
        )
    }

    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        let (groups, size) = self.layout(input.shape())?;
        let weight = self.weight.as_ref().map(|w| w.data()).transpose()?;
        let bias = self.bias.as_ref().map(|b| b.data()).transpose()?;
        // `x̂` is kept only for a training backward.
        let mut xhat = self.training.then(|| input.clone());
        let mut out = input.clone();
        let mut inv_std = Vec::with_capacity(groups);
        for gi in 0..groups {
            let row = &input.as_slice()[gi * size..(gi + 1) * size];
            let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / size.max(1) as f64;
            let var = row
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / size.max(1) as f64;
            let inv = 1.0 / (var + self.eps).sqrt();
            inv_std.push(inv);
            for (k, &v) in row.iter().enumerate() {
                let h = (f64::from(v) - mean) * inv;
                let w = weight.as_ref().map_or(1.0, |w| f64::from(w.as_slice()[k]));
                let b = bias.as_ref().map_or(0.0, |b| f64::from(b.as_slice()[k]));
                if let Some(xhat) = &mut xhat {
                    xhat.as_mut_slice()[gi * size + k] = h as f32;
                }
                out.as_mut_slice()[gi * size + k] = (h * w + b) as f32;
            }
        }
        if let Some(xhat) = xhat {
            self.records.push(NormRecord { xhat, inv_std });
        }
        Ok(out)
    }

    /// Per group, with `g = dy·w`: `dx = (g − mean(g) − x̂·mean(g·x̂))/σ`;
    /// `dw += Σ dy·x̂`, `db += Σ dy` over the groups.
    fn backward(&mut self, grad_output: &Tensor) -> Result<Tensor> {
        let r = self.records.pop().ok_or(Error::BackwardBeforeForward {
            module: "LayerNorm".to_string(),
        })?;
        check_grad_shape(
            "grad_output of LayerNorm",
            r.xhat.shape(),
            grad_output.shape(),
        )?;
        let (groups, size) = self.layout(r.xhat.shape())?;
        let weight = self.weight.as_ref().map(|w| w.data()).transpose()?;
        let (dy, xh) = (grad_output.as_slice(), r.xhat.as_slice());
        let mut dx = vec![0.0f32; dy.len()];
        let mut dw = vec![0.0f64; size];
        let mut db = vec![0.0f64; size];
        for gi in 0..groups {
            let (mut sum_g, mut sum_g_xh) = (0.0f64, 0.0f64);
            for k in 0..size {
                let at = gi * size + k;
                let w = weight.as_ref().map_or(1.0, |w| f64::from(w.as_slice()[k]));
                let g = f64::from(dy[at]) * w;
                sum_g += g;
                sum_g_xh += g * f64::from(xh[at]);
                dw[k] += f64::from(dy[at]) * f64::from(xh[at]);
                db[k] += f64::from(dy[at]);
            }
            let m = size as f64;
            for k in 0..size {
                let at = gi * size + k;
                let w = weight.as_ref().map_or(1.0, |w| f64::from(w.as_slice()[k]));
                let g = f64::from(dy[at]) * w;
                dx[at] =
                    (r.inv_std[gi] * (g - sum_g / m - f64::from(xh[at]) * sum_g_xh / m)) as f32;
            }
        }
        drop(weight);
        let shape = self.normalized_shape.clone();
        let to_tensor =
            |v: Vec<f64>| Tensor::from_vec(v.into_iter().map(|x| x as f32).collect(), &shape);
        if let Some(w) = &self.weight {
            w.accumulate_grad(&to_tensor(dw)?)?;
        }
        if let Some(b) = &self.bias {
            b.accumulate_grad(&to_tensor(db)?)?;
        }
        Tensor::from_vec(dx, r.xhat.shape())
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

    fn own_parameters(&self) -> Vec<(&str, &Parameter)> {
        let mut v = Vec::new();
        if let Some(w) = &self.weight {
            v.push(("weight", w));
        }
        if let Some(b) = &self.bias {
            v.push(("bias", b));
        }
        v
    }
}

impl<const D: usize> std::fmt::Display for BatchNorm<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&super::repr(self))
    }
}

impl std::fmt::Display for LayerNorm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&super::repr(self))
    }
}

#[cfg(test)]
mod tests {
    use super::python_float;

    #[test]
    fn floats_print_as_python() {
        for (v, s) in [
            (1e-5, "1e-05"),
            (0.1, "0.1"),
            (1.0, "1.0"),
            (0.001, "0.001"),
            (1e-3, "0.001"),
            (1.5e-7, "1.5e-07"),
            (0.0001, "0.0001"),
        ] {
            assert_eq!(python_float(v), s);
        }
    }
}
