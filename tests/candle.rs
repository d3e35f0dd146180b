//! The candle backend (`nninit::candle`, cargo feature `candle`):
//! determinism by name, the laws of the hints by KS at n >= 1e6, names,
//! dtypes, the torch-exact mode against nninit's own torch-exact tensors,
//! and shards.
#![cfg(feature = "candle")]

mod common;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::init::{FanInOut, NonLinearity, NormalOrUniform};
use candle_nn::{Conv2dConfig, VarBuilder};
use nninit::candle::{
    InitBackend, VarRegistry, conv2d_torch, fill_shard, init_for, linear_torch, stream_for,
};
use nninit::init::{FanMode, Init, Nonlinearity};
use nninit::{Generator, Tensor as NTensor};

use common::{assert_ks, bits, phi};

fn cpu() -> Device {
    Device::Cpu
}

fn keyed(seed: u64) -> (VarBuilder<'static>, VarRegistry) {
    let backend = InitBackend::keyed(seed);
    let vars = backend.registry();
    (backend.into_var_builder(DType::F32, &cpu()), vars)
}

/// An error's message without the backtrace candle appends when
/// `RUST_BACKTRACE` is set.
fn first_line(e: &str) -> &str {
    e.lines().next().unwrap_or("")
}

fn values(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// A small MLP and conv net, the layers built in `order`.
fn build(vb: &VarBuilder<'_>, order: &[usize]) {
    for &i in order {
        match i {
            0 => drop(candle_nn::linear(20, 30, vb.pp("mlp").pp(0)).unwrap()),
            1 => drop(candle_nn::linear(30, 5, vb.pp("mlp").pp(1)).unwrap()),
            2 => drop(
                candle_nn::conv2d(3, 8, 3, Default::default(), vb.pp("conv").pp("c1")).unwrap(),
            ),
            3 => drop(candle_nn::embedding(50, 16, vb.pp("emb")).unwrap()),
            4 => drop(candle_nn::layer_norm(16, 1e-5, vb.pp("norm")).unwrap()),
            _ => unreachable!(),
        }
    }
}

/// `name -> bits` of every variable of a registry.
fn snapshot(vars: &VarRegistry) -> Vec<(String, Vec<u32>)> {
    let mut all: Vec<_> = vars
        .vars()
        .into_iter()
        .map(|(n, v)| (n, bits(&values(v.as_tensor()))))
        .collect();
    all.sort();
    all
}

#[test]
fn same_seed_same_bits_different_seed_different_bits() {
    let (a, va) = keyed(11);
    let (b, vb) = keyed(11);
    let (c, vc) = keyed(12);
    build(&a, &[0, 1, 2, 3, 4]);
    build(&b, &[0, 1, 2, 3, 4]);
    build(&c, &[0, 1, 2, 3, 4]);
    assert_eq!(snapshot(&va), snapshot(&vb));
    let (sa, sc) = (snapshot(&va), snapshot(&vc));
    for ((na, a), (nc, c)) in sa.iter().zip(&sc) {
        assert_eq!(na, nc);
        let constant = na.starts_with("norm");
        assert_eq!(a == c, constant, "{na}");
    }
}

#[test]
fn construction_order_does_not_change_the_weights() {
    let (a, va) = keyed(5);
    let (b, vb) = keyed(5);
    build(&a, &[0, 1, 2, 3, 4]);
    build(&b, &[4, 3, 2, 1, 0]);
    assert_eq!(snapshot(&va), snapshot(&vb));
    // Different names, different values, even for the same shape and hint.
    let w0 = values(&va.get("mlp.0.bias").unwrap());
    let (x, _) = keyed(5);
    let other = x
        .pp("mlp")
        .pp(9)
        .get_with_hints(
            30,
            "bias",
            candle_nn::Init::Uniform {
                lo: -1.0 / 20f64.sqrt(),
                up: 1.0 / 20f64.sqrt(),
            },
        )
        .unwrap();
    assert_ne!(bits(&w0), bits(&values(&other)));
}

#[test]
fn the_keyed_mode_does_not_depend_on_the_thread_count() {
    let one = common::with_threads(1, || {
        let (vb, vars) = keyed(3);
        build(&vb, &[0, 1, 2, 3, 4]);
        snapshot(&vars)
    });
    let four = common::with_threads(4, || {
        let (vb, vars) = keyed(3);
        build(&vb, &[0, 1, 2, 3, 4]);
        snapshot(&vars)
    });
    assert_eq!(one, four);
}

#[test]
fn names_are_the_full_dotted_paths_in_insertion_order() {
    let (vb, vars) = keyed(0);
    build(&vb, &[2, 0, 4]);
    assert_eq!(
        vars.names(),
        [
            "conv.c1.weight",
            "conv.c1.bias",
            "mlp.0.weight",
            "mlp.0.bias",
            "norm.weight",
            "norm.bias"
        ]
    );
    assert_eq!(vars.len(), 6);
    assert!(vb.pp("mlp").pp(0).contains_tensor("weight"));
    assert!(!vb.contains_tensor("mlp.1.weight"));
    // The values are those of the full name's stream.
    let w = values(&vars.get("mlp.0.weight").unwrap());
    let want = Init::KaimingNormal {
        a: 0.0,
        mode: FanMode::FanIn,
        nonlinearity: Nonlinearity::Relu,
    };
    let mut out = vec![0.0; 30 * 20];
    want.fill_shard(&[30, 20], 0, &mut out, stream_for(0, "mlp.0.weight"))
        .unwrap();
    assert_eq!(bits(&w), bits(&out));
}

#[test]
fn a_name_asked_for_again_is_the_same_variable() {
    let (vb, vars) = keyed(1);
    let a = vb
        .pp("tied")
        .get_with_hints((4, 3), "w", candle_nn::init::DEFAULT_KAIMING_NORMAL);
    let b = vb.get_with_hints((4, 3), "tied.w", candle_nn::Init::Const(7.0));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.id(), b.id(), "one variable, one storage");
    assert_eq!(vars.len(), 1);
    let unchecked = vb.get_unchecked("tied.w").unwrap();
    assert_eq!(bits(&values(&unchecked)), bits(&values(&a)));
    let e = vb.get_unchecked("missing").unwrap_err().to_string();
    assert!(e.contains("missing"), "{e}");

    let e = vb
        .get_with_hints((3, 4), "tied.w", candle_nn::Init::Const(0.0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("shape mismatch for tied.w"), "{e}");
    assert!(e.contains("[3, 4]") && e.contains("[4, 3]"), "{e}");
}

#[test]
fn bad_hints_and_shapes_are_errors_naming_the_variable() {
    let (vb, vars) = keyed(1);
    let e = vb
        .pp("enc")
        .get_with_hints(
            8,
            "b",
            candle_nn::Init::Randn {
                mean: 0.0,
                stdev: -1.0,
            },
        )
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("nninit: variable enc.b: "), "{e}");
    let e = vb
        .get_with_hints(8, "k", candle_nn::init::DEFAULT_KAIMING_UNIFORM)
        .unwrap_err()
        .to_string();
    assert_eq!(
        first_line(&e),
        "nninit: variable k: Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
    );
    let e = vb
        .get_with_hints_dtype(
            (2, 2),
            "ints",
            candle_nn::Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
            DType::U32,
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("variable ints") && e.contains("float dtype"),
        "{e}"
    );
    let e = vb
        .get_with_hints((2, 2), "huge", candle_nn::Init::Const(1e300))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("nninit: variable huge: "), "{e}");
    assert!(vars.is_empty(), "a failed variable is not recorded");
    // Zero-element variables are no-ops, even for a Kaiming hint.
    let empty = vb
        .get_with_hints(0, "empty", candle_nn::init::DEFAULT_KAIMING_NORMAL)
        .unwrap();
    assert_eq!(empty.dims(), &[0]);
    let explicit = candle_nn::Init::Kaiming {
        dist: NormalOrUniform::Normal,
        fan: FanInOut::FanIn,
        non_linearity: NonLinearity::ExplicitGain(f64::NAN),
    };
    assert!(vb.get_with_hints((2, 2), "nan_gain", explicit).is_err());
    assert!(
        conv2d_torch(
            4,
            4,
            3,
            Conv2dConfig {
                groups: 0,
                ..Default::default()
            },
            vb.pp("c")
        )
        .is_err()
    );
    assert!(conv2d_torch(4, 4, 0, Default::default(), vb.pp("c")).is_err());
}

