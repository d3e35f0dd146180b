//! numpy's `.npy` format, version 1.0, for `float32` C-order arrays.
//!
//! The file is the magic `\x93NUMPY`, the version `1 0`, a little-endian `u16`
//! header length, an ASCII Python-dict header
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (4096, 4096), }` padded
//! with spaces to a multiple of 64 bytes and ended by `\n`, then the values as
//! little-endian `f32` in row-major order.
//!
//! ```
//! use nninit::Tensor;
//! use nninit::io::npy;
//! let t = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
//! let bytes = npy::to_bytes(&t);
//! assert_eq!(npy::from_bytes(&bytes).unwrap(), t);
//! ```

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::tensor::Tensor;

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The header dict for `shape`, padded so that the data starts at a multiple
/// of 64 bytes.
fn header(shape: &[usize]) -> Vec<u8> {
    let dims = match shape {
        [] => String::new(),
        [n] => format!("{n},"),
        _ => shape
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}");
    let unpadded = MAGIC.len() + 2 + 2 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + dict.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Writes `tensor` as `.npy` to `w`.
pub fn write(tensor: &Tensor, mut w: impl Write) -> Result<()> {
    w.write_all(&header(tensor.shape()))?;
    // Values in bounded chunks: no second copy of a large tensor.
    let mut buf = Vec::with_capacity(4 * 8192);
    for chunk in tensor.as_slice().chunks(8192) {
        buf.clear();
        for v in chunk {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        w.write_all(&buf)?;
    }
    w.flush()?;
    Ok(())
}

/// The `.npy` bytes of `tensor`.
pub fn to_bytes(tensor: &Tensor) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + 4 * tensor.numel());
    write(tensor, &mut out).expect("writing to a Vec cannot fail");
    out
}

/// Writes `tensor` to the file at `path`.
pub fn save(tensor: &Tensor, path: impl AsRef<Path>) -> Result<()> {
    let file = std::fs::File::create(path)?;
    write(tensor, std::io::BufWriter::new(file))
}

fn bad(reason: impl Into<String>) -> Error {
    Error::Format {
        format: "npy",
        reason: reason.into(),
    }
}

/// Parses a version 1.0 to 3.0 `.npy` holding little-endian `float32` in C
/// order. Anything else is an [`Error::Format`] naming what is wrong.
pub fn from_bytes(bytes: &[u8]) -> Result<Tensor> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("not an .npy file (bad magic)"));
    }
    let (len_bytes, header_start) = match bytes[6] {
        1 => (2, 10),
        2 | 3 => (4, 12),
        v => return Err(bad(format!("unsupported .npy version {v}"))),
    };
    if bytes.len() < header_start {
        return Err(bad("truncated header"));
    }
    let mut len = [0u8; 4];
    len[..len_bytes].copy_from_slice(&bytes[8..8 + len_bytes]);
    let header_len = u32::from_le_bytes(len) as usize;
    let data_start = header_start
        .checked_add(header_len)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| bad("header longer than the file"))?;
    let dict = std::str::from_utf8(&bytes[header_start..data_start])
        .map_err(|_| bad("header is not text"))?;
    let field = |key: &str| -> Result<&str> {
        let at = dict
            .find(&format!("'{key}':"))
            .ok_or_else(|| bad(format!("header has no '{key}'")))?;
        Ok(dict[at + key.len() + 3..].trim_start())
    };
    let descr = field("descr")?;
    if !(descr.starts_with("'<f4'") || descr.starts_with("'float32'")) {
        let shown: String = descr.chars().take_while(|&c| c != ',').collect();
        return Err(bad(format!("dtype {shown} is not little-endian float32")));
    }
    if !field("fortran_order")?.starts_with("False") {
        return Err(bad("Fortran-order arrays are not supported"));
    }
    let shape_text = field("shape")?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.split_once(')'))
        .map(|(inner, _)| inner)
        .ok_or_else(|| bad("malformed shape"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| bad(format!("bad dimension {s:?}")))
        })
        .collect::<Result<Vec<usize>>>()?;
    let data = &bytes[data_start..];
    let numel = crate::tensor::numel_of(&shape)?;
    if data.len() != numel.checked_mul(4).ok_or_else(|| bad("shape too large"))? {
        return Err(bad(format!(
            "shape {shape:?} needs {} bytes of data, the file has {}",
            numel.saturating_mul(4),
            data.len()
        )));
    }
    let values: Vec<f32> = data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Tensor::from_vec(values, &shape)
}

/// Reads the `.npy` file at `path`.
pub fn load(path: impl AsRef<Path>) -> Result<Tensor> {
    from_bytes(&std::fs::read(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_aligned_and_numpy_shaped() {
        for shape in [&[][..], &[3], &[2, 3], &[0, 4], &[4096, 4096, 1]] {
            let h = header(shape);
            assert_eq!(h.len() % 64, 0, "{shape:?}");
            assert_eq!(*h.last().unwrap(), b'\n');
        }
        let h = String::from_utf8_lossy(&header(&[7])).to_string();
        assert!(h.contains("'shape': (7,)"), "{h}");
        let h = String::from_utf8_lossy(&header(&[])).to_string();
        assert!(h.contains("'shape': ()"), "{h}");
    }

    #[test]
    fn round_trips() {
        for (data, shape) in [
            (vec![1.5], vec![]),
            (vec![], vec![0, 3]),
            (vec![-0.0, f32::NAN, 3.25, 1e-40], vec![2, 2]),
        ] {
            let t = Tensor::from_vec(data, &shape).unwrap();
            let back = from_bytes(&to_bytes(&t)).unwrap();
            assert_eq!(back.shape(), t.shape());
            let bits = |x: &Tensor| x.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&back), bits(&t));
        }
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        let good = to_bytes(&Tensor::zeros(&[2, 2]).unwrap());
        assert!(
            from_bytes(&good[..good.len() - 1])
                .unwrap_err()
                .to_string()
                .contains("needs 16 bytes")
        );
        assert!(from_bytes(b"hello").is_err());
        let replace = |from: &[u8], to: &[u8]| {
            let at = good.windows(from.len()).position(|w| w == from).unwrap();
            let mut b = good.clone();
            b[at..at + to.len()].copy_from_slice(to);
            b
        };
        let e = from_bytes(&replace(b"<f4", b"<f8"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'<f8'"), "{e}");
        let e = from_bytes(&replace(b"False", b"True "))
            .unwrap_err()
            .to_string();
        assert!(e.contains("Fortran"), "{e}");
    }
}
