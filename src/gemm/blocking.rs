//! The backends and their blocking: register tile `MR × NR`, and the cache
//! blocks `KC` (the `k` block), `MC × NC` (the block of `C` one task
//! computes).
//!
//! The loops: for each `k` block of length `KC`, for each `NR`-column
//! panel of the task's `B` block, for each `MR`-row panel of its `A` block,
//! one register tile. So the `KC × NR` micro-panel of `B` is read by the
//! `MC / MR` tiles in a row (from L1 on the AVX2 sizes, from L2 on the
//! AVX-512 ones), the task's `MC × KC` block of `A` is read once per `NR`
//! panel, and each `A` micro-panel (`MR × KC`) streams once per tile. A
//! task's `KC × NC` block of `B` is packed just before use when one row
//! block covers all of `C` (up to `4·MC` rows, the usual case for layers);
//! taller products pack all of `B` once, shared by the tasks. Between two
//! `k` blocks every tile's accumulators go to a scratch block and back.
//!
//! | backend | `T` | `MR × NR` | `KC` | `MC` | `NC` | `B` micro-panel | `A` block | `B` block |
//! |---|---|---|---|---|---|---|---|---|
//! | AVX-512 | f32 | 12 × 32 | 1024 | 192 | 512 | 128 KiB | 768 KiB | 2 MiB |
//! | AVX-512 | f64 | 12 × 16 | 512 | 192 | 512 | 64 KiB | 768 KiB | 2 MiB |
//! | AVX2+FMA | f32 | 6 × 16 | 256 | 96 | 256 | 16 KiB | 96 KiB | 256 KiB |
//! | AVX2+FMA | f64 | 6 × 8 | 128 | 96 | 256 | 8 KiB | 96 KiB | 256 KiB |
//! | scalar | both | 4 × 4 | 256 | 64 | 256 | | | |
//!
//! A block's last row panel, when it has fewer than `MR` rows, runs a
//! register tile of only 4 or 8 rows (the first rows of its zero-padded
//! panel): a `C` of 64 rows on the 12-row AVX-512 tile computes 64 + 4 rows
//! instead of 72, 256 rows 256 + 4 instead of 264.
//!
//! The AVX2 sizes keep the `B` micro-panel in the 32 KiB L1d and the `A`
//! block in the 256–512 KiB L2 of the AVX2 CPUs (Skylake, Zen 2/3). The
//! AVX-512 `KC` is long instead: on an AMD Zen 5 core (48 KiB L1d, 1 MiB
//! L2) `KC` = 1024 ran `2048³` 15% faster than 256 on one thread and on
//! two (175–181 against 152–157 GFLOP/s, 333–352 against 287–304, best of
//! three interleaved rounds, three times, 2026-12-02), and `f64` with 512
//! 5% faster than with 128; `Linear(1024, 1024)` at batch 256 did not move
//! beyond the noise. A 12-row tile reads its `B` micro-panel at 128 bytes
//! per 12 cycles, which L2 sustains, and each `k` block's scratch round
//! trip (a tile's accumulators stored and reloaded, through L2 or L3) is
//! paid a quarter as often. On an Emerald Rapids core (2 MiB L2) 12 × 32
//! was measured against 6 × 64, 8 × 48 and 14 × 32 (all within 3%), and
//! `KC` 192–384 and `NC` 256–512 made no measurable difference. None of
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
                kc: if wide { 512 } else { 1024 },
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