#[test]
fn const_hints_fill_the_value_in_every_dtype() {
    let (vb, _) = keyed(0);
    let t = vb
        .get_with_hints((3, 5), "c", candle_nn::Init::Const(0.25))
        .unwrap();
    assert!(values(&t).iter().all(|&x| x == 0.25));
    for dtype in [DType::F16, DType::BF16, DType::F64, DType::U32, DType::I64] {
        let name = format!("c_{}", dtype.as_str());
        let t = vb
            .get_with_hints_dtype(7, &name, candle_nn::Init::Const(3.0), dtype)
            .unwrap();
        assert_eq!(t.dtype(), dtype);
        assert!(values(&t).iter().all(|&x| x == 3.0), "{name}");
    }
    // The layer norm's ones and zeros.
    let ln = candle_nn::layer_norm(4, 1e-5, vb.pp("ln")).unwrap();
    let y = ln
        .forward(&Tensor::new(&[[1f32, 2.0, 3.0, 4.0]], &cpu()).unwrap())
        .unwrap();
    let y = values(&y);
    assert!((y.iter().sum::<f32>()).abs() < 1e-5);
}

#[test]
fn other_dtypes_are_the_f32_values_converted() {
    let hint = candle_nn::Init::Randn {
        mean: 0.0,
        stdev: 1.0,
    };
    let (vb, _) = keyed(9);
    let f32s = values(&vb.get_with_hints(1000, "x", hint).unwrap());
    for (dtype, convert) in [
        (DType::F64, (|x| x) as fn(f32) -> f32),
        (DType::F16, |x| half::f16::from_f32(x).to_f32()),
        (DType::BF16, |x| half::bf16::from_f32(x).to_f32()),
    ] {
        // A fresh builder (same seed) in `dtype`: the name's values, converted.
        let (other, _) = keyed(9);
        let t = other
            .to_dtype(dtype)
            .get_with_hints(1000, "x", hint)
            .unwrap();
        assert_eq!(t.dtype(), dtype);
        let want: Vec<f32> = f32s.iter().map(|&x| convert(x)).collect();
        assert_eq!(bits(&values(&t)), bits(&want), "{dtype:?}");
    }
    // A model in bf16 runs.
    let (vb, _) = keyed(9);
    let vb = vb.set_dtype(DType::BF16);
    let l = candle_nn::linear(4, 2, vb.pp("l")).unwrap();
    assert_eq!(l.weight().dtype(), DType::BF16);
    let y = l
        .forward(&Tensor::ones((1, 4), DType::BF16, &cpu()).unwrap())
        .unwrap();
    assert_eq!(y.dims(), &[1, 2]);
}

