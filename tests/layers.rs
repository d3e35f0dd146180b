//! The layers of `nn` against PyTorch 2.15 (`tests/fixtures/layers.*`, made
//! by `scripts/layer_fixtures.py`): default init bit for bit with the
//! torch-exact generator; forward and backward against the same layer run by
//! PyTorch in float64 on the same float32 values; running statistics after a
//! training forward; Dropout's torch-exact mask. Plus finite-difference
//! gradients, printing and error texts.

mod common;

#[path = "common/fixture.rs"]
mod fixture;

use std::collections::HashMap;

use nninit::nn::{
    AdaptiveAvgPool2d, Approximate, AvgPool2d, BatchNorm1d, BatchNorm2d, BatchNormOptions, Conv1d,
    Conv2d, ConvOptions, Dropout, Embedding, Flatten, GELU, LayerNorm, LeakyReLU, MaxPool2d,
    Module, Padding, PoolOptions, SiLU, Sigmoid, Softmax, StateDict, Tanh,
};
use nninit::{AnyTensor, Generator, GeneratorState, IntTensor, Tensor};

use fixture::Raw;

fn fixtures() -> HashMap<String, Raw> {
    fixture::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/layers.safetensors"
    ))
}

fn cases() -> Vec<serde_json::Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/layers.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["cases"].as_array().unwrap().clone()
}

fn tensor(raw: &Raw) -> Tensor {
    Tensor::from_vec(raw.f32s(), &raw.shape).unwrap()
}

fn int_tensor(raw: &Raw) -> IntTensor {
    assert_eq!(raw.dtype, "I64");
    let v = raw
        .bytes
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    IntTensor::from_vec(v, &raw.shape).unwrap()
}

fn any(raw: &Raw) -> AnyTensor {
    if raw.dtype == "I64" {
        AnyTensor::I64(int_tensor(raw))
    } else {
        AnyTensor::F32(tensor(raw))
    }
}

