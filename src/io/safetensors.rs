//! State dicts as [safetensors](https://github.com/huggingface/safetensors)
//! files, readable by Python's `safetensors` package and by PyTorch.
//!
//! # Format
//! 8 bytes: the header length `n` (u64, little-endian); `n` bytes: a JSON
//! object `{name: {"dtype": "F32", "shape": [..], "data_offsets": [begin,
//! end]}, "__metadata__": {string: string}}`; then the data, little-endian and
//! row-major, which the offsets (relative to the data's start) cover exactly,
//! without gaps or overlaps.
//!
//! # What we write
//! Every entry of the [`StateDict`] as `F32` (or `I64` for `int64` entries
//! such as BatchNorm's `num_batches_tracked`), under its dotted name, written
//! by the `safetensors` crate (sorted by name, header padded to 8 bytes).
//! A tied parameter is written once, as Python's `safetensors.torch.save_model`
//! does: within each group of names sharing storage the lexicographically
//! smallest is kept, and `__metadata__` maps each dropped name to the kept one
//! (`{"4.weight": "2.weight"}`). We also write `"format": "pt"`, which the
//! Hugging Face tools expect.
//!
//! # What we read
//! `F32` and `I64` tensors: any other dtype is an error naming it, never
//! reinterpreted bytes. Data need not be aligned (values are decoded from
//! bytes). Each `__metadata__` entry whose key is not a tensor of the file and
//! whose value is one restores a tie: the key gets the same tensor and
//! [`StateDict::tied_to`] reports it. Other metadata is returned by
//! [`deserialize_with_metadata`]. Loading into a module checks names and
//! shapes as [`Module::load_state_dict`] does.
//!
//! Every malformed file is an [`Error::Format`] naming the problem, never a
//! panic: fewer than 8 bytes, a header length past the end or over the 100 MB
//! limit, a header that is not UTF-8 or not a JSON object of the right form,
//! duplicate names, offsets out of range, overlapping or leaving holes, shape
//! × dtype size not matching the bytes.
//!
//! ```
//! use nninit::io::safetensors;
//! use nninit::nn::{Linear, Module};
//!
//! let net = Linear::new(3, 2).unwrap();
//! let bytes = safetensors::serialize(&net.state_dict()).unwrap();
//! let back = safetensors::deserialize(&bytes).unwrap();
//! assert_eq!(back, net.state_dict());
//! assert!(safetensors::deserialize(&bytes[..20]).is_err());
//! ```

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::error::{Error, Result};
use crate::nn::{LoadReport, Module, StateDict};
use crate::tensor::{AnyTensor, IntTensor, Tensor};

/// Header lengths above this are refused (the `safetensors` crate's limit).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

fn format_error(reason: impl Into<String>) -> Error {
    Error::Format {
        format: "safetensors",
        reason: reason.into(),
    }
}

/// A tensor borrowed for the writer.
struct View<'a>(&'a AnyTensor);

impl safetensors::View for View<'_> {
    fn dtype(&self) -> safetensors::Dtype {
        match self.0 {
            AnyTensor::F32(_) => safetensors::Dtype::F32,
            AnyTensor::I64(_) => safetensors::Dtype::I64,
        }
    }

    fn shape(&self) -> &[usize] {
        self.0.shape()
    }

    fn data(&self) -> Cow<'_, [u8]> {
        match self.0 {
            AnyTensor::F32(t) => {
                let data = t.as_slice();
                if cfg!(target_endian = "little") {
                    // SAFETY: any initialized `f32` memory is valid as bytes;
                    // the byte slice covers exactly the `data.len() * 4`
                    // bytes of `data` and borrows it for the same lifetime.
                    // On a little-endian target these are the file's
                    // little-endian bytes.
                    Cow::Borrowed(unsafe {
                        std::slice::from_raw_parts(data.as_ptr().cast::<u8>(), size_of_val(data))
                    })
                } else {
                    Cow::Owned(data.iter().flat_map(|v| v.to_le_bytes()).collect())
                }
            }
            AnyTensor::I64(t) => {
                Cow::Owned(t.as_slice().iter().flat_map(|v| v.to_le_bytes()).collect())
            }
        }
    }

    fn data_len(&self) -> usize {
        match self.0 {
            AnyTensor::F32(t) => size_of_val(t.as_slice()),
            AnyTensor::I64(t) => size_of_val(t.as_slice()),
        }
    }
}

