//! Reading and writing tensors in other programs' formats.
//!
//! * [`npy`]: numpy's `.npy` (float32, C order), for looking at what an
//!   initializer drew with numpy or any other tool.
//! * [`safetensors`]: state dicts in the safetensors format, which Python's
//!   `safetensors` package and PyTorch read and write.

pub mod npy;
pub mod safetensors;