/// Draws `n >= 1e6` values of `hint` on `shape` from a keyed builder, and
/// the same from a torch-exact one.
fn draw(hint: candle_nn::Init, shape: &[usize]) -> [Vec<f32>; 2] {
    let (vb, _) = keyed(2026);
    let k = values(&vb.get_with_hints(shape, "w", hint).unwrap());
    let vb = InitBackend::torch(2026).into_var_builder(DType::F32, &cpu());
    let t = values(&vb.get_with_hints(shape, "w", hint).unwrap());
    [k, t]
}

fn normal_cdf(mean: f64, std: f64) -> impl Fn(f64) -> f64 {
    move |x| phi((x - mean) / std)
}

fn uniform_cdf(lo: f64, up: f64) -> impl Fn(f64) -> f64 {
    move |x| ((x - lo) / (up - lo)).clamp(0.0, 1.0)
}

#[test]
fn randn_and_uniform_hints_follow_their_laws() {
    let [k, t] = draw(
        candle_nn::Init::Randn {
            mean: 0.5,
            stdev: 2.0,
        },
        &[1000, 1000],
    );
    assert_ks(&k, normal_cdf(0.5, 2.0), "keyed Randn(0.5, 2)");
    assert_ks(&t, normal_cdf(0.5, 2.0), "torch Randn(0.5, 2)");
    let [k, t] = draw(
        candle_nn::Init::Uniform { lo: -1.0, up: 3.0 },
        &[1000, 1000],
    );
    assert!(k.iter().chain(&t).all(|&x| (-1.0..3.0).contains(&x)));
    assert_ks(&k, uniform_cdf(-1.0, 3.0), "keyed Uniform(-1, 3)");
    assert_ks(&t, uniform_cdf(-1.0, 3.0), "torch Uniform(-1, 3)");
}