/// Which names of `sd` are written and the `__metadata__` for the dropped
/// aliases: per group of tied names, the smallest name is kept.
fn plan_ties(sd: &StateDict) -> (Vec<&str>, BTreeMap<String, String>) {
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for name in sd.keys() {
        let root = sd.tied_to(name).unwrap_or(name);
        groups.entry(root).or_default().push(name);
    }
    let mut kept = Vec::new();
    let mut metadata = BTreeMap::new();
    for names in groups.values() {
        let keep = *names.iter().min().expect("groups are non-empty");
        kept.push(keep);
        for &n in names {
            if n != keep {
                metadata.insert(n.to_string(), keep.to_string());
            }
        }
    }
    (kept, metadata)
}

/// The bytes of a safetensors file holding `state_dict` (ties recorded in
/// `__metadata__`, see the module docs).
///
/// # Errors
/// [`Error::Format`] if a name is `__metadata__` (reserved by the format).
pub fn serialize(state_dict: &StateDict) -> Result<Vec<u8>> {
    serialize_with_metadata(state_dict, &BTreeMap::new())
}

/// [`serialize`] with extra `__metadata__` entries (the tie entries win over
/// entries of the same key).
///
/// # Errors
/// As [`serialize`].
pub fn serialize_with_metadata(
    state_dict: &StateDict,
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let (kept, ties) = plan_ties(state_dict);
    if kept.contains(&"__metadata__") {
        return Err(format_error(
            "a tensor cannot be named \"__metadata__\" (the name is reserved for metadata)",
        ));
    }
    let mut info: HashMap<String, String> = metadata.clone().into_iter().collect();
    info.insert("format".to_string(), "pt".to_string());
    info.extend(ties);
    let views = kept.iter().map(|&name| {
        let t = state_dict
            .get_any(name)
            .expect("planned from the dict's own keys");
        (name, View(t))
    });
    safetensors::serialize(views, Some(info)).map_err(|e| format_error(e.to_string()))
}

/// Writes `state_dict` to `path` as safetensors.
///
/// # Errors
/// [`Error::Io`] if the file cannot be written; as [`serialize`].
pub fn save(state_dict: &StateDict, path: impl AsRef<Path>) -> Result<()> {
    std::fs::write(path, serialize(state_dict)?)?;
    Ok(())
}

/// Writes `module.state_dict()` to `path`.
///
/// # Errors
/// As [`save`].
pub fn save_module(module: &dyn Module, path: impl AsRef<Path>) -> Result<()> {
    save(&module.state_dict(), path)
}

/// The state dict in the bytes of a safetensors file, ties restored.
///
/// # Errors
/// [`Error::Format`] naming the problem for any malformed input (see the
/// module docs) and for dtypes other than `F32`.
pub fn deserialize(bytes: &[u8]) -> Result<StateDict> {
    deserialize_with_metadata(bytes).map(|(sd, _)| sd)
}

/// Reads `path` (see [`deserialize`]).
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; as [`deserialize`].
pub fn load(path: impl AsRef<Path>) -> Result<StateDict> {
    deserialize(&std::fs::read(path)?)
}

/// Reads `path` into `module` by name (see [`Module::load_state_dict`]).
///
/// # Errors
/// As [`load`] and [`Module::load_state_dict`].
pub fn load_module(
    module: &dyn Module,
    path: impl AsRef<Path>,
    strict: bool,
) -> Result<LoadReport> {
    module.load_state_dict(&load(path)?, strict)
}

/// One tensor entry of the header.
#[derive(Debug)]
struct Entry {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    offsets: [u64; 2],
}

/// The parsed header: tensor entries in header order, and the metadata.
#[derive(Debug, Default)]
struct Header {
    entries: Vec<Entry>,
    metadata: BTreeMap<String, String>,
}

/// Deserializes the header object entry by entry, so that a duplicate name
/// is seen (a map type would keep the last silently) and every problem is
/// named.
struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Header;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of tensor entries")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
        let mut header = Header::default();
        let mut seen = std::collections::HashSet::new();
        let mut seen_metadata = false;
        while let Some(name) = map.next_key::<String>()? {
            if name == "__metadata__" {
                if seen_metadata {
                    return Err(de::Error::custom(
                        "duplicate \"__metadata__\" in the header",
                    ));
                }
                seen_metadata = true;
                let m: Option<BTreeMap<String, String>> = map.next_value().map_err(|e| {
                    de::Error::custom(format!("\"__metadata__\" must map strings to strings: {e}"))
                })?;
                header.metadata = m.unwrap_or_default();
                continue;
            }
            if !seen.insert(name.clone()) {
                return Err(de::Error::custom(format!(
                    "duplicate tensor name {name:?} in the header"
                )));
            }
            let raw: RawEntry = map
                .next_value()
                .map_err(|e| de::Error::custom(format!("entry for tensor {name:?}: {e}")))?;
            header.entries.push(Entry {
                name,
                dtype: raw.dtype,
                shape: raw.shape,
                offsets: raw.data_offsets,
            });
        }
        Ok(header)
    }
}

