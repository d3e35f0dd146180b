//! The element-wise random initializers (`uniform_`, `normal_`,
//! `trunc_normal_`, `xavier_*`, `kaiming_*`): a KS test at n >= 1e6 against
//! the distribution their parameters and fans imply, over several shapes,
//! modes, nonlinearities and gains; sharded initialization equal to the whole
//! for several splits and thread counts; and value pins.

mod common;

use common::{assert_ks, bits, phi, with_threads};
use nninit::init::{self, FanMode, Init, Nonlinearity};
use nninit::{Generator, Tensor};

/// `U(-bound, bound)`'s CDF.
fn uniform_cdf(bound: f64) -> impl Fn(f64) -> f64 {
    move |x| ((x + bound) / (2.0 * bound)).clamp(0.0, 1.0)
}

/// `N(0, std²)`'s CDF.
fn normal_cdf(std: f64) -> impl Fn(f64) -> f64 {
    move |x| phi(x / std)
}

fn drawn(shape: &[usize], seed: u64, init: &Init) -> Tensor {
    init.tensor(shape, Some(&mut Generator::new(seed))).unwrap()
}

#[test]
fn xavier_matches_its_distribution_over_shapes_and_gains() {
    // (shape, fan_in, fan_out): conv shapes multiply by the receptive field.
    let cases: [(&[usize], usize, usize); 3] = [
        (&[1024, 1024], 1024, 1024),
        (&[2048, 512], 512, 2048),
        (&[64, 32, 23, 23], 32 * 529, 64 * 529),
    ];
    for (i, &(shape, fan_in, fan_out)) in cases.iter().enumerate() {
        for gain in [1.0, 5.0 / 3.0, 0.25] {
            let std = gain * (2.0 / (fan_in + fan_out) as f64).sqrt();
            let u = drawn(shape, i as u64, &Init::XavierUniform { gain });
            assert!(u.numel() >= 1_000_000);
            assert_ks(
                u.as_slice(),
                uniform_cdf(3f64.sqrt() * std),
                &format!("xavier_uniform_ {shape:?} gain {gain}"),
            );
            let n = drawn(shape, 10 + i as u64, &Init::XavierNormal { gain });
            assert_ks(
                n.as_slice(),
                normal_cdf(std),
                &format!("xavier_normal_ {shape:?} gain {gain}"),
            );
        }
    }
}

#[test]
fn kaiming_matches_its_distribution_over_modes_and_nonlinearities() {
    let shape = [512, 256, 3, 3]; // fan_in 2304, fan_out 4608; 1.18M values
    let cases = [
        (0.0, Nonlinearity::Relu, 2f64.sqrt()),
        (0.2, Nonlinearity::LeakyRelu, (2.0 / 1.04f64).sqrt()),
        (5f64.sqrt(), Nonlinearity::LeakyRelu, (2.0 / 6.0f64).sqrt()),
        (0.0, Nonlinearity::Tanh, 5.0 / 3.0),
        (0.0, Nonlinearity::Selu, 0.75),
        (0.0, Nonlinearity::Linear, 1.0),
    ];
    for (k, &(a, nonlinearity, gain)) in cases.iter().enumerate() {
        for (mode, fan) in [(FanMode::FanIn, 2304.0), (FanMode::FanOut, 4608.0)] {
            let std = gain / f64::sqrt(fan);
            let what = format!("{nonlinearity} a={a} {mode}");
            let u = drawn(
                &shape,
                k as u64,
                &Init::KaimingUniform {
                    a,
                    mode,
                    nonlinearity,
                },
            );
            assert_ks(
                u.as_slice(),
                uniform_cdf(3f64.sqrt() * std),
                &format!("kaiming_uniform_ {what}"),
            );
            let n = drawn(
                &shape,
                100 + k as u64,
                &Init::KaimingNormal {
                    a,
                    mode,
                    nonlinearity,
                },
            );
            assert_ks(
                n.as_slice(),
                normal_cdf(std),
                &format!("kaiming_normal_ {what}"),
            );
        }
    }
}

#[test]
fn uniform_and_normal_match_their_parameters() {
    let shape = [1000, 1000];
    let u = drawn(&shape, 1, &Init::Uniform { a: -3.0, b: 5.0 });
    assert_ks(
        u.as_slice(),
        |x| ((x + 3.0) / 8.0).clamp(0.0, 1.0),
        "uniform_(-3, 5)",
    );
    let n = drawn(
        &shape,
        2,
        &Init::Normal {
            mean: 2.0,
            std: 0.5,
        },
    );
    assert_ks(n.as_slice(), |x| phi((x - 2.0) / 0.5), "normal_(2, 0.5)");
}

