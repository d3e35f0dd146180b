//! The element types of files: `F32`, `BF16`, `F16` for floating-point
//! tensors and `I64` for integer ones, with the conversions between `f32`
//! and the 16-bit formats (the `half` crate: round to nearest even, NaN stays
//! NaN, values beyond the format's range become ±∞).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// An element type of a safetensors file.
///
/// ```
/// use nninit::io::dtype::Dtype;
/// assert_eq!("bf16".parse::<Dtype>().unwrap(), Dtype::BF16);
/// assert_eq!(Dtype::F16.to_string(), "F16");
/// assert_eq!(Dtype::BF16.size(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dtype {
    /// IEEE binary32.
    F32,
    /// bfloat16: `f32`'s exponent, 8 bits of significand.
    BF16,
    /// IEEE binary16.
    F16,
    /// Signed 64-bit integers.
    I64,
}

impl Dtype {
    /// The name in a safetensors header: `F32`, `BF16`, `F16`, `I64`.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "F32",
            Dtype::BF16 => "BF16",
            Dtype::F16 => "F16",
            Dtype::I64 => "I64",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::BF16 | Dtype::F16 => 2,
            Dtype::I64 => 8,
        }
    }

    /// Whether it holds floating-point values.
    pub fn is_float(self) -> bool {
        !matches!(self, Dtype::I64)
    }

    /// The dtype a header names, if this crate reads it.
    pub fn from_header(name: &str) -> Option<Dtype> {
        [Dtype::F32, Dtype::BF16, Dtype::F16, Dtype::I64]
            .into_iter()
            .find(|d| d.name() == name)
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dtype {
    type Err = Error;

    /// `f32`, `bf16`, `f16`, `i64` (any case; also PyTorch's `float32`,
    /// `bfloat16`, `float16`, `int64`).
    fn from_str(s: &str) -> Result<Dtype> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" | "float" => Ok(Dtype::F32),
            "bf16" | "bfloat16" => Ok(Dtype::BF16),
            "f16" | "float16" | "half" => Ok(Dtype::F16),
            "i64" | "int64" | "long" => Ok(Dtype::I64),
            _ => Err(Error::Format {
                format: "dtype",
                reason: format!("unknown dtype {s:?}: expected f32, bf16, f16 or i64"),
            }),
        }
    }
}

/// Appends the little-endian bytes of `values` as `dtype` (a float dtype).
pub(crate) fn encode_f32(values: &[f32], dtype: Dtype, out: &mut Vec<u8>) {
    match dtype {
        Dtype::F32 => out.extend(values.iter().flat_map(|v| v.to_le_bytes())),
        Dtype::BF16 => out.extend(
            values
                .iter()
                .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()),
        ),
        Dtype::F16 => out.extend(
            values
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes()),
        ),
        Dtype::I64 => unreachable!("float values are never written as I64"),
    }
}

/// Decodes little-endian `bytes` of a float `dtype` into `out`
/// (`out.len() * dtype.size() == bytes.len()`).
pub(crate) fn decode_to_f32(bytes: &[u8], dtype: Dtype, out: &mut [f32]) {
    debug_assert_eq!(bytes.len(), out.len() * dtype.size());
    match dtype {
        Dtype::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        Dtype::BF16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = half::bf16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        Dtype::F16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        Dtype::I64 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                *o = i64::from_le_bytes(b.try_into().expect("8 bytes")) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: f32, d: Dtype) -> f32 {
        let mut bytes = Vec::new();
        encode_f32(&[v], d, &mut bytes);
        let mut out = [0.0];
        decode_to_f32(&bytes, d, &mut out);
        out[0]
    }

    #[test]
    fn sixteen_bit_conversions_round_to_nearest_even() {
        // bf16 keeps 8 significand bits: 1 + 2^-8 is a tie, rounded to even (1.0);
        // 1 + 3·2^-8 rounds up.
        assert_eq!(round_trip(1.0 + 2f32.powi(-8), Dtype::BF16), 1.0);
        assert_eq!(
            round_trip(1.0 + 3.0 * 2f32.powi(-8), Dtype::BF16),
            1.0 + 2f32.powi(-6)
        );
        assert_eq!(round_trip(1.0 + 2f32.powi(-11), Dtype::F16), 1.0);
        assert!(round_trip(f32::NAN, Dtype::BF16).is_nan());
        assert!(round_trip(f32::NAN, Dtype::F16).is_nan());
        assert_eq!(round_trip(1e6, Dtype::F16), f32::INFINITY);
        assert_eq!(round_trip(-1e6, Dtype::F16), f32::NEG_INFINITY);
        assert_eq!(round_trip(f32::MAX, Dtype::BF16), f32::INFINITY);
        assert_eq!(round_trip(-0.0, Dtype::BF16).to_bits(), (-0.0f32).to_bits());
        assert_eq!(round_trip(0.1, Dtype::F32), 0.1);
    }

    #[test]
    fn names_parse() {
        for d in [Dtype::F32, Dtype::BF16, Dtype::F16, Dtype::I64] {
            assert_eq!(Dtype::from_header(d.name()), Some(d));
            assert_eq!(d.name().parse::<Dtype>().unwrap(), d);
        }
        assert!("f8".parse::<Dtype>().is_err());
        assert_eq!(Dtype::from_header("U8"), None);
    }
}
