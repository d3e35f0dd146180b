//! A minimal reader for the safetensors fixtures written by PyTorch (any
//! dtype, as raw bytes), independent of the crate's own reader.

use std::collections::HashMap;

/// One tensor of a fixture file.
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    pub(crate) dtype: String,
    pub(crate) shape: Vec<usize>,
    pub(crate) bytes: Vec<u8>,
}

impl Raw {
    /// The data as `f32` (the dtype must be `F32`).
    pub(crate) fn f32s(&self) -> Vec<f32> {
        assert_eq!(self.dtype, "F32");
        self.bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }
}

/// Every tensor of the safetensors file at `path`.
pub(crate) fn read(path: &str) -> HashMap<String, Raw> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let n = u64::from_le_bytes(data[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&data[8..8 + n]).unwrap();
    let body = &data[8 + n..];
    let mut out = HashMap::new();
    for (name, v) in header.as_object().unwrap() {
        if name == "__metadata__" {
            continue;
        }
        let offsets: Vec<usize> = v["data_offsets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        out.insert(
            name.clone(),
            Raw {
                dtype: v["dtype"].as_str().unwrap().to_string(),
                shape: v["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap() as usize)
                    .collect(),
                bytes: body[offsets[0]..offsets[1]].to_vec(),
            },
        );
    }
    out
}
