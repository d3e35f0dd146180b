//! The backends and their blocking: register tile `MR × NR`, and the cache
//! blocks `KC` (the `k` block), `MC × NC` (the block of `C` one task
//! computes).
//!
//! The loops (BLIS's, with the `MC` loop outside the `NR` loop): for each
//! `k` block of length `KC`, for each `MR`-row panel of the task's `A`
//! block, for each `NR`-column panel of its `B` block, one register tile.
//! So the `MR × KC` panel of `A` is read from L1 by `NC / NR` tiles in a row,
//! and the `KC × NC` block of `B` is read from L2 by the `MC / MR` panels.
//!
//! | backend | `T` | `MR × NR` | `KC` | `MC` | `NC` | `A` panel (L1) | `B` block (L2) |
//! |---|---|---|---|---|---|---|---|
//! | AVX-512 | f32 | 6 × 64 | 512 | 96 | 512 | 12 KiB | 1 MiB |
//! | AVX-512 | f64 | 6 × 32 | 256 | 96 | 512 | 12 KiB | 1 MiB |
//! | AVX2+FMA | f32 | 6 × 16 | 256 | 96 | 256 | 6 KiB | 256 KiB |
//! | AVX2+FMA | f64 | 6 × 8 | 128 | 96 | 256 | 6 KiB | 256 KiB |
//! | scalar | both | 4 × 4 | 256 | 64 | 256 | | |
//!
//! The L1 figure is sized for the 32–48 KiB L1d of the CPUs that have each
//! instruction set (so the `A` panel, a `B` micro-panel and the `C` tile fit
//! together), the L2 one for half of a 2 MiB L2 (Intel Sapphire/Emerald
//! Rapids; Zen 4/5 have 1 MiB, where the `B` block still streams from L2
//! once per `A` panel) and of a 512 KiB L2 (Zen 2/3, Skylake's 256 KiB
//! holds a `KC × 64` slice). None of these sizes changes a bit of the
//! result (see [`kernel`](super::kernel)): they are tuning only.

#[cfg(target_arch = "x86_64")]
use super::{avx2, avx512};
use crate::kernels::{Isa, Kernels};

/// A backend the GEMM runs on: the value proves the CPU has its features.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    /// Portable Rust.
    Scalar,
    /// AVX2+FMA.
    #[cfg(target_arch = "x86_64")]
    Avx2(avx2::Avx2),
    /// AVX-512.
    #[cfg(target_arch = "x86_64")]
    Avx512(avx512::Avx512),
}

impl Backend {
    /// The backend of `kernels`' instruction set. A `Kernels` value exists
    /// only for an instruction set this CPU has, so the detection here
    /// cannot fail.
    pub(crate) fn of(kernels: Kernels) -> Backend {
        match kernels.isa() {
            Isa::Scalar => Backend::Scalar,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => Backend::Avx2(avx2::Avx2::new().expect("Kernels checked AVX2+FMA")),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Backend::Avx512(avx512::Avx512::new().expect("Kernels checked AVX-512")),
            #[cfg(not(target_arch = "x86_64"))]
            _ => Backend::Scalar,
        }
    }

    /// The blocking for elements of `bytes` bytes (4 or 8).
    pub(crate) fn blocking(self, bytes: usize) -> Blocking {
        let wide = bytes == 8;
        match self {
            Backend::Scalar => Blocking {
                mr: super::scalar::MR,
                nr: super::scalar::NR,
                kc: 256,
                mc: 64,
                nc: 256,
            },
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2(_) => Blocking {
                mr: avx2::MR,
                nr: avx2::NV * 32 / bytes,
                kc: if wide { 128 } else { 256 },
                mc: 96,
                nc: 256,
            },
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512(_) => Blocking {
                mr: avx512::MR,
                nr: avx512::NV * 64 / bytes,
                kc: if wide { 128 } else { 256 },
                mc: 192,
                nc: 512,
            },
        }
    }
}

/// Register tile and cache blocks (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Blocking {
    /// Rows of the register tile.
    pub(crate) mr: usize,
    /// Columns of the register tile.
    pub(crate) nr: usize,
    /// The `k` block.
    pub(crate) kc: usize,
    /// Rows of a task's block of `C` (a multiple of `mr`).
    pub(crate) mc: usize,
    /// Columns of a task's block of `C` (a multiple of `nr`).
    pub(crate) nc: usize,
}
