//! Pinned values: the first elements of each fill for fixed seeds, and a few
//! far-away elements. A change here is a change of every model built with
//! nninit; it must be deliberate and noted in the changelog.

use nninit::distributions::{Distribution, Normal, TruncatedNormal, Uniform};
use nninit::gemm;
use nninit::init;
use nninit::kernels::{Isa, Kernels};
use nninit::nn::{Linear, MSELoss, Module, SGD, SgdOptions};
use nninit::{Generator, Stream, Tensor};

#[path = "../examples/train_tied.rs"]
#[allow(dead_code, unreachable_pub)]
mod train_tied;

fn bits_at(
    dist: &dyn Distribution,
    kernels: Kernels,
    stream: Stream,
    offset: u64,
    n: usize,
) -> Vec<u32> {
    let mut out = vec![0.0f32; n];
    dist.fill_with(kernels, stream, offset, &mut out);
    out.iter().map(|x| x.to_bits()).collect()
}

/// Checks `want` on every instruction set this CPU has.
fn check(dist: &dyn Distribution, seed: u64, offset: u64, want: &[u32]) {
    let stream = Generator::new(seed).next_stream();
    for isa in Isa::supported() {
        let got = bits_at(dist, Kernels::new(isa).unwrap(), stream, offset, want.len());
        let shown: Vec<String> = got.iter().map(|b| format!("{b:#010x}")).collect();
        assert_eq!(
            got,
            want,
            "{isa} {dist:?} seed {seed} offset {offset}: got [{}]",
            shown.join(", ")
        );
    }
}

#[test]
fn stream_keys() {
    let mut g = Generator::new(0);
    assert_eq!(g.next_stream().key(), 0x4821_8226_ff3c_d4bf);
    assert_eq!(g.next_stream().key(), 0xa706_dd2f_4d19_7e6f);
    assert_eq!(
        Generator::new(42).next_stream().key(),
        0xb29e_d950_786f_5ae3
    );
    assert_eq!(
        Stream::from_key(7).substream(3).key(),
        0x3e2b_4df0_6a1e_cc9d
    );
}

#[test]
fn uniform_unit() {
    let u = Uniform::new(0.0, 1.0).unwrap();
    // 0.690385, 0.6404031, 0.2802648, 0.37990856, 0.14789003, 0.66351044, ...
    check(
        &u,
        42,
        0,
        &[
            0x3f30bd12, 0x3f23f175, 0x3e8f7ede, 0x3ec28360, 0x3e17707c, 0x3f29dbd2, 0x3e9fc7f2,
            0x3f04b1ad,
        ],
    );
    check(
        &u,
        42,
        16384 + 3,
        &[0x3e8aff34, 0x3e3ec800, 0x3ea66b94, 0x3f4e340c],
    );
    check(
        &u,
        42,
        1 << 33,
        &[0x3f7948d7, 0x3ee8aee0, 0x3edfc0bc, 0x3f20de3b],
    );
}

#[test]
fn uniform_scaled() {
    check(
        &Uniform::new(-10.0, 10.0).unwrap(),
        7,
        0,
        &[
            0x3fd4d56e, 0x403f7809, 0xc11efc12, 0x409c2eb2, 0xc019e756, 0x403c8d65, 0xc113ec04,
            0x3f2bc408,
        ],
    );
}

#[test]
fn normal_standard() {
    let n = Normal::new(0.0, 1.0).unwrap();
    // -0.37354925, 0.6933659, -0.62250274, -0.54908216, -0.9360037, ...
    check(
        &n,
        42,
        0,
        &[
            0xbebf41d9, 0x3f31806d, 0xbf1f5c57, 0xbf0c90a6, 0xbf6f9df0, 0x3f667168, 0xbf836dad,
            0x3f09280e,
        ],
    );
    check(
        &n,
        42,
        8,
        &[
            0xbf468a3c, 0x3f240819, 0x3fbbf83d, 0x3fa3a0b5, 0x3fdbb733, 0xbdce0435, 0xbf9084b4,
            0x3f81bae9,
        ],
    );
    check(
        &n,
        42,
        16384 + 3,
        &[0x3fab7824, 0xbfe7cb4b, 0xbfbfe528, 0x3edb26f6],
    );
    check(
        &n,
        42,
        1 << 33,
        &[0x3db36a67, 0x3eaa8592, 0x3fa15a5a, 0x3f43fae2],
    );
}

