//! Reading and writing tensors in other programs' formats.
//!
//! * [`npy`]: numpy's `.npy` (float32, C order), for looking at what an
//!   initializer drew with numpy or any other tool.

pub mod npy;