impl<'de> serde::Deserialize<'de> for Header {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Header, D::Error> {
        d.deserialize_map(HeaderVisitor)
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

fn shape_str(shape: &[usize]) -> String {
    format!("{shape:?}")
}

/// [`deserialize`], also returning the `__metadata__` entries that are not
/// ties (such as `"format": "pt"`).
///
/// # Errors
/// As [`deserialize`].
pub fn deserialize_with_metadata(bytes: &[u8]) -> Result<(StateDict, BTreeMap<String, String>)> {
    let Some(len_bytes) = bytes.first_chunk::<8>() else {
        return Err(format_error(format!(
            "the file has {} bytes, fewer than the 8 of the header length",
            bytes.len()
        )));
    };
    let header_len = u64::from_le_bytes(*len_bytes);
    if header_len > MAX_HEADER_BYTES {
        return Err(format_error(format!(
            "header length {header_len} is over the limit of {MAX_HEADER_BYTES} bytes"
        )));
    }
    let available = bytes.len() as u64 - 8;
    if header_len > available {
        return Err(format_error(format!(
            "header length {header_len} runs past the end of the file ({available} bytes follow \
             the length)"
        )));
    }
    let header_end = 8 + header_len as usize;
    let text = std::str::from_utf8(&bytes[8..header_end])
        .map_err(|e| format_error(format!("the header is not UTF-8: {e}")))?;
    let header: Header = serde_json::from_str(text)
        .map_err(|e| format_error(format!("the header is not valid: {e}")))?;
    let data = &bytes[header_end..];

    // Offsets: in range, sizes matching shape × 4, covering the data exactly.
    let mut spans: Vec<(u64, u64, &str)> = Vec::with_capacity(header.entries.len());
    for e in &header.entries {
        let [begin, end] = e.offsets;
        if begin > end || end > data.len() as u64 {
            return Err(format_error(format!(
                "data_offsets [{begin}, {end}] of tensor {:?} are out of range for {} bytes of data",
                e.name,
                data.len()
            )));
        }
        let width = match e.dtype.as_str() {
            "F32" => 4u64,
            "I64" => 8,
            _ => {
                return Err(format_error(format!(
                    "tensor {:?} has dtype {}: only F32 and I64 are supported",
                    e.name, e.dtype
                )));
            }
        };
        let bytes_needed = e
            .shape
            .iter()
            .try_fold(width, |n, &d| n.checked_mul(d as u64))
            .filter(|&n| n <= isize::MAX as u64);
        if bytes_needed != Some(end - begin) {
            return Err(format_error(format!(
                "tensor {:?} of shape {} and dtype {} needs {} bytes, but its data_offsets \
                 [{begin}, {end}] cover {}",
                e.name,
                shape_str(&e.shape),
                e.dtype,
                bytes_needed.map_or_else(|| "too many".to_string(), |n| n.to_string()),
                end - begin
            )));
        }
        spans.push((begin, end, &e.name));
    }
    spans.sort_unstable();
    let mut covered = 0u64;
    for (i, &(begin, end, name)) in spans.iter().enumerate() {
        if begin < covered {
            let (_, prev_end, prev) = spans[i - 1];
            return Err(format_error(format!(
                "tensors {prev:?} (ending at byte {prev_end}) and {name:?} (starting at byte \
                 {begin}) overlap"
            )));
        }
        if begin > covered {
            return Err(format_error(format!(
                "bytes {covered}..{begin} of the data belong to no tensor"
            )));
        }
        covered = end;
    }
    if covered != data.len() as u64 {
        return Err(format_error(format!(
            "bytes {covered}..{} at the end of the data belong to no tensor",
            data.len()
        )));
    }

    let mut sd = StateDict::new();
    let mut order: Vec<&Entry> = header.entries.iter().collect();
    order.sort_by(|a, b| a.name.cmp(&b.name));
    for e in order {
        let raw = &data[e.offsets[0] as usize..e.offsets[1] as usize];
        let value = if e.dtype == "I64" {
            let values: Vec<i64> = raw
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect();
            AnyTensor::I64(IntTensor::from_vec(values, &e.shape)?)
        } else {
            let values: Vec<f32> = raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            AnyTensor::F32(Tensor::from_vec(values, &e.shape)?)
        };
        sd.insert(e.name.clone(), value);
    }
    let mut other = BTreeMap::new();
    for (key, value) in header.metadata {
        if !sd.contains_key(&key) && sd.contains_key(&value) && sd.tied_to(&value).is_none() {
            let t = sd.get_any(&value).expect("checked just above").clone();
            sd.insert(key.clone(), t);
            sd.tie(&key, &value);
        } else {
            other.insert(key, value);
        }
    }
    Ok((sd, other))
}