#[test]
fn kaiming_hints_follow_pytorchs_formulas() {
    // Normal, fan_in, relu on a conv weight: std = √2 / √(16·8·8).
    let shape = [1024, 16, 8, 8];
    let hint = candle_nn::init::DEFAULT_KAIMING_NORMAL;
    let [k, t] = draw(hint, &shape);
    let std = 2f64.sqrt() / 1024f64.sqrt();
    assert_ks(&k, normal_cdf(0.0, std), "keyed kaiming normal fan_in relu");
    assert_ks(&t, normal_cdf(0.0, std), "torch kaiming normal fan_in relu");

    // Uniform, fan_out, tanh: bound = √3 · (5/3) / √1000.
    let hint = candle_nn::Init::Kaiming {
        dist: NormalOrUniform::Uniform,
        fan: FanInOut::FanOut,
        non_linearity: NonLinearity::Tanh,
    };
    let [k, t] = draw(hint, &[1000, 1024]);
    let bound = 3f64.sqrt() * (5.0 / 3.0) / 1000f64.sqrt();
    assert_ks(
        &k,
        uniform_cdf(-bound, bound),
        "keyed kaiming uniform fan_out tanh",
    );
    assert_ks(
        &t,
        uniform_cdf(-bound, bound),
        "torch kaiming uniform fan_out tanh",
    );

    // An explicit gain, normal, fan_out: std = 0.3 / √1000.
    let hint = candle_nn::Init::Kaiming {
        dist: NormalOrUniform::Normal,
        fan: FanInOut::FanOut,
        non_linearity: NonLinearity::ExplicitGain(0.3),
    };
    let [k, t] = draw(hint, &[1000, 1024]);
    let std = 0.3 / 1000f64.sqrt();
    assert_ks(&k, normal_cdf(0.0, std), "keyed kaiming normal gain 0.3");
    assert_ks(&t, normal_cdf(0.0, std), "torch kaiming normal gain 0.3");

    // The other nonlinearities map onto nninit's gains.
    for (nl, want) in [
        (NonLinearity::ReLU, Nonlinearity::Relu),
        (NonLinearity::Linear, Nonlinearity::Linear),
        (NonLinearity::Sigmoid, Nonlinearity::Sigmoid),
        (NonLinearity::Tanh, Nonlinearity::Tanh),
        (NonLinearity::SELU, Nonlinearity::Selu),
    ] {
        let hint = candle_nn::Init::Kaiming {
            dist: NormalOrUniform::Normal,
            fan: FanInOut::FanIn,
            non_linearity: nl,
        };
        assert_eq!(
            init_for(hint, &[4, 4]).unwrap(),
            Init::KaimingNormal {
                a: 0.0,
                mode: FanMode::FanIn,
                nonlinearity: want
            }
        );
    }
}