/// The Rust layer of a fixture case, built from `g`.
fn build(name: &str, g: &mut Generator) -> Box<dyn Module> {
    let g = Some(g);
    let c2 = ConvOptions::<2>::default();
    let c1 = ConvOptions::<1>::default();
    let bn = BatchNormOptions::default();
    match name {
        "conv2d_basic" => Box::new(Conv2d::new(3, 4, [3, 3], c2, g).unwrap()),
        "conv2d_stride_pad" => {
            Box::new(Conv2d::new(4, 6, [3, 2], c2.stride([2, 1]).padding([1, 2]), g).unwrap())
        }
        "conv2d_dilation_groups" => Box::new(
            Conv2d::new(
                4,
                6,
                [3, 3],
                c2.padding([2, 2]).dilation([2, 2]).groups(2).bias(false),
                g,
            )
            .unwrap(),
        ),
        "conv2d_same" => Box::new(
            Conv2d::new(
                3,
                5,
                [4, 3],
                c2.padding_mode(Padding::Same).dilation([1, 2]),
                g,
            )
            .unwrap(),
        ),
        "conv2d_valid_1x1" => {
            Box::new(Conv2d::new(6, 3, [1, 1], c2.padding_mode(Padding::Valid), g).unwrap())
        }
        "conv2d_1x1_stride" => {
            Box::new(Conv2d::new(4, 8, [1, 1], c2.stride([2, 2]).bias(false), g).unwrap())
        }
        "conv2d_unbatched" => Box::new(Conv2d::new(2, 3, [3, 3], c2.padding([1, 1]), g).unwrap()),
        "conv1d_basic" => Box::new(Conv1d::new(3, 4, [3], c1.stride([2]).padding([1]), g).unwrap()),
        "conv1d_same_groups" => Box::new(
            Conv1d::new(
                4,
                4,
                [4],
                c1.padding_mode(Padding::Same).groups(4).dilation([2]),
                g,
            )
            .unwrap(),
        ),
        "conv1d_unbatched" => Box::new(Conv1d::new(2, 3, [2], c1, g).unwrap()),
        "bn2d_train" | "bn2d_eval" => Box::new(BatchNorm2d::new(3).unwrap()),
        "bn1d_train_2d" => Box::new(BatchNorm1d::new(5).unwrap()),
        "bn1d_train_3d" => Box::new(
            BatchNorm1d::with_options(
                3,
                BatchNormOptions {
                    momentum: None,
                    ..bn
                },
            )
            .unwrap(),
        ),
        "bn1d_noaffine" => Box::new(
            BatchNorm1d::with_options(
                4,
                BatchNormOptions {
                    affine: false,
                    eps: 1e-3,
                    ..bn
                },
            )
            .unwrap(),
        ),
        "bn2d_nostats" => Box::new(
            BatchNorm2d::with_options(
                2,
                BatchNormOptions {
                    track_running_stats: false,
                    ..bn
                },
            )
            .unwrap(),
        ),
        "layernorm" => Box::new(LayerNorm::new(&[6]).unwrap()),
        "layernorm_2d" => Box::new(LayerNorm::with_options(&[3, 4], 1e-3, true, true).unwrap()),
        "layernorm_nobias" => Box::new(LayerNorm::with_options(&[5], 1e-5, true, false).unwrap()),
        "maxpool" => Box::new(
            MaxPool2d::new(PoolOptions::new([3, 3]).stride([2, 2]).padding([1, 1])).unwrap(),
        ),
        "maxpool_dilation_ceil" => Box::new(
            MaxPool2d::new(
                PoolOptions::new([3, 2])
                    .stride([2, 2])
                    .padding([1, 1])
                    .dilation([1, 2])
                    .ceil_mode(true),
            )
            .unwrap(),
        ),
        "avgpool" => Box::new(AvgPool2d::new(PoolOptions::new([2, 2])).unwrap()),
        "avgpool_pad" => Box::new(
            AvgPool2d::new(PoolOptions::new([3, 3]).stride([2, 2]).padding([1, 1])).unwrap(),
        ),
        "avgpool_nopad_ceil" => Box::new(
            AvgPool2d::new(
                PoolOptions::new([3, 3])
                    .stride([2, 2])
                    .padding([1, 1])
                    .ceil_mode(true)
                    .count_include_pad(false),
            )
            .unwrap(),
        ),
        "adaptive" => Box::new(AdaptiveAvgPool2d::new([Some(3), Some(2)])),
        "adaptive_1" => Box::new(AdaptiveAvgPool2d::square(1)),
        "gelu" => Box::new(GELU::new()),
        "gelu_tanh" => Box::new(GELU::with(Approximate::Tanh)),
        "tanh" => Box::new(Tanh::new()),
        "sigmoid" => Box::new(Sigmoid::new()),
        "leaky_relu" => Box::new(LeakyReLU::with_slope(0.2)),
        "silu" => Box::new(SiLU::new()),
        "softmax" => Box::new(Softmax::new(Some(1))),
        "softmax_neg" => Box::new(Softmax::new(Some(-1))),
        "flatten" => Box::new(Flatten::new()),
        "embedding" => Box::new(Embedding::new(10, 4, Some(2), g).unwrap()),
        "embedding_nopad" => Box::new(Embedding::new(7, 3, None, g).unwrap()),
        other => panic!("no Rust layer for case {other}"),
    }
}

fn close(name: &str, what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{name}/{what}: length");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= tol * (1.0 + b.abs()),
            "{name}/{what}[{i}]: {a} vs PyTorch {b}"
        );
    }
}