#[test]
fn normal_scaled() {
    check(
        &Normal::new(1.5, 0.01).unwrap(),
        7,
        0,
        &[
            0x3fbfdb72, 0x3fbed5bf, 0x3fbba8de, 0x3fc01dcd, 0x3fbe57a1, 0x3fbee0d4, 0x3fbf1d4e,
            0x3fbee44c,
        ],
    );
}

/// The bits of `init` applied to a zero tensor of `shape` with a fresh
/// generator of `seed`.
fn init_bits(
    shape: &[usize],
    seed: u64,
    init: impl FnOnce(&mut Tensor, &mut Generator),
) -> Vec<u32> {
    let mut t = Tensor::zeros(shape).unwrap();
    init(&mut t, &mut Generator::new(seed));
    t.as_slice().iter().map(|x| x.to_bits()).collect()
}

/// Compares pinned bits exactly. The `orthogonal_` pins hold on every CPU
/// and instruction set: the QR's GEMMs compute one fixed chain of fused
/// multiply-adds per element on every kernel (CI runs this file under each
/// `NNINIT_ISA` the machine has).
fn check_orthogonal(got: &[u32], want: &[u32], what: &str) {
    check_bits(got, want, &format!("{what} ({})", Kernels::active().isa()));
}

fn check_bits(got: &[u32], want: &[u32], what: &str) {
    let shown: Vec<String> = got.iter().map(|b| format!("{b:#010x}")).collect();
    assert_eq!(got, want, "{what}: got [{}]", shown.join(", "));
}

/// FNV-1a over the bits of every value: pins a whole tensor in one number.
fn fnv(values: &[f32]) -> u64 {
    values.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, v| {
        v.to_bits().to_le_bytes().iter().fold(h, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        })
    })
}

#[test]
fn orthogonal() {
    let got = init_bits(&[4, 3], 42, |t, g| {
        init::orthogonal_(t, 1.0, Some(g)).unwrap()
    });
    // -0.27058303, 0.43325058, -0.18848938, -0.39773157, -0.39627516, ...
    check_orthogonal(
        &got,
        &[
            0xbe8a89dc, 0x3eddd305, 0xbe41035c, 0xbecba379, 0xbecae494, 0x3f49aa74, 0xbf3e66f8,
            0x3eef114d, 0x3c57ea80, 0x3eeda28e, 0x3f2946fb, 0x3f161723,
        ],
        "orthogonal_ 4x3 seed 42",
    );
    // 64 x 64 spans two panels of the blocked QR.
    let got = init_bits(&[64, 64], 7, |t, g| {
        init::orthogonal_(t, 2.0, Some(g)).unwrap()
    });
    check_orthogonal(
        &got[..4],
        &[0xbceeb980, 0xbe5bf68a, 0xbf4542b8, 0x3e14ef26],
        "orthogonal_ 64x64 seed 7, first",
    );
    check_orthogonal(
        &got[64 * 64 - 4..],
        &[0x3e6a2e04, 0xbd5b28a0, 0xbe5ffe22, 0xbdafa510],
        "orthogonal_ 64x64 seed 7, last",
    );
}

#[test]
fn trunc_normal_default() {
    let d = TruncatedNormal::new(0.0, 1.0, -2.0, 2.0).unwrap();
    // 0.37928993, 0.44438416, 1.00892, -0.8272015, -1.3205206, ...
    check(
        &d,
        42,
        0,
        &[
            0x3ec2324a, 0x3ee38652, 0x3f81244a, 0xbf53c37a, 0xbfa906d2, 0x3ed40157, 0xbf7290c0,
            0x3f1cc859,
        ],
    );
    check(
        &d,
        42,
        16384 + 3,
        &[0xbf83666a, 0x3f9bde08, 0x3f6c6a09, 0x3e707a16],
    );
}

