//! Where a fill kernel's time goes on this core, without hardware counters
//! (`perf stat` is not available on the VMs this crate is measured on, and
//! valgrind does not decode AVX-512):
//!
//! * the core clock, from a chain of dependent 64-bit `imul`s (3 cycles
//!   each on the x86 cores in use; a chain of `add`s with an immediate does
//!   not work, recent Intel cores fold those at rename);
//! * each fill's rate on a buffer that stays in L2 (256 KiB), so memory
//!   plays no part, on every instruction set the CPU has, and as cycles per
//!   value at the clock measured just before each run (best of seven);
//! * the throughput of the instructions that set the floor: FMA, multiply,
//!   add, integer add, logic, shifts, 64-bit rotate, conversion, a
//!   two-source permute, square root and division, on 512-bit registers
//!   (AVX-512 CPUs) and 256-bit ones;
//! * and, on 512 bits, pairs of them interleaved: two kinds that reach
//!   twice the rate of either alone run on different ports, two that stay
//!   at the rate of one alone share their ports (how the transforms'
//!   operations divide among the ports).
//!
//! ```text
//! cargo run --release --example fill_profile
//! ```
//!
//! The instruction mix of the compiled loops comes from the disassembly:
//! `objdump -d --no-show-raw-insn target/release/examples/fill_profile >
//! /tmp/d.txt && python3 scripts/loop_mix.py /tmp/d.txt avx512::fill`
//! (README, "Where the time goes").

use nninit::Stream;
use nninit::distributions::{Distribution, Normal, TruncatedNormal, Uniform};
use nninit::kernels::{Isa, Kernels};
use std::time::Instant;

/// Values per buffer: 256 KiB, inside L2 on every core in use.
const LEN: usize = 1 << 16;

/// A fill of a buffer from a stream offset.
type Fill<'a> = &'a dyn Fn(&mut [f32], u64);

/// The best of seven runs of `fill` over `total` values: nanoseconds per
/// value, and cycles per value at the clock measured just before that run
/// (the hosts are shared, and their clock moves).
fn per_value(fill: Fill<'_>, buf: &mut [f32], total: usize) -> (f64, f64) {
    let reps = total.div_ceil(buf.len());
    let (mut best_ns, mut best_cycles) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..7 {
        let ghz = clock_ghz(20_000_000);
        let t0 = Instant::now();
        for r in 0..reps {
            fill(buf, (r * buf.len()) as u64);
        }
        let ns = t0.elapsed().as_secs_f64() * 1e9 / (reps * buf.len()) as f64;
        best_ns = best_ns.min(ns);
        best_cycles = best_cycles.min(ns * ghz);
    }
    (best_ns, best_cycles)
}