fn prefixed(fx: &HashMap<String, Raw>, prefix: &str) -> Vec<(String, Raw)> {
    let mut v: Vec<(String, Raw)> = fx
        .iter()
        .filter_map(|(k, r)| k.strip_prefix(prefix).map(|s| (s.to_string(), r.clone())))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn layers_match_pytorch() {
    let fx = fixtures();
    let mut checked = 0;
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        if name.starts_with("dropout") {
            continue;
        }
        let seed = case["seed"].as_u64().unwrap();
        let mut g = Generator::torch(seed);
        let mut layer = build(name, &mut g);
        // Default init: PyTorch's own numbers, bit for bit.
        let sd = layer.state_dict();
        let init = prefixed(&fx, &format!("{name}/init/"));
        assert_eq!(sd.len(), init.len(), "{name}: state dict entries");
        for (k, raw) in &init {
            let mine = sd.get_any(k).unwrap_or_else(|| panic!("{name}: no {k}"));
            assert!(
                mine.bit_eq(&any(raw)),
                "{name}/{k}: default init differs from PyTorch's"
            );
        }
        // The case's parameters and buffers.
        let mut params = StateDict::new();
        for (k, raw) in prefixed(&fx, &format!("{name}/param/")) {
            params.insert(k, any(&raw));
        }
        layer.load_state_dict(&params, true).unwrap();
        // Training mode records for backward; it changes only what
        // BatchNorm normalizes with, so a BatchNorm case in inference mode
        // checks the forward alone.
        let eval_bn = case["mode"] == "eval" && name.starts_with("bn") && name != "bn2d_nostats";
        if !eval_bn {
            layer.train(true);
        }
        let y = if name.starts_with("embedding") {
            let idx = int_tensor(&fx[&format!("{name}/X")]);
            layer
                .as_any_mut()
                .downcast_mut::<Embedding>()
                .unwrap()
                .forward_indices(&idx)
                .unwrap()
        } else {
            layer.forward(&tensor(&fx[&format!("{name}/X")])).unwrap()
        };
        let want_y = &fx[&format!("{name}/Y")];
        assert_eq!(y.shape(), want_y.shape.as_slice(), "{name}: output shape");
        close(name, "Y", y.as_slice(), &want_y.f32s(), 2e-5);
        if eval_bn {
            checked += 1;
            continue;
        }
        let dx = layer.backward(&tensor(&fx[&format!("{name}/G")])).unwrap();
        if let Some(want) = fx.get(&format!("{name}/dX")) {
            assert_eq!(dx.shape(), want.shape.as_slice(), "{name}: dX shape");
            close(name, "dX", dx.as_slice(), &want.f32s(), 5e-5);
        }
        let grads = prefixed(&fx, &format!("{name}/grad/"));
        let mine: HashMap<String, Tensor> = layer
            .named_parameters()
            .into_iter()
            .map(|(k, p)| (k, p.grad().expect("a gradient after backward")))
            .collect();
        assert_eq!(mine.len(), grads.len(), "{name}: parameters with gradients");
        for (k, raw) in &grads {
            close(
                name,
                &format!("grad/{k}"),
                mine[k].as_slice(),
                &raw.f32s(),
                5e-5,
            );
        }
        for (k, raw) in prefixed(&fx, &format!("{name}/after/")) {
            let sd = layer.state_dict();
            match (sd.get_any(&k).unwrap(), any(&raw)) {
                (AnyTensor::I64(a), AnyTensor::I64(b)) => assert_eq!(a, &b, "{name}/{k}"),
                (AnyTensor::F32(a), AnyTensor::F32(b)) => {
                    close(name, &k, a.as_slice(), b.as_slice(), 2e-6)
                }
                _ => panic!("{name}/{k}: dtype"),
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 37);
}

#[test]
fn dropout_masks_are_pytorchs() {
    let fx = fixtures();
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        if !name.starts_with("dropout") {
            continue;
        }
        let p: f64 = case["torch"].as_str().unwrap()["nn.Dropout(".len()..]
            .trim_end_matches(')')
            .parse()
            .unwrap();
        let mut g = Generator::torch(case["seed"].as_u64().unwrap());
        let x = Tensor::randn(&fx[&format!("{name}/X")].shape, Some(&mut g)).unwrap();
        assert_eq!(x.as_slice(), fx[&format!("{name}/X")].f32s().as_slice());
        let mut d = Dropout::new(p).unwrap();
        d.train(true);
        let y = d.forward_with(&x, Some(&mut g)).unwrap();
        let want = fx[&format!("{name}/Y32")].f32s();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(y.as_slice()), bits(&want), "{name}");
        let GeneratorState::Torch(state) = g.state() else {
            panic!()
        };
        assert_eq!(
            state.to_bytes(),
            fx[&format!("{name}/rng_state")].bytes,
            "{name}: words"
        );
    }
}

