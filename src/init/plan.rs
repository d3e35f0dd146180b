//! What an [`Init`] becomes once its parameters and the shape are known,
//! and the checks that get it there.

use super::Init;
use super::fans::{calculate_gain, check_gain, kaiming_std, xavier_std};
use super::orthogonal::{orthogonal_fill, orthogonal_torch};
use super::sparse::{sparse_fill, sparse_torch};
use crate::distributions::sealed::FillUninit;
use crate::distributions::torch::TruncNormal;
use crate::distributions::{Distribution, Normal, TruncatedNormal, Uniform};
use crate::error::{Error, Result};
use crate::kernels::Kernels;
use crate::kernels::math::as_uninit;
use crate::rng::Stream;
use crate::rng::torch::TorchGenerator;
use crate::tensor::numel_of;

/// What an [`Init`] becomes once its parameters and the shape are known.
#[derive(Debug)]
pub(super) enum Plan {
    /// Every element this value; no random numbers.
    Constant(f32),
    /// Draw from the distribution (one stream).
    Uniform(Uniform),
    /// Draw from the distribution (one stream).
    Normal(Normal),
    /// Draw from the distribution (one stream).
    TruncNormal(TruncatedNormal),
    /// An initializer that needs the whole tensor at once.
    Whole(Whole),
}

/// The plans of the initializers that need the whole tensor (not shardable).
#[derive(Debug)]
pub(super) enum Whole {
    /// Zeros, ones on the diagonal of a `rows × cols` matrix.
    Eye { rows: usize, cols: usize },
    /// Zeros, then ones at the centre taps (`shape` has 3 to 5 dims).
    Dirac { shape: Vec<usize>, groups: usize },
    /// A `rows × cols` semi-orthogonal matrix times `gain`.
    Orthogonal { rows: usize, cols: usize, gain: f64 },
    /// `rows × cols` normal values, then `zeros` zeros per column.
    Sparse {
        rows: usize,
        cols: usize,
        zeros: usize,
        normal: Normal,
    },
}

/// What an [`Init`] becomes for a torch-exact generator.
#[derive(Debug)]
pub(super) enum TorchPlan {
    /// The same plan as for a counter-based generator, sampled with
    /// PyTorch's algorithms.
    Plan(Plan),
    /// PyTorch 2.15's `trunc_normal_` (its own parameter rules).
    TruncNormal(TruncNormal),
}

impl TorchPlan {
    /// Writes every element of `out` (a whole tensor, non-empty), drawing
    /// from `g` as PyTorch does.
    pub(super) fn fill(&self, kernels: Kernels, g: &mut TorchGenerator, out: &mut [f32]) {
        match self {
            TorchPlan::TruncNormal(t) => t.fill(kernels, g, out),
            TorchPlan::Plan(Plan::Whole(w)) => w.fill_torch(kernels, g, out),
            TorchPlan::Plan(p) => p.fill_torch_uninit(kernels, g, as_uninit(out)),
        }
    }

    /// Whether [`fill_uninit`](Self::fill_uninit) can write this plan into
    /// fresh memory (the others need an initialized tensor).
    pub(super) fn writes_uninit(&self) -> bool {
        matches!(
            self,
            TorchPlan::Plan(Plan::Constant(_) | Plan::Uniform(_) | Plan::Normal(_))
        )
    }

    /// [`fill`](Self::fill) into fresh memory, for plans with
    /// [`writes_uninit`](Self::writes_uninit).
    pub(super) fn fill_uninit(
        &self,
        kernels: Kernels,
        g: &mut TorchGenerator,
        out: &mut [std::mem::MaybeUninit<f32>],
    ) {
        match self {
            TorchPlan::Plan(p) if self.writes_uninit() => p.fill_torch_uninit(kernels, g, out),
            _ => unreachable!("Init::tensor fills these plans into an initialized tensor"),
        }
    }
}

impl Plan {
    /// A plan other than [`Plan::Whole`], with PyTorch's samplers.
    fn fill_torch_uninit(
        &self,
        kernels: Kernels,
        g: &mut TorchGenerator,
        out: &mut [std::mem::MaybeUninit<f32>],
    ) {
        match self {
            Plan::Constant(v) => kernels.fill_constant_uninit(out, *v),
            Plan::Uniform(d) => d.fill_torch(kernels, g, out),
            Plan::Normal(d) => d.fill_torch(kernels, g, out),
            Plan::TruncNormal(d) => d.fill_torch(kernels, g, out),
            Plan::Whole(_) => unreachable!("whole-tensor plans fill an initialized tensor"),
        }
    }

