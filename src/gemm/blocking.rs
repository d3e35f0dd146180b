//! The backends and their blocking: register tile `MR × NR`, and the cache
//! blocks `KC` (the `k` block), `MC × NC` (the block of `C` one task
//! computes).
//!
//! The loops: for each `k` block of length `KC`, for each `NR`-column
//! panel of the task's `B` block, for each `MR`-row panel of its `A` block,
//! one register tile. So the `KC × NR` micro-panel of `B` is read from L1 by
//! the `MC / MR` tiles in a row, the task's `MC × KC` block of `A` stays in
//! L2 across the `NR` panels, and each `A` micro-panel (`MR × KC`) streams
//! from L2 once per tile. A task's `KC × NC` block of `B` is packed just
//! before use (so it is in L2) when one row block covers all of `C` (up to
//! `4·MC` rows, the usual case for layers); taller products pack all of `B`
//! once, shared by the tasks.
//!
//! | backend | `T` | `MR × NR` | `KC` | `MC` | `NC` | `B` micro-panel (L1) | `A` block (L2) | `B` block (L2) |
//! |---|---|---|---|---|---|---|---|---|
//! | AVX-512 | f32 | 12 × 32 | 256 | 192 | 512 | 32 KiB | 192 KiB | 512 KiB |
//! | AVX-512 | f64 | 12 × 16 | 128 | 192 | 512 | 16 KiB | 192 KiB | 512 KiB |
//! | AVX2+FMA | f32 | 6 × 16 | 256 | 96 | 256 | 16 KiB | 96 KiB | 256 KiB |
//! | AVX2+FMA | f64 | 6 × 8 | 128 | 96 | 256 | 8 KiB | 96 KiB | 256 KiB |
//! | scalar | both | 4 × 4 | 256 | 64 | 256 | | | |
//!
//! A block's last row panel, when it has fewer than `MR` rows, runs a
//! register tile of only 4 or 8 rows (the first rows of its zero-padded
//! panel): a `C` of 64 rows on the 12-row AVX-512 tile computes 64 + 4 rows
//! instead of 72, 256 rows 256 + 4 instead of 264.
//!
//! The L1 figure is sized for the 48 KiB L1d of the AVX-512 CPUs (Ice Lake
//! and later, Zen 5; Zen 4's 32 KiB still holds the micro-panel) and the
//! 32 KiB of AVX2 ones, leaving room for the `A` stream and the `C` tile;
//! the L2 ones for 1–2 MiB (Sapphire/Emerald Rapids 2 MiB, Zen 4/5 1 MiB)
//! and 256–512 KiB (Skylake, Zen 2/3). 12 × 32 was measured against
//! 6 × 64, 8 × 48 and 14 × 32 on an Emerald Rapids core (all within 3%), and
//! `KC` 192–384, `NC` 256–512 made no measurable difference there. None of
//! these sizes changes a bit of the result (see [`kernel`](super::kernel)):
//! they are tuning only.

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