/// The core clock in GHz (NaN off x86-64).
fn clock_ghz(n: u64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    return x86::clock_ghz(n);
    #[cfg(not(target_arch = "x86_64"))]
    return f64::NAN;
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::time::Instant;

    /// The core clock in GHz: `n` dependent `imul`s, 3 cycles each.
    pub(crate) fn clock_ghz(n: u64) -> f64 {
        let mut x = std::hint::black_box(3u64);
        let y = std::hint::black_box(5u64);
        let t0 = Instant::now();
        for _ in 0..n / 4 {
            // SAFETY: four register-only multiplies; no memory, no stack.
            unsafe {
                std::arch::asm!(
                    "imul {0}, {1}", "imul {0}, {1}", "imul {0}, {1}", "imul {0}, {1}",
                    inout(reg) x, in(reg) y, options(nomem, nostack, pure)
                );
            }
        }
        std::hint::black_box(x);
        3.0 * n as f64 / t0.elapsed().as_secs_f64() / 1e9
    }

    /// Instructions per timing loop.
    const N: usize = 50_000_000;

    /// Applies `$op` (an expression in `$x`) to eight independent registers
    /// of class `$class`, `N / 8` times, and returns the seconds per
    /// instruction (throughput, not latency). An empty `asm!` per register
    /// keeps the compiler from folding the chains, without a trip through
    /// memory.
    macro_rules! throughput {
        ($class:ident, $init:expr, $x:ident => $op:expr) => {{
            let mut r = [$init; 8];
            let t0 = Instant::now();
            for _ in 0..N / 8 {
                for v in &mut r {
                    let $x = *v;
                    *v = $op;
                    // SAFETY: an empty instruction string; the register is
                    // only declared read and written.
                    unsafe {
                        std::arch::asm!(
                            "/* {0} */",
                            inout($class) * v,
                            options(nomem, nostack, pure)
                        )
                    };
                }
            }
            std::hint::black_box(r);
            t0.elapsed().as_secs_f64() / N as f64
        }};
    }

    /// Applies `$a` (in `$x`) and `$b` (in `$y`) interleaved to eight
    /// independent registers each, `N / 8` times, and returns the seconds
    /// per instruction of the mix.
    macro_rules! pair {
        ($ia:expr, $x:ident => $a:expr, $ib:expr, $y:ident => $b:expr) => {{
            let mut r = [$ia; 8];
            let mut q = [$ib; 8];
            let t0 = Instant::now();
            for _ in 0..N / 8 {
                for (u, w) in r.iter_mut().zip(&mut q) {
                    let $x = *u;
                    *u = $a;
                    let $y = *w;
                    *w = $b;
                    // SAFETY: an empty instruction string; the registers
                    // are only declared read and written.
                    unsafe {
                        std::arch::asm!(
                            "/* {0} {1} */",
                            inout(zmm_reg) * u,
                            inout(zmm_reg) * w,
                            options(nomem, nostack, pure)
                        )
                    };
                }
            }
            std::hint::black_box((r, q));
            t0.elapsed().as_secs_f64() / (2 * N) as f64
        }};
    }

    /// Seconds per instruction of the 512-bit operations, alone and in
    /// pairs.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn zmm() -> Vec<(&'static str, f64)> {
        let b = _mm512_set1_ps(1.000_000_1);
        let bi = _mm512_castps_si512(b);
        let one = _mm512_set1_ps(1.5);
        let onei = _mm512_castps_si512(one);
        let idx = _mm512_set_epi32(0, 17, 2, 19, 4, 21, 6, 23, 8, 25, 10, 27, 12, 29, 14, 31);
        let cvt = |x: __m512i| _mm512_castps_si512(_mm512_cvtepi32_ps(x));
        vec![
            (
                "vfmadd ps",
                throughput!(zmm_reg, one, x => _mm512_fmadd_ps(x, b, b)),
            ),
            (
                "vmulps",
                throughput!(zmm_reg, one, x => _mm512_mul_ps(x, b)),
            ),
            (
                "vaddps",
                throughput!(zmm_reg, one, x => _mm512_add_ps(x, b)),
            ),
            (
                "vpaddd",
                throughput!(zmm_reg, onei, x => _mm512_add_epi32(x, bi)),
            ),
            (
                "vpxor",
                throughput!(zmm_reg, onei, x => _mm512_xor_si512(x, bi)),
            ),
            (
                "vpsrld",
                throughput!(zmm_reg, onei, x => _mm512_srli_epi32::<1>(x)),
            ),
            (
                "vprolq",
                throughput!(zmm_reg, onei, x => _mm512_rol_epi64::<23>(x)),
            ),
            ("vcvtdq2ps", throughput!(zmm_reg, onei, x => cvt(x))),
            (
                "vpermt2d",
                throughput!(zmm_reg, onei, x => _mm512_permutex2var_epi32(x, idx, bi)),
            ),
            ("vsqrtps", throughput!(zmm_reg, one, x => _mm512_sqrt_ps(x))),
            (
                "vdivps",
                throughput!(zmm_reg, one, x => _mm512_div_ps(b, x)),
            ),
            (
                "fma+add",
                pair!(one, x => _mm512_fmadd_ps(x, b, b), one, y => _mm512_add_ps(y, b)),
            ),
            (
                "fma+pxor",
                pair!(one, x => _mm512_fmadd_ps(x, b, b), onei, y => _mm512_xor_si512(y, bi)),
            ),
            (
                "fma+psrld",
                pair!(one, x => _mm512_fmadd_ps(x, b, b), onei, y => _mm512_srli_epi32::<1>(y)),
            ),
            (
                "fma+cvt",
                pair!(one, x => _mm512_fmadd_ps(x, b, b), onei, y => cvt(y)),
            ),
            (
                "fma+prolq",
                pair!(one, x => _mm512_fmadd_ps(x, b, b), onei, y => _mm512_rol_epi64::<23>(y)),
            ),
            (
                "fma+permt2d",
                pair!(one, x => _mm512_fmadd_ps(x, b, b), onei, y => _mm512_permutex2var_epi32(y, idx, bi)),
            ),
            (
                "add+cvt",
                pair!(one, x => _mm512_add_ps(x, b), onei, y => cvt(y)),
            ),
            (
                "add+psrld",
                pair!(one, x => _mm512_add_ps(x, b), onei, y => _mm512_srli_epi32::<1>(y)),
            ),
            (
                "psrld+prolq",
                pair!(onei, x => _mm512_srli_epi32::<1>(x), onei, y => _mm512_rol_epi64::<23>(y)),
            ),
        ]
    }

    /// Seconds per instruction of the 256-bit operations (rotates are
    /// AVX-512VL on 256 bits, so they are left out).
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn ymm() -> [(&'static str, f64); 4] {
        let b = _mm256_set1_ps(1.000_000_1);
        let bi = _mm256_castps_si256(b);
        let one = _mm256_set1_ps(1.5);
        let onei = _mm256_castps_si256(one);
        [
            (
                "vfmadd ps",
                throughput!(ymm_reg, one, x => _mm256_fmadd_ps(x, b, b)),
            ),
            (
                "vpxor",
                throughput!(ymm_reg, onei, x => _mm256_xor_si256(x, bi)),
            ),
            ("vsqrtps", throughput!(ymm_reg, one, x => _mm256_sqrt_ps(x))),
            (
                "vdivps",
                throughput!(ymm_reg, one, x => _mm256_div_ps(b, x)),
            ),
        ]
    }
}