    pub(super) fn fill_uninit(
        &self,
        kernels: Kernels,
        stream: Stream,
        out: &mut [std::mem::MaybeUninit<f32>],
    ) {
        use crate::distributions::sealed::FillUninit;
        match self {
            Plan::Constant(v) => kernels.fill_constant_uninit(out, *v),
            Plan::Uniform(d) => d.fill_uninit(kernels, stream, 0, out),
            Plan::Normal(d) => d.fill_uninit(kernels, stream, 0, out),
            Plan::Whole(_) => unreachable!("Init::tensor fills whole-tensor plans in place"),
            Plan::TruncNormal(d) => d.fill_uninit(kernels, stream, 0, out),
        }
    }

    pub(super) fn fill(&self, kernels: Kernels, stream: Stream, offset: u64, out: &mut [f32]) {
        match self {
            Plan::Constant(v) => kernels.fill_constant(out, *v),
            Plan::Uniform(d) => d.fill_with(kernels, stream, offset, out),
            Plan::Normal(d) => d.fill_with(kernels, stream, offset, out),
            Plan::Whole(w) => {
                debug_assert_eq!(offset, 0, "whole-tensor plans are never sharded");
                w.fill(kernels, stream, out);
            }
            Plan::TruncNormal(d) => d.fill_with(kernels, stream, offset, out),
        }
    }
}

impl Whole {
    /// [`fill`](Self::fill) with PyTorch's generator and algorithms.
    fn fill_torch(&self, kernels: Kernels, g: &mut TorchGenerator, out: &mut [f32]) {
        match self {
            Whole::Eye { .. } | Whole::Dirac { .. } => {
                self.fill(kernels, Stream::from_key(0), out);
            }
            Whole::Orthogonal { rows, cols, gain } => {
                orthogonal_torch(kernels, g, *rows, *cols, *gain, out)
            }
            Whole::Sparse {
                rows,
                cols,
                zeros,
                normal,
            } => sparse_torch(kernels, g, *rows, *cols, *zeros, normal, out),
        }
    }

    /// Fills all of `out` (the whole tensor, row-major, non-empty).
    pub(super) fn fill(&self, kernels: Kernels, stream: Stream, out: &mut [f32]) {
        match self {
            Whole::Eye { rows, cols } => {
                kernels.fill_constant(out, 0.0);
                for i in 0..(*rows).min(*cols) {
                    out[i * cols + i] = 1.0;
                }
            }
            Whole::Dirac { shape, groups } => {
                kernels.fill_constant(out, 0.0);
                let out_per_group = shape[0] / groups;
                let min_dim = out_per_group.min(shape[1]);
                // Row-major strides, and the offset of the centre tap.
                let mut strides = vec![1usize; shape.len()];
                for d in (0..shape.len() - 1).rev() {
                    strides[d] = strides[d + 1] * shape[d + 1];
                }
                let centre: usize = (2..shape.len()).map(|d| (shape[d] / 2) * strides[d]).sum();
                for g in 0..*groups {
                    for d in 0..min_dim {
                        out[(g * out_per_group + d) * strides[0] + d * strides[1] + centre] = 1.0;
                    }
                }
            }
            Whole::Orthogonal { rows, cols, gain } => {
                orthogonal_fill(kernels, stream, *rows, *cols, *gain, out)
            }
            Whole::Sparse {
                rows,
                cols,
                zeros,
                normal,
            } => {
                sparse_fill(kernels, stream, *rows, *cols, *zeros, normal, out);
            }
        }
    }
}

impl Init {
    /// The plan for a torch-exact generator, or `None` for an empty tensor
    /// (which draws nothing, as in PyTorch): the parameters are checked as
    /// for [`plan`](Self::plan), except `trunc_normal_`'s, which follow
    /// PyTorch's algorithm ([`TruncNormal::new`]).
    pub(super) fn torch_plan(&self, shape: &[usize]) -> Result<Option<TorchPlan>> {
        let empty = numel_of(shape)? == 0;
        if let Init::TruncNormal { mean, std, a, b } = *self {
            let t = TruncNormal::new(mean, std, a, b)?;
            return Ok((!empty).then_some(TorchPlan::TruncNormal(t)));
        }
        self.check_parameters()?;
        if empty {
            return Ok(None);
        }
        self.plan(shape).map(|p| Some(TorchPlan::Plan(p)))
    }

    /// Checks the parameters that do not depend on the shape.
    pub(super) fn check_parameters(&self) -> Result<()> {
        match *self {
            Init::Uniform { a, b } => Uniform::new(a, b).map(drop),
            Init::Normal { mean, std } => Normal::new(mean, std).map(drop),
            Init::TruncNormal { mean, std, a, b } => {
                TruncatedNormal::new(mean, std, a, b).map(drop)
            }
            Init::Constant { val } => constant_value(val).map(drop),
            Init::XavierUniform { gain } | Init::XavierNormal { gain } => check_gain(gain),
            Init::KaimingUniform {
                a, nonlinearity, ..
            }
            | Init::KaimingNormal {
                a, nonlinearity, ..
            } => calculate_gain(nonlinearity, Some(a)).map(drop),
            Init::Eye => Ok(()),
            Init::Dirac { groups } => {
                if groups == 0 {
                    Err(Error::DiracGroups { groups })
                } else {
                    Ok(())
                }
            }
            Init::Orthogonal { gain } => check_orthogonal_gain(gain),
            Init::Sparse { sparsity, std } => {
                check_sparsity(sparsity)?;
                Normal::new(0.0, std).map(drop)
            }
        }
    }