#[test]
fn printing_is_pytorchs() {
    let o2 = ConvOptions::<2>::default();
    let rows: Vec<(Box<dyn Module>, &str)> = vec![
        (
            Box::new(
                Conv2d::new(
                    3,
                    64,
                    [7, 7],
                    o2.stride([2, 2]).padding([3, 3]).bias(false),
                    None,
                )
                .unwrap(),
            ),
            "Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)",
        ),
        (
            Box::new(
                Conv1d::new(
                    4,
                    8,
                    [3],
                    ConvOptions::default()
                        .padding_mode(Padding::Same)
                        .dilation([2])
                        .groups(2),
                    None,
                )
                .unwrap(),
            ),
            "Conv1d(4, 8, kernel_size=(3,), stride=(1,), padding=same, dilation=(2,), groups=2)",
        ),
        (
            Box::new(
                Conv2d::new(
                    2,
                    4,
                    [3, 5],
                    o2.stride([2, 1]).padding_mode(Padding::Valid),
                    None,
                )
                .unwrap(),
            ),
            "Conv2d(2, 4, kernel_size=(3, 5), stride=(2, 1), padding=valid)",
        ),
        (
            Box::new(BatchNorm2d::new(64).unwrap()),
            "BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)",
        ),
        (
            Box::new(
                BatchNorm1d::with_options(
                    3,
                    BatchNormOptions {
                        affine: false,
                        momentum: None,
                        ..Default::default()
                    },
                )
                .unwrap(),
            ),
            "BatchNorm1d(3, eps=1e-05, momentum=None, affine=False, bias=False, track_running_stats=True)",
        ),
        (
            Box::new(LayerNorm::with_options(&[3, 4], 1e-5, false, true).unwrap()),
            "LayerNorm((3, 4), eps=1e-05, elementwise_affine=False, bias=False)",
        ),
        (
            Box::new(LayerNorm::with_options(&[5], 1e-5, true, false).unwrap()),
            "LayerNorm((5,), eps=1e-05, elementwise_affine=True, bias=False)",
        ),
        (
            Box::new(Embedding::new(10, 3, None, None).unwrap()),
            "Embedding(10, 3)",
        ),
        (
            Box::new(Dropout::new(0.3).unwrap()),
            "Dropout(p=0.3, inplace=False)",
        ),
        (
            Box::new(MaxPool2d::new(PoolOptions::new([2, 2])).unwrap()),
            "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)",
        ),
        (
            Box::new(
                AvgPool2d::new(PoolOptions::new([3, 3]).stride([2, 2]).padding([1, 1])).unwrap(),
            ),
            "AvgPool2d(kernel_size=3, stride=2, padding=1)",
        ),
        (
            Box::new(AdaptiveAvgPool2d::square(7)),
            "AdaptiveAvgPool2d(output_size=7)",
        ),
        (Box::new(Flatten::new()), "Flatten(start_dim=1, end_dim=-1)"),
        (Box::new(nninit::nn::Identity::new()), "Identity()"),
        (
            Box::new(GELU::with(Approximate::Tanh)),
            "GELU(approximate='tanh')",
        ),
        (Box::new(Tanh::new()), "Tanh()"),
        (Box::new(Sigmoid::new()), "Sigmoid()"),
        (Box::new(LeakyReLU::new()), "LeakyReLU(negative_slope=0.01)"),
        (Box::new(SiLU::new()), "SiLU()"),
        (Box::new(Softmax::new(None)), "Softmax(dim=None)"),
        (Box::new(nninit::nn::ReLU::inplace()), "ReLU(inplace=True)"),
    ];
    for (m, want) in rows {
        assert_eq!(m.to_string(), want);
    }
}