#[test]
fn torch_mode_equals_nninits_torch_exact_tensors_in_the_same_order() {
    let seed = 1234;
    let vb = InitBackend::torch(seed).into_var_builder(DType::F32, &cpu());
    let l1 = candle_nn::linear(5, 7, vb.pp("l1")).unwrap();
    let emb = candle_nn::embedding(10, 4, vb.pp("emb")).unwrap();
    let _ln = candle_nn::layer_norm(4, 1e-5, vb.pp("ln")).unwrap();
    let conv = candle_nn::conv2d(3, 6, 3, Default::default(), vb.pp("conv")).unwrap();
    // Asked again: the same variable, no draws.
    let again = candle_nn::linear(5, 7, vb.pp("l1")).unwrap();
    assert_eq!(again.weight().id(), l1.weight().id());
    let l2 = candle_nn::linear(7, 2, vb.pp("l2")).unwrap();

    let mut g = Generator::torch(seed);
    let kaiming = Init::KaimingNormal {
        a: 0.0,
        mode: FanMode::FanIn,
        nonlinearity: Nonlinearity::Relu,
    };
    let mut next = |init: &Init, shape: &[usize]| init.tensor(shape, Some(&mut g)).unwrap();
    let bias = |fan_in: f64| Init::Uniform {
        a: -1.0 / fan_in.sqrt(),
        b: 1.0 / fan_in.sqrt(),
    };
    let want: Vec<(&Tensor, NTensor)> = vec![
        (l1.weight(), next(&kaiming, &[7, 5])),
        (l1.bias().unwrap(), next(&bias(5.0), &[7])),
        (
            emb.embeddings(),
            next(
                &Init::Normal {
                    mean: 0.0,
                    std: 1.0,
                },
                &[10, 4],
            ),
        ),
        (conv.weight(), next(&kaiming, &[6, 3, 3, 3])),
        (conv.bias().unwrap(), next(&bias(3.0), &[6])),
        (l2.weight(), next(&kaiming, &[2, 7])),
        (l2.bias().unwrap(), next(&bias(7.0), &[2])),
    ];
    for (i, (got, want)) in want.iter().enumerate() {
        assert_eq!(got.dims(), want.shape(), "variable {i}");
        assert_eq!(bits(&values(got)), bits(want.as_slice()), "variable {i}");
    }
}

#[test]
fn torch_layers_equal_nninits_pytorch_modules() {
    // nninit's nn::Linear and nn::Conv2d from a torch-exact generator are
    // PyTorch's nn.Linear and nn.Conv2d (tests/torch_exact.rs), so these are
    // PyTorch's numbers.
    let seed = 77;
    let vb = InitBackend::torch(seed).into_var_builder(DType::F32, &cpu());
    let fc = linear_torch(12, 5, vb.pp("fc")).unwrap();
    let cfg = Conv2dConfig {
        groups: 2,
        ..Default::default()
    };
    let conv = conv2d_torch(4, 6, 3, cfg, vb.pp("conv")).unwrap();
    let empty = linear_torch(0, 3, vb.pp("empty")).unwrap();

    let mut g = Generator::torch(seed);
    let nfc = nninit::nn::Linear::with_options(12, 5, true, Some(&mut g)).unwrap();
    let options = nninit::nn::ConvOptions {
        groups: 2,
        ..Default::default()
    };
    let nconv = nninit::nn::Conv2d::new(4, 6, [3, 3], options, Some(&mut g)).unwrap();
    let nempty = nninit::nn::Linear::with_options(0, 3, true, Some(&mut g)).unwrap();
    let pairs = [
        (fc.weight(), &nfc.weight),
        (fc.bias().unwrap(), nfc.bias.as_ref().unwrap()),
        (conv.weight(), &nconv.weight),
        (conv.bias().unwrap(), nconv.bias.as_ref().unwrap()),
        (empty.weight(), &nempty.weight),
        (empty.bias().unwrap(), nempty.bias.as_ref().unwrap()),
    ];
    for (i, (got, want)) in pairs.into_iter().enumerate() {
        let want = want.data().unwrap();
        assert_eq!(got.dims(), want.shape(), "variable {i}");
        assert_eq!(bits(&values(got)), bits(want.as_slice()), "variable {i}");
    }
}