fn main() {
    let ghz = clock_ghz(200_000_000);
    println!("core clock: {ghz:.2} GHz (dependent imul chain)");

    let stream = Stream::from_key(1);
    let uniform = Uniform::new(-1.0, 1.0).expect("valid bounds");
    let normal = Normal::new(0.0, 1.0).expect("valid std");
    let trunc = TruncatedNormal::new(0.0, 1.0, -2.0, 2.0).expect("valid window");
    let trunc_tail = TruncatedNormal::new(0.0, 1.0, 2.0, 3.0).expect("valid window");
    let mut buf = vec![0f32; LEN];
    println!("\nfills into {} KiB (in L2), 1 thread:", LEN * 4 / 1024);
    for isa in Isa::supported() {
        let k = Kernels::new(isa).expect("supported ISA");
        let rows: [(&str, Fill<'_>); 4] = [
            ("uniform", &|b, o| uniform.fill_with(k, stream, o, b)),
            ("normal", &|b, o| normal.fill_with(k, stream, o, b)),
            ("trunc_normal [-2, 2]", &|b, o| {
                trunc.fill_with(k, stream, o, b)
            }),
            ("trunc_normal [2, 3]", &|b, o| {
                trunc_tail.fill_with(k, stream, o, b)
            }),
        ];
        // The portable path is about 100 times slower: fewer values.
        let total = if isa == Isa::Scalar { 1 << 22 } else { 1 << 26 };
        for (name, fill) in rows {
            let (ns, cycles) = per_value(fill, &mut buf, total);
            println!(
                "  {:<7} {name:<21} {:>6.3} G values/s  {cycles:>6.2} cycles/value",
                isa.name(),
                1.0 / ns,
            );
        }
    }

    #[cfg(target_arch = "x86_64")]
    {
        println!(
            "\ninstruction throughput (8 independent chains; a pair: 8 of each, interleaved), cycles per instruction:"
        );
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F was detected just above.
            for (name, s) in unsafe { x86::zmm() } {
                println!("  {name:<12} zmm  {:>6.2}", s * ghz * 1e9);
            }
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: AVX2 and FMA were detected just above.
            for (name, s) in unsafe { x86::ymm() } {
                println!("  {name:<12} ymm  {:>6.2}", s * ghz * 1e9);
            }
        }
    }
}