/// `Σ G·f(x)` for the layer, in f64 (for finite differences).
fn loss(layer: &mut dyn Module, x: &Tensor, g: &Tensor) -> f64 {
    let y = layer.forward(x).unwrap();
    y.as_slice()
        .iter()
        .zip(g.as_slice())
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum()
}

/// Central finite differences of [`loss`] against the backward pass, for the
/// input and every parameter, on a few coordinates each.
fn finite_differences(name: &str, layer: &mut dyn Module, x: &Tensor) {
    let mut rng = Generator::new(99);
    let y = layer.forward(x).unwrap();
    let g = Tensor::randn(y.shape(), Some(&mut rng)).unwrap();
    layer.zero_grad();
    layer.train(true);
    layer.forward(x).unwrap();
    let dx = layer.backward(&g).unwrap();
    layer.eval();
    let grads: Vec<(String, Tensor)> = layer
        .named_parameters()
        .into_iter()
        .map(|(n, p)| (n, p.grad().unwrap()))
        .collect();
    let eps = 1e-2f32;
    let tol =
        |analytic: f64, numeric: f64| (analytic - numeric).abs() <= 2e-2 * (1.0 + numeric.abs());
    let step = (x.numel() / 7).max(1);
    for i in (0..x.numel()).step_by(step) {
        let (mut xp, mut xm) = (x.clone(), x.clone());
        xp.as_mut_slice()[i] += eps;
        xm.as_mut_slice()[i] -= eps;
        let numeric = (loss(layer, &xp, &g) - loss(layer, &xm, &g)) / (2.0 * f64::from(eps));
        let analytic = f64::from(dx.as_slice()[i]);
        assert!(
            tol(analytic, numeric),
            "{name}: dX[{i}] {analytic} vs finite difference {numeric}"
        );
    }
    for (pname, grad) in grads {
        let p = layer
            .named_parameters()
            .into_iter()
            .find(|(n, _)| *n == pname)
            .unwrap()
            .1;
        let n = grad.numel();
        for i in (0..n).step_by((n / 5).max(1)) {
            let orig = p.data().unwrap().as_slice()[i];
            p.data_mut().unwrap().as_mut_slice()[i] = orig + eps;
            let lp = loss(layer, x, &g);
            p.data_mut().unwrap().as_mut_slice()[i] = orig - eps;
            let lm = loss(layer, x, &g);
            p.data_mut().unwrap().as_mut_slice()[i] = orig;
            let numeric = (lp - lm) / (2.0 * f64::from(eps));
            let analytic = f64::from(grad.as_slice()[i]);
            assert!(
                tol(analytic, numeric),
                "{name}: d{pname}[{i}] {analytic} vs finite difference {numeric}"
            );
        }
    }
}