#[test]
fn a_shard_equals_that_range_of_the_whole() {
    // 30000 elements: more than one block of 16384, shards across it.
    let shape = [300, 100];
    for hint in [
        candle_nn::init::DEFAULT_KAIMING_UNIFORM,
        candle_nn::Init::Randn {
            mean: 1.0,
            stdev: 0.1,
        },
        candle_nn::Init::Const(2.5),
        nninit::candle::torch_default_weight(),
    ] {
        let (vb, _) = keyed(8);
        let whole = values(
            &vb.pp("block")
                .get_with_hints(&shape[..], "w", hint)
                .unwrap(),
        );
        for (lo, hi) in [
            (0, 30000),
            (0, 1),
            (12345, 16384),
            (16383, 16385),
            (16000, 30000),
        ] {
            let mut part = vec![0.0; hi - lo];
            fill_shard(8, "block.w", hint, &shape, lo as u64, &mut part).unwrap();
            assert_eq!(bits(&whole[lo..hi]), bits(&part), "{hint:?} [{lo}, {hi})");
        }
        let mut past = vec![0.0; 2];
        assert!(fill_shard(8, "block.w", hint, &shape, 29999, &mut past).is_err());
    }
}

#[test]
fn the_name_hash_is_pinned() {
    // Pins of the documented hash, computed from the formula in
    // `stream_for`'s docs by an independent implementation (Python):
    // changing the hash changes every keyed model.
    let pins = [
        (stream_for(0, "").key(), 0xa6cf_4793_f9c3_883c),
        (stream_for(0, "weight").key(), 0xa341_2dad_3810_be95),
        (
            stream_for(42, "encoder.layers.0.self_attn.q_proj.weight").key(),
            0x6285_e355_779d_6ef0,
        ),
    ];
    for (got, want) in pins {
        assert_eq!(got, want, "{got:#018x}");
    }
    // Zero padding is told apart by the length.
    assert_ne!(stream_for(0, "a"), stream_for(0, "a\0"));
    assert_ne!(stream_for(0, "abcdefgh"), stream_for(0, "abcdefgh\0"));
    assert_ne!(stream_for(0, "fc1.weight"), stream_for(1, "fc1.weight"));
}

#[test]
fn the_registry_saves_and_shares_with_a_var_map() {
    let (vb, vars) = keyed(4);
    build(&vb, &[0, 1]);
    let map = vars.to_var_map();
    assert_eq!(map.all_vars().len(), 4);
    let w = vars.get("mlp.1.weight").unwrap();
    let mapped = map.data().lock().unwrap()["mlp.1.weight"].clone();
    w.set(&Tensor::zeros((5, 30), DType::F32, &cpu()).unwrap())
        .unwrap();
    assert!(values(mapped.as_tensor()).iter().all(|&x| x == 0.0));

    let dir = std::env::temp_dir().join(format!("nninit-candle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    vars.save(&path).unwrap();
    let back = candle_core::safetensors::load(&path, &cpu()).unwrap();
    assert_eq!(back.len(), 4);
    for (name, var) in vars.vars() {
        assert_eq!(bits(&values(&back[&name])), bits(&values(var.as_tensor())));
    }
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no temporary left"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(vars.save(dir.join("no/such/dir/x.safetensors")).is_err());
}

#[test]
fn the_readme_example_is_the_module_example() {
    let readme = include_str!("../README.md");
    let section = readme
        .split("\n## candle\n")
        .nth(1)
        .expect("README has a candle section");
    let code = section
        .split("```rust")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("a rust block");
    let code = code.split_once('\n').map_or("", |(_, rest)| rest);
    let docs: String = include_str!("../src/candle.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    for line in code.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            docs.contains(line),
            "README line not in the module docs: {line}"
        );
    }
}
