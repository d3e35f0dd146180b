//! Gains and fans: `calculate_gain`, `_calculate_fan_in_and_fan_out`, and the
//! standard deviations of Xavier and Kaiming, in PyTorch's `f64` arithmetic.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::tensor::numel_of;

/// The nonlinearities [`calculate_gain`] knows, named as in
/// `torch.nn.functional`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Nonlinearity {
    /// `linear` (gain 1).
    Linear,
    /// `conv1d` (gain 1).
    Conv1d,
    /// `conv2d` (gain 1).
    Conv2d,
    /// `conv3d` (gain 1).
    Conv3d,
    /// `conv_transpose1d` (gain 1).
    ConvTranspose1d,
    /// `conv_transpose2d` (gain 1).
    ConvTranspose2d,
    /// `conv_transpose3d` (gain 1).
    ConvTranspose3d,
    /// `sigmoid` (gain 1).
    Sigmoid,
    /// `tanh` (gain 5/3).
    Tanh,
    /// `relu` (gain √2).
    Relu,
    /// `leaky_relu` (gain √(2 / (1 + slope²)), slope 0.01 by default).
    LeakyRelu,
    /// `selu` (gain 3/4).
    Selu,
}

impl Nonlinearity {
    /// Every nonlinearity, in PyTorch's order.
    pub const ALL: [Nonlinearity; 12] = [
        Nonlinearity::Linear,
        Nonlinearity::Conv1d,
        Nonlinearity::Conv2d,
        Nonlinearity::Conv3d,
        Nonlinearity::ConvTranspose1d,
        Nonlinearity::ConvTranspose2d,
        Nonlinearity::ConvTranspose3d,
        Nonlinearity::Sigmoid,
        Nonlinearity::Tanh,
        Nonlinearity::Relu,
        Nonlinearity::LeakyRelu,
        Nonlinearity::Selu,
    ];

    /// PyTorch's name: `"leaky_relu"`, `"conv_transpose2d"`, …
    pub fn name(self) -> &'static str {
        match self {
            Nonlinearity::Linear => "linear",
            Nonlinearity::Conv1d => "conv1d",
            Nonlinearity::Conv2d => "conv2d",
            Nonlinearity::Conv3d => "conv3d",
            Nonlinearity::ConvTranspose1d => "conv_transpose1d",
            Nonlinearity::ConvTranspose2d => "conv_transpose2d",
            Nonlinearity::ConvTranspose3d => "conv_transpose3d",
            Nonlinearity::Sigmoid => "sigmoid",
            Nonlinearity::Tanh => "tanh",
            Nonlinearity::Relu => "relu",
            Nonlinearity::LeakyRelu => "leaky_relu",
            Nonlinearity::Selu => "selu",
        }
    }
}

impl fmt::Display for Nonlinearity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Nonlinearity {
    type Err = Error;

    /// Parses PyTorch's names exactly (`"relu"`, `"leaky_relu"`, …); anything
    /// else is `Unsupported nonlinearity {name}`.
    fn from_str(s: &str) -> Result<Nonlinearity> {
        Nonlinearity::ALL
            .into_iter()
            .find(|n| n.name() == s)
            .ok_or_else(|| Error::UnsupportedNonlinearity {
                name: s.to_string(),
            })
    }
}