#[test]
fn shards_equal_the_whole_for_every_elementwise_init() {
    let shape = [300, 701];
    let numel = 300 * 701;
    let inits = [
        Init::Uniform { a: -1.0, b: 2.0 },
        Init::Normal {
            mean: 0.5,
            std: 2.0,
        },
        Init::TruncNormal {
            mean: 0.0,
            std: 1.0,
            a: -0.5,
            b: 3.0,
        },
        Init::Constant { val: 0.25 },
        Init::XavierUniform { gain: 2.0 },
        Init::XavierNormal { gain: 1.0 },
        Init::KaimingUniform {
            a: 5f64.sqrt(),
            mode: FanMode::FanIn,
            nonlinearity: Nonlinearity::LeakyRelu,
        },
        Init::KaimingNormal {
            a: 0.0,
            mode: FanMode::FanOut,
            nonlinearity: Nonlinearity::Relu,
        },
    ];
    // Row shards, uneven element ranges, and single elements.
    let splits: [&[usize]; 3] = [
        &[0, 100 * 701, 200 * 701, numel],
        &[0, 1, 16_383, 16_385, 70_000, numel - 1, numel],
        &[0, numel / 2, numel],
    ];
    for init in &inits {
        let whole = drawn(&shape, 9, init);
        for threads in [1, 2, 3] {
            for cuts in splits {
                let mut joined = Vec::with_capacity(numel);
                for w in cuts.windows(2) {
                    let mut shard = vec![0.0f32; w[1] - w[0]];
                    let stream = Generator::new(9).next_stream();
                    with_threads(threads, || {
                        init.fill_shard(&shape, w[0] as u64, &mut shard, stream)
                            .unwrap()
                    });
                    joined.extend_from_slice(&shard);
                }
                assert!(
                    bits(&joined) == bits(whole.as_slice()),
                    "{init:?}: shards {cuts:?} on {threads} threads differ from the whole"
                );
            }
        }
    }
}

#[test]
fn pinned_values() {
    // Catch a change of formula or stream: the first values for seed 42.
    let pin = |init: Init, shape: &[usize]| -> Vec<u32> {
        bits(&drawn(shape, 42, &init).as_slice()[..4])
    };
    let got = [
        pin(Init::XavierUniform { gain: 1.0 }, &[64, 32]),
        pin(Init::XavierNormal { gain: 1.0 }, &[64, 32]),
        pin(
            Init::KaimingUniform {
                a: 5f64.sqrt(),
                mode: FanMode::FanIn,
                nonlinearity: Nonlinearity::LeakyRelu,
            },
            &[64, 32],
        ),
        pin(
            Init::KaimingNormal {
                a: 0.0,
                mode: FanMode::FanOut,
                nonlinearity: Nonlinearity::Relu,
            },
            &[64, 32, 3, 3],
        ),
    ];
    let want: [[u32; 4]; 4] = PINS;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let shown: Vec<String> = g.iter().map(|b| format!("{b:#010x}")).collect();
        assert_eq!(g[..], w[..], "pin {i}: got [{}]", shown.join(", "));
    }
    // Tensor-level wrappers agree with the values.
    let mut t = Tensor::zeros(&[64, 32]).unwrap();
    init::xavier_uniform_(&mut t, 1.0, Some(&mut Generator::new(42))).unwrap();
    assert_eq!(bits(&t.as_slice()[..4]), PINS[0]);
}

/// xavier_uniform_ [64, 32], xavier_normal_ [64, 32], kaiming_uniform_(a = √5)
/// [64, 32], kaiming_normal_(fan_out, relu) [64, 32, 3, 3]; seed 42.
const PINS: [[u32; 4]; 4] = [
    [0x3dc2f448, 0x3d8fc5d4, 0xbde10244, 0xbd75f280],
    [0xbd5cd845, 0x3dccf615, 0xbdb8038e, 0xbda24f7e],
    [0x3d89da7c, 0x3d4b534d, 0xbd9f1af4, 0xbd2de936],
    [0xbcb451ad, 0x3d2759a5, 0xbd163f29, 0xbd0486a7],
];