#[test]
fn backward_matches_finite_differences() {
    let mut g = Generator::new(5);
    let o2 = ConvOptions::<2>::default();
    let mut layers: Vec<(&str, Box<dyn Module>, Vec<usize>)> = vec![
        (
            "conv2d",
            Box::new(
                Conv2d::new(
                    3,
                    4,
                    [3, 2],
                    o2.stride([2, 1]).padding([1, 1]),
                    Some(&mut g),
                )
                .unwrap(),
            ),
            vec![2, 3, 6, 5],
        ),
        (
            "conv2d groups",
            Box::new(
                Conv2d::new(
                    4,
                    4,
                    [3, 3],
                    o2.groups(2).dilation([2, 1]).padding_mode(Padding::Same),
                    Some(&mut g),
                )
                .unwrap(),
            ),
            vec![1, 4, 6, 6],
        ),
        (
            "conv1d",
            Box::new(
                Conv1d::new(2, 3, [3], ConvOptions::default().padding([1]), Some(&mut g)).unwrap(),
            ),
            vec![2, 2, 7],
        ),
        (
            "layernorm",
            Box::new(LayerNorm::new(&[5]).unwrap()),
            vec![3, 5],
        ),
        (
            "maxpool",
            Box::new(MaxPool2d::new(PoolOptions::new([2, 2])).unwrap()),
            vec![1, 2, 4, 4],
        ),
        (
            "avgpool",
            Box::new(
                AvgPool2d::new(PoolOptions::new([3, 3]).stride([2, 2]).padding([1, 1])).unwrap(),
            ),
            vec![1, 2, 5, 5],
        ),
        (
            "adaptive",
            Box::new(AdaptiveAvgPool2d::new([Some(2), Some(3)])),
            vec![1, 2, 5, 7],
        ),
        ("gelu", Box::new(GELU::new()), vec![3, 4]),
        (
            "gelu tanh",
            Box::new(GELU::with(Approximate::Tanh)),
            vec![3, 4],
        ),
        ("tanh", Box::new(Tanh::new()), vec![3, 4]),
        ("sigmoid", Box::new(Sigmoid::new()), vec![3, 4]),
        ("silu", Box::new(SiLU::new()), vec![3, 4]),
        ("leaky", Box::new(LeakyReLU::with_slope(0.1)), vec![3, 4]),
        ("softmax", Box::new(Softmax::new(Some(1))), vec![2, 4, 3]),
        ("flatten", Box::new(Flatten::new()), vec![2, 3, 2]),
    ];
    for (name, layer, shape) in &mut layers {
        let mut x = Tensor::randn(shape, Some(&mut g)).unwrap();
        // Keep inputs away from kinks (ReLU-like at 0) and pooling ties.
        for v in x.as_mut_slice() {
            if v.abs() < 0.05 {
                *v += 0.2;
            }
        }
        finite_differences(name, layer.as_mut(), &x);
    }
    // BatchNorm in training mode: its statistics depend on the input, so
    // finite differences go through training-mode forwards.
    let mut bn = BatchNorm2d::new(3).unwrap();
    bn.weight
        .as_ref()
        .unwrap()
        .data_mut()
        .unwrap()
        .as_mut_slice()
        .copy_from_slice(&[0.5, 1.5, -1.0]);
    let x = Tensor::randn(&[4, 3, 2, 2], Some(&mut g)).unwrap();
    let gy = Tensor::randn(&[4, 3, 2, 2], Some(&mut g)).unwrap();
    bn.train(true);
    bn.forward(&x).unwrap();
    let dx = bn.backward(&gy).unwrap();
    let eps = 1e-2;
    for i in [0, 5, 17, 30, 47] {
        let run = |delta: f32| {
            let mut fresh = BatchNorm2d::new(3).unwrap();
            fresh.load_state_dict(&bn.state_dict(), true).unwrap();
            fresh.train(true);
            let mut xx = x.clone();
            xx.as_mut_slice()[i] += delta;
            loss(&mut fresh, &xx, &gy)
        };
        let numeric = (run(eps) - run(-eps)) / (2.0 * f64::from(eps));
        let analytic = f64::from(dx.as_slice()[i]);
        assert!(
            (analytic - numeric).abs() <= 2e-2 * (1.0 + numeric.abs()),
            "bn dX[{i}] {analytic} vs {numeric}"
        );
    }
}

#[test]
fn default_init_laws_by_ks() {
    // Conv2d(256, 512, 3): 1.18M weights ~ U(±1/√(256·9)), fan_in exact.
    let conv = Conv2d::new(
        256,
        512,
        [3, 3],
        ConvOptions::default(),
        Some(&mut Generator::new(3)),
    )
    .unwrap();
    let w = conv.weight.data().unwrap();
    let (fan_in, fan_out) = nninit::init::calculate_fan_in_and_fan_out(w.shape()).unwrap();
    assert_eq!((fan_in, fan_out), (256 * 9, 512 * 9));
    let bound = 1.0 / (fan_in as f64).sqrt();
    let d = common::ks_statistic(w.as_slice(), |x| {
        ((x + bound) / (2.0 * bound)).clamp(0.0, 1.0)
    });
    let crit = common::KS_C_ALPHA_0_001 / (w.numel() as f64).sqrt();
    assert!(d < crit, "conv weight: KS {d} >= {crit}");
    // Embedding(1000, 1000): N(0, 1).
    let e = Embedding::new(1000, 1000, Some(7), Some(&mut Generator::new(4))).unwrap();
    let w = e.weight.data().unwrap();
    assert!(w.row(7).unwrap().iter().all(|&v| v == 0.0));
    let rest: Vec<f32> = w.as_slice()[8000..].to_vec();
    let d = common::ks_statistic(&rest, common::phi);
    let crit = common::KS_C_ALPHA_0_001 / (rest.len() as f64).sqrt();
    assert!(d < crit, "embedding: KS {d} >= {crit}");
}