    /// Turns the parameters and the full shape (non-empty) into a plan.
    pub(super) fn plan(&self, shape: &[usize]) -> Result<Plan> {
        Ok(match *self {
            Init::Uniform { a, b } => Plan::Uniform(Uniform::new(a, b)?),
            Init::Normal { mean, std } => Plan::Normal(Normal::new(mean, std)?),
            Init::TruncNormal { mean, std, a, b } => {
                Plan::TruncNormal(TruncatedNormal::new(mean, std, a, b)?)
            }
            Init::Constant { val } => Plan::Constant(constant_value(val)?),
            Init::XavierUniform { gain } => {
                let bound = 3f64.sqrt() * xavier_std(shape, gain)?;
                Plan::Uniform(Uniform::new(-bound, bound)?)
            }
            Init::XavierNormal { gain } => {
                Plan::Normal(Normal::new(0.0, xavier_std(shape, gain)?)?)
            }
            Init::KaimingUniform {
                a,
                mode,
                nonlinearity,
            } => {
                let bound = 3f64.sqrt() * kaiming_std(shape, a, mode, nonlinearity)?;
                Plan::Uniform(Uniform::new(-bound, bound)?)
            }
            Init::KaimingNormal {
                a,
                mode,
                nonlinearity,
            } => Plan::Normal(Normal::new(
                0.0,
                kaiming_std(shape, a, mode, nonlinearity)?,
            )?),
            Init::Eye => {
                let [rows, cols] = two_dims(shape, "eye_")?;
                Plan::Whole(Whole::Eye { rows, cols })
            }
            Init::Dirac { groups } => {
                if !(3..=5).contains(&shape.len()) {
                    return Err(Error::InitDims {
                        init: "dirac_",
                        supported: "3, 4, or 5",
                        dims: shape.len(),
                    });
                }
                if groups == 0 {
                    return Err(Error::DiracGroups { groups });
                }
                if !shape[0].is_multiple_of(groups) {
                    return Err(Error::DiracDivisible {
                        dim0: shape[0],
                        groups,
                    });
                }
                Plan::Whole(Whole::Dirac {
                    shape: shape.to_vec(),
                    groups,
                })
            }
            Init::Orthogonal { gain } => {
                check_orthogonal_gain(gain)?;
                if shape.len() < 2 {
                    return Err(Error::InitDims {
                        init: "orthogonal_",
                        supported: "2 or more",
                        dims: shape.len(),
                    });
                }
                let rows = shape[0];
                let cols = numel_of(shape)? / rows;
                Plan::Whole(Whole::Orthogonal { rows, cols, gain })
            }
            Init::Sparse { sparsity, std } => {
                check_sparsity(sparsity)?;
                let normal = Normal::new(0.0, std)?;
                let [rows, cols] = two_dims(shape, "sparse_")?;
                // PyTorch: `int(math.ceil(sparsity * rows))`, in f64.
                let zeros = ((sparsity * rows as f64).ceil() as usize).min(rows);
                Plan::Whole(Whole::Sparse {
                    rows,
                    cols,
                    zeros,
                    normal,
                })
            }
        })
    }
}

/// A gain for [`orthogonal_`]: finite, and within `f32` (the values are
/// `gain · q` with `|q| <= 1`, stored as `f32`).
fn check_orthogonal_gain(gain: f64) -> Result<()> {
    if gain.is_finite() && gain.abs() <= f32::MAX as f64 {
        Ok(())
    } else {
        Err(Error::Gain { gain })
    }
}

fn check_sparsity(sparsity: f64) -> Result<()> {
    if (0.0..=1.0).contains(&sparsity) {
        Ok(())
    } else {
        Err(Error::Sparsity { sparsity })
    }
}

/// `[rows, cols]` of a 2-D shape, or PyTorch's error for `init`.
fn two_dims(shape: &[usize], init: &'static str) -> Result<[usize; 2]> {
    match *shape {
        [rows, cols] => Ok([rows, cols]),
        _ => Err(Error::InitDims {
            init,
            supported: "2",
            dims: shape.len(),
        }),
    }
}

fn constant_value(val: f64) -> Result<f32> {
    let v = val as f32;
    if v.is_infinite() && val.is_finite() {
        return Err(Error::ConstantOutOfRange { value: val });
    }
    Ok(v)
}