#[test]
fn sparse() {
    let got = init_bits(&[8, 4], 42, |t, g| {
        init::sparse_(t, 0.25, 1.0, Some(g)).unwrap()
    });
    // The normal_ values of seed 42 with two zeros per column.
    let want: [u32; 32] = [
        0xbebf41d9, 0x3f31806d, 0xbf1f5c57, 0xbf0c90a6, 0xbf6f9df0, 0x3f667168, 0xbf836dad,
        0x3f09280e, 0xbf468a3c, 0x00000000, 0x3fbbf83d, 0x3fa3a0b5, 0x3fdbb733, 0xbdce0435,
        0xbf9084b4, 0x00000000, 0x3ff5c551, 0xbfb5494c, 0x3ee60a8b, 0xbf9334b2, 0x00000000,
        0xbe039b02, 0x00000000, 0x00000000, 0x00000000, 0x3ecc7db1, 0x00000000, 0x3f044710,
        0x3f35704b, 0x00000000, 0x400c53e4, 0xbfaaf228,
    ];
    let shown: Vec<String> = got.iter().map(|b| format!("{b:#010x}")).collect();
    assert_eq!(got, want, "sparse_ 8x4 seed 42: got [{}]", shown.join(", "));
}

#[test]
fn trunc_normal_tail_windows() {
    // Far in the upper tail (scaled probabilities): 5.065785, 5.211285, ...
    check(
        &TruncatedNormal::new(0.0, 1.0, 5.0, 6.0).unwrap(),
        7,
        0,
        &[
            0x40a21ae9, 0x40a6c2d9, 0x40a00280, 0x40a2d5a1, 0x40a14a16, 0x40a262d0, 0x40a01dfb,
            0x40a7e971,
        ],
    );
    // Mirrored below the mean, [−30σ, −5σ]: 0.4933946, 0.4787393, ...
    check(
        &TruncatedNormal::new(1.0, 0.1, -2.0, 0.5).unwrap(),
        7,
        0,
        &[
            0x3efc9e38, 0x3ef51d51, 0x3efffc00, 0x3efb71ee, 0x3efdedd9, 0x3efc2a99, 0x3effcfe0,
            0x3ef3408d,
        ],
    );
    // A narrow window (the local-series kernel): 1.0002915, 1.0006751, ...
    check(
        &TruncatedNormal::new(0.0, 1.0, 1.0, 1.001).unwrap(),
        7,
        0,
        &[
            0x3f80098d, 0x3f80161f, 0x3f80000d, 0x3f800c30, 0x3f800638, 0x3f800a9a, 0x3f80009e,
            0x3f801806,
        ],
    );
}

/// A `Linear` forward, small (the unpacked path) and large enough for the
/// packed, blocked one (`k` past the `k` block, edge tiles), on every
/// instruction set this CPU has.
#[test]
fn linear_forward() {
    let mut g = Generator::new(42);
    let small = Linear::with_options(5, 3, true, Some(&mut g)).unwrap();
    let x = Tensor::randn(&[2, 5], Some(&mut g)).unwrap();
    let big = Linear::with_options(600, 70, true, Some(&mut g)).unwrap();
    let xb = Tensor::randn(&[33, 600], Some(&mut g)).unwrap();
    let (w, b) = (
        small.weight.data().unwrap(),
        small.bias.as_ref().unwrap().data().unwrap(),
    );
    let (wb, bb) = (
        big.weight.data().unwrap(),
        big.bias.as_ref().unwrap().data().unwrap(),
    );
    for isa in Isa::supported() {
        let k = Kernels::new(isa).unwrap();
        let y = gemm::linear_with(k, &x, &w, Some(&b)).unwrap();
        check_bits(
            &bits(y.as_slice()),
            &LINEAR_SMALL,
            &format!("Linear(5, 3) forward ({isa})"),
        );
        let y = gemm::linear_with(k, &xb, &wb, Some(&bb)).unwrap();
        let y = y.as_slice();
        let ends: Vec<u32> = bits(&y[..4])
            .into_iter()
            .chain(bits(&y[y.len() - 4..]))
            .collect();
        check_bits(
            &ends,
            &LINEAR_BIG_ENDS,
            &format!("Linear(600, 70) forward ({isa})"),
        );
        assert_eq!(
            fnv(y),
            LINEAR_BIG_FNV,
            "Linear(600, 70) forward ({isa}): hash {:#018x}",
            fnv(y)
        );
    }
}