#[test]
fn batchnorm_and_dropout_modes() {
    let mut bn = BatchNorm1d::new(2).unwrap();
    let x = Tensor::from_vec(vec![1.0, 10.0, 3.0, 20.0], &[2, 2]).unwrap();
    // Inference mode (the initial state): running statistics (0, 1).
    let y = bn.forward(&x).unwrap();
    let s = (1.0f32 + 1e-5).sqrt();
    assert!((y.as_slice()[1] - 10.0 / s).abs() < 1e-5);
    assert_eq!(bn.num_batches_tracked(), Some(0));
    bn.train(true);
    let y = bn.forward(&x).unwrap();
    // Batch statistics: each channel normalized to ±1 (up to eps).
    assert!((y.as_slice()[0] + 1.0).abs() < 1e-4 && (y.as_slice()[2] - 1.0).abs() < 1e-4);
    assert_eq!(bn.num_batches_tracked(), Some(1));
    let rm = bn.running_mean.as_ref().unwrap().data().unwrap().to_vec();
    let rv = bn.running_var.as_ref().unwrap().data().unwrap().to_vec();
    // momentum 0.1: mean 0.1·(2, 15); unbiased var 0.9 + 0.1·(2, 50).
    assert!(
        (rm[0] - 0.2).abs() < 1e-6 && (rm[1] - 1.5).abs() < 1e-6,
        "{rm:?}"
    );
    assert!(
        (rv[0] - 1.1).abs() < 1e-6 && (rv[1] - 5.9).abs() < 1e-5,
        "{rv:?}"
    );
    let err = bn.forward(&Tensor::zeros(&[1, 2]).unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Expected more than 1 value per channel when training, got input size torch.Size([1, 2])"
    );
    // num_batches_tracked round-trips through safetensors as I64.
    let bytes = nninit::io::safetensors::serialize(&bn.state_dict()).unwrap();
    let back = nninit::io::safetensors::deserialize(&bytes).unwrap();
    assert!(
        matches!(back.get_any("num_batches_tracked"), Some(AnyTensor::I64(t)) if t.as_slice() == [1])
    );
    let fresh = BatchNorm1d::new(2).unwrap();
    fresh.load_state_dict(&back, true).unwrap();
    assert_eq!(fresh.num_batches_tracked(), Some(1));

    let mut d = Dropout::new(0.5).unwrap();
    let x = Tensor::ones(&[10_000]).unwrap();
    assert_eq!(d.forward(&x).unwrap(), x, "identity in inference mode");
    d.train(true);
    let y = d.forward_with(&x, Some(&mut Generator::new(1))).unwrap();
    let kept = y.as_slice().iter().filter(|&&v| v == 2.0).count();
    let zeroed = y.as_slice().iter().filter(|&&v| v == 0.0).count();
    assert_eq!(kept + zeroed, 10_000);
    assert!((4800..5200).contains(&kept), "{kept}");
    let dx = d.backward(&Tensor::ones(&[10_000]).unwrap()).unwrap();
    assert_eq!(dx, y, "the gradient takes the same mask");
    let mut all = Dropout::new(1.0).unwrap();
    all.train(true);
    assert!(
        all.forward(&x)
            .unwrap()
            .as_slice()
            .iter()
            .all(|&v| v == 0.0)
    );
}