/// The recommended gain for a nonlinearity, as `torch.nn.init.calculate_gain`.
///
/// | nonlinearity | gain |
/// |---|---|
/// | linear, conv*, sigmoid | 1 |
/// | tanh | 5/3 |
/// | relu | √2 |
/// | leaky_relu | √(2 / (1 + slope²)), `param` is the slope, 0.01 if `None` |
/// | selu | 3/4 |
///
/// `param` is ignored for the others, as in PyTorch. A non-finite slope is an
/// error (`negative_slope nan not a valid number`).
///
/// ```
/// use nninit::init::{Nonlinearity, calculate_gain};
/// assert_eq!(calculate_gain(Nonlinearity::Tanh, None).unwrap(), 5.0 / 3.0);
/// assert_eq!(calculate_gain(Nonlinearity::LeakyRelu, None).unwrap(), 1.4141428569978354);
/// assert_eq!(calculate_gain("leaky_relu".parse().unwrap(), Some(10.0)).unwrap(), 0.14071950894605836);
/// ```
pub fn calculate_gain(nonlinearity: Nonlinearity, param: Option<f64>) -> Result<f64> {
    Ok(match nonlinearity {
        Nonlinearity::Linear
        | Nonlinearity::Conv1d
        | Nonlinearity::Conv2d
        | Nonlinearity::Conv3d
        | Nonlinearity::ConvTranspose1d
        | Nonlinearity::ConvTranspose2d
        | Nonlinearity::ConvTranspose3d
        | Nonlinearity::Sigmoid => 1.0,
        Nonlinearity::Tanh => 5.0 / 3.0,
        Nonlinearity::Relu => 2f64.sqrt(),
        Nonlinearity::LeakyRelu => {
            let slope = param.unwrap_or(0.01);
            if !slope.is_finite() {
                return Err(Error::NegativeSlope { value: slope });
            }
            (2.0 / (1.0 + slope * slope)).sqrt()
        }
        Nonlinearity::Selu => 3.0 / 4.0,
    })
}

/// Which fan Kaiming initialization preserves the variance of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FanMode {
    /// `fan_in` (default): the variance of the forward pass.
    #[default]
    FanIn,
    /// `fan_out`: the variance of the backward pass.
    FanOut,
}

impl FromStr for FanMode {
    type Err = Error;

    /// `fan_in` or `fan_out`, ASCII case-insensitive (PyTorch lower-cases).
    fn from_str(s: &str) -> Result<FanMode> {
        match s.to_ascii_lowercase().as_str() {
            "fan_in" => Ok(FanMode::FanIn),
            "fan_out" => Ok(FanMode::FanOut),
            _ => Err(Error::UnsupportedMode {
                mode: s.to_string(),
            }),
        }
    }
}

impl fmt::Display for FanMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FanMode::FanIn => "fan_in",
            FanMode::FanOut => "fan_out",
        })
    }
}

/// `(fan_in, fan_out)` of a weight of `shape`: `fan_in = shape[1] · r`,
/// `fan_out = shape[0] · r`, with the receptive field `r = ∏ shape[2..]`.
///
/// Fewer than 2 dimensions is an error: `Fan in and fan out can not be
/// computed for tensor with fewer than 2 dimensions`.
pub fn calculate_fan_in_and_fan_out(shape: &[usize]) -> Result<(usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::FanDims { dims: shape.len() });
    }
    let receptive = numel_of(&shape[2..])?;
    let overflow = || Error::ShapeOverflow {
        shape: shape.to_vec(),
    };
    let fan_in = shape[1].checked_mul(receptive).ok_or_else(overflow)?;
    let fan_out = shape[0].checked_mul(receptive).ok_or_else(overflow)?;
    Ok((fan_in, fan_out))
}

/// The fan `mode` selects (`_calculate_correct_fan`).
pub fn calculate_correct_fan(shape: &[usize], mode: FanMode) -> Result<usize> {
    let (fan_in, fan_out) = calculate_fan_in_and_fan_out(shape)?;
    Ok(match mode {
        FanMode::FanIn => fan_in,
        FanMode::FanOut => fan_out,
    })
}

pub(super) fn check_gain(gain: f64) -> Result<()> {
    if gain.is_finite() {
        Ok(())
    } else {
        Err(Error::Gain { gain })
    }
}

pub(super) fn xavier_std(shape: &[usize], gain: f64) -> Result<f64> {
    check_gain(gain)?;
    let (fan_in, fan_out) = calculate_fan_in_and_fan_out(shape)?;
    Ok(gain * (2.0 / (fan_in as f64 + fan_out as f64)).sqrt())
}

pub(super) fn kaiming_std(
    shape: &[usize],
    a: f64,
    mode: FanMode,
    nonlinearity: Nonlinearity,
) -> Result<f64> {
    let gain = calculate_gain(nonlinearity, Some(a))?;
    let fan = calculate_correct_fan(shape, mode)?;
    Ok(gain / (fan as f64).sqrt())
}