/// One SGD step (momentum 0.9) of `examples/train_tied.rs`'s tied MLP on
/// its regression data: the loss, the updated shared layer and a hash of
/// every parameter after the step. Forward, backward and the update all go
/// through the active instruction set's GEMM (CI runs each `NNINIT_ISA`).
#[test]
fn training_step() {
    let mut g = Generator::new(2024);
    let mut net = train_tied::shared_mlp(&mut g).unwrap();
    let (x, y) = train_tied::regression_data(256, &mut g).unwrap();
    let mut opt = SGD::with_options(
        net.parameters(),
        SgdOptions {
            lr: 0.05,
            momentum: 0.9,
            ..SgdOptions::default()
        },
    )
    .unwrap();
    let mut loss_fn = MSELoss::new();
    net.train(true);
    opt.zero_grad();
    let pred = net.forward(&x).unwrap();
    let loss = loss_fn.forward(&pred, &y).unwrap().item().unwrap();
    net.backward(&loss_fn.backward().unwrap()).unwrap();
    opt.step().unwrap();
    let isa = Kernels::active().isa();
    assert_eq!(
        loss.to_bits(),
        TRAIN_LOSS,
        "loss ({isa}): {loss} = {:#010x}",
        loss.to_bits()
    );
    let mut all = Vec::new();
    for (name, p) in net.named_parameters() {
        let d = p.data().unwrap();
        if name == "2.weight" {
            check_bits(
                &bits(&d.as_slice()[..4]),
                &TRAIN_SHARED_W,
                &format!("2.weight after one step ({isa})"),
            );
        }
        all.extend_from_slice(d.as_slice());
    }
    assert_eq!(
        fnv(&all),
        TRAIN_PARAMS_FNV,
        "parameters after one step ({isa}): hash {:#018x}",
        fnv(&all)
    );
}

/// `orthogonal_` of a size that runs the packed GEMM with several `k`
/// blocks, the look-ahead and parallel tasks: the same hash on 1, 2 and 3
/// threads and on every instruction set.
#[test]
fn orthogonal_large() {
    for (shape, want) in [
        ([300, 257], ORTHO_300X257_FNV),
        ([130, 520], ORTHO_130X520_FNV),
    ] {
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut t = Tensor::zeros(&shape).unwrap();
            pool.install(|| init::orthogonal_(&mut t, 1.0, Some(&mut Generator::new(5))).unwrap());
            let h = fnv(t.as_slice());
            let isa = Kernels::active().isa();
            assert_eq!(
                h, want,
                "orthogonal_ {shape:?} on {threads} threads ({isa}): hash {h:#018x}"
            );
        }
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

const LINEAR_SMALL: [u32; 6] = [
    0xbf059266, 0xbedef542, 0x3f2a7389, 0x3f79ffce, 0xbe96b152, 0x3f44fb96,
];
const LINEAR_BIG_ENDS: [u32; 8] = [
    0xbf5593e4, 0x3da29f9c, 0x3c3cefa2, 0xbf0fa907, 0x3e2fc2ad, 0x3f5537b7, 0x3ef68326, 0xbf171b07,
];
const LINEAR_BIG_FNV: u64 = 0x7f99_d512_0725_7a4a;
const TRAIN_LOSS: u32 = 0x3f4a5721;
const TRAIN_SHARED_W: [u32; 4] = [0xbd125e13, 0xbe1915db, 0x3e8ba779, 0x3e35a2b8];
const TRAIN_PARAMS_FNV: u64 = 0x813c_0e15_b40c_d67f;
const ORTHO_300X257_FNV: u64 = 0xf077_499d_59a4_4698;
const ORTHO_130X520_FNV: u64 = 0x1151_cb11_b300_7535;