/// A convolution keeps its packed weight between forwards; every way of
/// changing the weight (through `data_mut`, `set_data`, `load_state_dict`,
/// a new `Parameter`) shows in the next forward, which equals a fresh
/// layer's with the same weight bit for bit.
#[test]
fn conv_forward_follows_every_weight_change() {
    let mut g = Generator::new(3);
    let opts = ConvOptions::default().padding([1, 1]);
    let mut conv = Conv2d::new(4, 6, [3, 3], opts, Some(&mut g)).unwrap();
    let x = Tensor::randn(&[2, 4, 9, 9], Some(&mut g)).unwrap();
    let bits = |t: &Tensor| t.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    // What a layer that never packed this weight computes.
    let fresh = |conv: &Conv2d, x: &Tensor| conv.clone().forward(x).unwrap();
    let y0 = conv.forward(&x).unwrap();
    assert_eq!(bits(&conv.forward(&x).unwrap()), bits(&y0));
    let mut last = bits(&y0);
    let mut check = |conv: &mut Conv2d, how: &str| {
        let y = conv.forward(&x).unwrap();
        assert_eq!(bits(&y), bits(&fresh(conv, &x)), "after {how}");
        assert_ne!(bits(&y), last, "after {how}: the output did not change");
        last = bits(&y);
    };
    conv.weight.data_mut().unwrap().as_mut_slice()[5] += 1.0;
    check(&mut conv, "data_mut");
    let shape = conv.weight.shape().unwrap();
    conv.weight
        .set_data(Tensor::randn(&shape, Some(&mut g)).unwrap());
    check(&mut conv, "set_data");
    let other = Conv2d::new(4, 6, [3, 3], opts, Some(&mut g)).unwrap();
    conv.load_state_dict(&other.state_dict(), true).unwrap();
    check(&mut conv, "load_state_dict");
    conv.weight = nninit::nn::Parameter::new(Tensor::randn(&shape, Some(&mut g)).unwrap());
    check(&mut conv, "a new Parameter");
}

/// In inference mode a `Linear` keeps `Wᵀ` packed between forwards: its
/// output equals `gemm::linear` on the current weight bit for bit, after
/// every kind of change to the weight, and for 1-d and 3-d inputs.
#[test]
fn linear_forward_follows_every_weight_change() {
    let mut g = Generator::new(4);
    let mut layer = nninit::nn::Linear::with_options(70, 50, true, Some(&mut g)).unwrap();
    layer.eval();
    let bits = |t: &Tensor| t.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let inputs = [
        Tensor::randn(&[33, 70], Some(&mut g)).unwrap(),
        Tensor::randn(&[3, 11, 70], Some(&mut g)).unwrap(),
        Tensor::randn(&[70], Some(&mut g)).unwrap(),
    ];
    let mut last = Vec::new();
    let mut check = |layer: &mut nninit::nn::Linear, how: &str| {
        for x in &inputs {
            let y = layer.forward(x).unwrap();
            let w = layer.weight.data().unwrap();
            let b = layer.bias.as_ref().unwrap().data().unwrap();
            let want = nninit::gemm::linear(x, &w, Some(&b)).unwrap();
            assert_eq!(bits(&y), bits(&want), "after {how}, input {:?}", x.shape());
        }
        let y = bits(&layer.forward(&inputs[0]).unwrap());
        assert_ne!(y, last, "after {how}: the output did not change");
        last = y;
    };
    check(&mut layer, "construction");
    layer.weight.data_mut().unwrap().as_mut_slice()[7] -= 0.5;
    check(&mut layer, "data_mut");
    layer
        .weight
        .set_data(Tensor::randn(&[50, 70], Some(&mut g)).unwrap());
    check(&mut layer, "set_data");
    let other = nninit::nn::Linear::with_options(70, 50, true, Some(&mut g)).unwrap();
    layer.load_state_dict(&other.state_dict(), true).unwrap();
    check(&mut layer, "load_state_dict");
}
