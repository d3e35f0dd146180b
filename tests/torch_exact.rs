//! The torch-exact generator against real PyTorch 2.15.0 output
//! (`tests/fixtures/torch_golden.*`: the shared `torch-rng` golden file;
//! `tests/fixtures/torch_extra.*`: made by `scripts/torch_fixtures.py`).
//!
//! Every case starts from `torch.manual_seed(seed)`; its values must be
//! PyTorch's bit for bit and so must the 5056-byte `torch.get_rng_state()`
//! afterwards (every word consumed).

mod common;

#[path = "common/fixture.rs"]
mod fixture;

// The example includes `src/special.rs` too, as `common` does.
#[path = "../examples/sample.rs"]
#[allow(dead_code, clippy::duplicate_mod)]
mod sample;

use std::collections::HashMap;
use std::sync::Mutex;

use nninit::init::{self, FanMode, Nonlinearity};
use nninit::nn::{Linear, Module, ReLU, Sequential};
use nninit::{Generator, GeneratorState, Tensor};

use fixture::Raw;

/// Tests that use the global generator run one at a time.
static GLOBAL: Mutex<()> = Mutex::new(());

fn golden() -> HashMap<String, Raw> {
    fixture::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/torch_golden.safetensors"
    ))
}

/// The case names of a fixture's JSON index, in order.
fn case_names(json: &str) -> Vec<String> {
    let path = format!("{}/tests/fixtures/{json}", env!("CARGO_MANIFEST_DIR"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn bits(t: &[f32]) -> Vec<u32> {
    t.iter().map(|v| v.to_bits()).collect()
}

/// `33x7` → `[33, 7]`.
fn shape(s: &str) -> Vec<usize> {
    s.split('x').map(|d| d.parse().unwrap()).collect()
}

/// `a=0,mode='fan_out'` → `{a: "0", mode: "fan_out"}`.
fn params(s: &str) -> HashMap<String, String> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_string(), v.trim_matches('\'').to_string())
        })
        .collect()
}

fn num(p: &HashMap<String, String>, k: &str, default: f64) -> f64 {
    p.get(k).map_or(default, |v| v.parse().unwrap())
}

/// The state bytes of a torch-exact generator.
fn state_bytes(g: &Generator) -> Vec<u8> {
    match g.state() {
        GeneratorState::Torch(s) => s.to_bytes(),
        other => panic!("not a torch generator: {other:?}"),
    }
}

/// Runs golden case `name` (without its seed prefix) on `g`: the named
/// outputs PyTorch stored.
fn run(case: &str, mut g: Option<&mut Generator>) -> Vec<(String, Tensor)> {
    let parts: Vec<&str> = case.splitn(3, '/').collect();
    let out = |t: Tensor| vec![("out".to_string(), t)];
    match parts[0] {
        "rand" => out(Tensor::rand(&shape(parts[1]), g).unwrap()),
        "randn" => out(Tensor::randn(&shape(parts[1]), g).unwrap()),
        "uniform_" | "normal_" | "kaiming_uniform_" | "kaiming_normal_" | "xavier_uniform_"
        | "xavier_normal_" | "trunc_normal_" => {
            let mut t = Tensor::zeros(&shape(parts[1])).unwrap();
            let p = params(parts.get(2).copied().unwrap_or(""));
            let mode: FanMode = p.get("mode").map_or("fan_in", |s| s).parse().unwrap();
            let nl: Nonlinearity = p
                .get("nonlinearity")
                .map_or("leaky_relu", |s| s)
                .parse()
                .unwrap();
            match parts[0] {
                "uniform_" => init::uniform_(&mut t, num(&p, "a", 0.0), num(&p, "b", 1.0), g),
                "normal_" => init::normal_(&mut t, num(&p, "mean", 0.0), num(&p, "std", 1.0), g),
                "kaiming_uniform_" => {
                    init::kaiming_uniform_(&mut t, num(&p, "a", 0.0), mode, nl, g)
                }
                "kaiming_normal_" => init::kaiming_normal_(&mut t, num(&p, "a", 0.0), mode, nl, g),
                "xavier_uniform_" => init::xavier_uniform_(&mut t, num(&p, "gain", 1.0), g),
                "xavier_normal_" => init::xavier_normal_(&mut t, num(&p, "gain", 1.0), g),
                "trunc_normal_" => init::trunc_normal_(
                    &mut t,
                    num(&p, "mean", 0.0),
                    num(&p, "std", 1.0),
                    num(&p, "a", -2.0),
                    num(&p, "b", 2.0),
                    g,
                ),
                _ => unreachable!(),
            }
            .unwrap();
            out(t)
        }
        "Linear" => {
            let s = shape(parts[1]);
            let l = Linear::with_options(s[0], s[1], true, g).unwrap();
            vec![
                ("weight".into(), l.weight.data().unwrap().clone()),
                ("bias".into(), l.bias.unwrap().data().unwrap().clone()),
            ]
        }
        "chapter_mlp" | "chapter_lazy" => {
            let lazy = parts[0] == "chapter_lazy";
            let mut net = if lazy {
                Sequential::new()
                    .with(Linear::lazy(8))
                    .with(ReLU::new())
                    .with(Linear::lazy(1))
            } else {
                Sequential::new()
                    .with(Linear::with_options(4, 8, true, g.as_deref_mut()).unwrap())
                    .with(ReLU::new())
                    .with(Linear::with_options(8, 1, true, g.as_deref_mut()).unwrap())
            };
            let x = Tensor::rand(&[2, 4], g.as_deref_mut()).unwrap();
            if lazy && g.is_some() {
                // A given generator: materialize as the first forward would.
                net.child::<Linear>(0)
                    .unwrap()
                    .initialize_parameters(4, g.as_deref_mut())
                    .unwrap();
                net.child::<Linear>(2)
                    .unwrap()
                    .initialize_parameters(8, g.as_deref_mut())
                    .unwrap();
            }
            let y = net.forward(&x).unwrap();
            let mut v: Vec<(String, Tensor)> = net
                .state_dict()
                .iter()
                .map(|(k, t)| (k.to_string(), t.as_f32().unwrap().clone()))
                .collect();
            v.push(("X".into(), x));
            v.push(("Y".into(), y));
            v
        }
        "sequence" => {
            let mut gen_ = g;
            let next = |name: &str, t: Tensor| (name.to_string(), t);
            let a = Tensor::randn(&[3], gen_.as_deref_mut()).unwrap();
            let b = Tensor::randn(&[5], gen_.as_deref_mut()).unwrap();
            let c = Tensor::randn(&[20], gen_.as_deref_mut()).unwrap();
            let d = Tensor::randn(&[1], gen_.as_deref_mut()).unwrap();
            let mut e = Tensor::zeros(&[4]).unwrap();
            init::normal_(&mut e, 1.0, 3.0, gen_.as_deref_mut()).unwrap();
            let f = Tensor::rand(&[9], gen_.as_deref_mut()).unwrap();
            let mut h = Tensor::zeros(&[17]).unwrap();
            init::uniform_(&mut h, -1.0, 1.0, gen_).unwrap();
            vec![
                next("a", a),
                next("b", b),
                next("c", c),
                next("d", d),
                next("e", e),
                next("f", f),
                next("g", h),
            ]
        }
        other => panic!("unknown golden case kind {other}"),
    }
}

/// Checks case `name` of `fixtures` run on `g` (whose state afterwards is
/// `state`): every output bit for bit (`Y`, a matrix product, to 1e-6).
fn check(fixtures: &HashMap<String, Raw>, name: &str, outputs: &[(String, Tensor)], state: &[u8]) {
    check_to(fixtures, name, outputs, state, &[("Y", 1e-6)]);
}

/// [`check`], with the outputs named in `approx` compared to within their
/// tolerance (absolute, plus relative to the value) instead of exactly.
fn check_to(
    fixtures: &HashMap<String, Raw>,
    name: &str,
    outputs: &[(String, Tensor)],
    state: &[u8],
    approx: &[(&str, f32)],
) {
    for (k, t) in outputs {
        let want = fixtures
            .get(&format!("{name}/{k}"))
            .unwrap_or_else(|| panic!("{name}/{k} missing from the fixture"));
        assert_eq!(t.shape(), want.shape.as_slice(), "{name}/{k}: shape");
        let want = want.f32s();
        if let Some(&(_, tol)) = approx.iter().find(|(a, _)| a == k) {
            for (a, b) in t.as_slice().iter().zip(&want) {
                assert!(
                    (a - b).abs() <= tol * (1.0 + b.abs()),
                    "{name}/{k}: {a} vs {b}"
                );
            }
        } else {
            assert_eq!(bits(t.as_slice()), bits(&want), "{name}/{k}");
        }
    }
    let want_state = &fixtures[&format!("{name}/rng_state")];
    assert_eq!(want_state.bytes.len(), 5056);
    if state != want_state.bytes.as_slice() {
        let first = state
            .iter()
            .zip(&want_state.bytes)
            .position(|(a, b)| a != b)
            .unwrap();
        panic!("{name}: rng_state differs from byte {first}");
    }
}

fn seed_and_case(name: &str) -> (u64, &str) {
    let (seed, case) = name.split_once('/').unwrap();
    (seed[1..].parse().unwrap(), case)
}

#[test]
fn golden_cases_with_a_given_generator() {
    let fixtures = golden();
    let names = case_names("torch_golden.json");
    assert!(names.len() >= 80, "{} cases", names.len());
    for name in &names {
        let (seed, case) = seed_and_case(name);
        let mut g = Generator::torch(seed);
        let outputs = run(case, Some(&mut g));
        check(&fixtures, name, &outputs, &state_bytes(&g));
    }
}

#[test]
fn golden_cases_with_the_global_generator() {
    let _lock = GLOBAL.lock().unwrap_or_else(|p| p.into_inner());
    let fixtures = golden();
    for name in &case_names("torch_golden.json") {
        let (seed, case) = seed_and_case(name);
        nninit::torch::manual_seed(seed);
        let outputs = run(case, None);
        check(
            &fixtures,
            name,
            &outputs,
            &nninit::torch::get_rng_state().unwrap(),
        );
    }
}

fn extra() -> HashMap<String, Raw> {
    fixture::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/torch_extra.safetensors"
    ))
}

/// Every `k`-th element of `t`, flattened (the `_everyK` fixture keys).
fn every(t: &Tensor, k: usize) -> Tensor {
    let v: Vec<f32> = t.as_slice().iter().step_by(k).copied().collect();
    let n = v.len();
    Tensor::from_vec(v, &[n]).unwrap()
}

/// `"0.0,1.0,2.0,inf"` → numbers.
fn numbers(s: &str) -> Vec<f64> {
    s.split(',').map(|v| v.parse().unwrap()).collect()
}

/// Runs one case of `torch_extra.json` on `g`: its outputs and which of them
/// are compared to a tolerance.
/// Named outputs of a case.
type Outputs = Vec<(String, Tensor)>;

fn run_extra(name: &str, g: &mut Generator) -> (Outputs, Vec<(&'static str, f32)>) {
    let parts: Vec<&str> = name.split('/').collect();
    let mut v: Vec<(String, Tensor)> = Vec::new();
    let mut put = |k: &str, t: Tensor| v.push((k.to_string(), t));
    let mut approx = Vec::new();
    match parts[0] {
        "seed" => {
            assert_eq!(g.initial_seed(), parts[1].parse::<u64>().unwrap());
            put("a", Tensor::rand(&[5], Some(g)).unwrap());
            put("b", Tensor::randn(&[20], Some(g)).unwrap());
            put("c", Tensor::randn(&[3], Some(g)).unwrap());
        }
        "trunc_normal_" => {
            let p = numbers(parts[2]);
            let mut t = Tensor::zeros(&shape(parts[1])).unwrap();
            init::trunc_normal_(&mut t, p[0], p[1], p[2], p[3], Some(g)).unwrap();
            put("out", t);
        }
        "sparse_" => {
            let p = numbers(parts[2]);
            let mut t = Tensor::zeros(&shape(parts[1])).unwrap();
            init::sparse_(&mut t, p[0], p[1], Some(g)).unwrap();
            put("out", t);
            put("after", Tensor::rand(&[4], Some(g)).unwrap());
        }
        "orthogonal_" => {
            let mut t = Tensor::zeros(&shape(parts[1])).unwrap();
            init::orthogonal_(&mut t, parts[2].parse().unwrap(), Some(g)).unwrap();
            put("out", t);
            put("after", Tensor::rand(&[4], Some(g)).unwrap());
            approx.push(("out", 1e-5));
        }
        "mixed" => {
            let t = |s: &[usize]| Tensor::zeros(s).unwrap();
            let mut k = t(&[16, 8, 3, 3]);
            init::kaiming_uniform_(
                &mut k,
                0.1,
                FanMode::FanOut,
                Nonlinearity::LeakyRelu,
                Some(g),
            )
            .unwrap();
            put("k", k);
            let mut x = t(&[4, 3, 3, 3]);
            let gain = init::calculate_gain(Nonlinearity::Tanh, None).unwrap();
            init::xavier_uniform_(&mut x, gain, Some(g)).unwrap();
            put("x", x);
            let mut n = t(&[10]);
            init::normal_(&mut n, 0.1, 0.2, Some(g)).unwrap();
            put("n", n);
            let mut n2 = t(&[3]);
            init::normal_(&mut n2, -3.0, 1e-3, Some(g)).unwrap();
            put("n2", n2);
            let mut kn = t(&[5, 3]);
            init::kaiming_normal_(&mut kn, 0.0, FanMode::FanIn, Nonlinearity::Selu, Some(g))
                .unwrap();
            put("kn", kn);
            let mut xn = t(&[2, 7]);
            init::xavier_normal_(&mut xn, 1.0, Some(g)).unwrap();
            put("xn", xn);
            let mut u = t(&[10]);
            init::uniform_(&mut u, 2.0, 2.0, Some(g)).unwrap();
            put("u", u);
            let mut z = t(&[20]);
            init::normal_(&mut z, 1.5, 0.0, Some(g)).unwrap();
            put("z", z);
            let mut e = t(&[0, 5]);
            init::kaiming_uniform_(
                &mut e,
                0.0,
                FanMode::FanIn,
                Nonlinearity::LeakyRelu,
                Some(g),
            )
            .unwrap();
            put("e", e);
            put("r0", Tensor::rand(&[0], Some(g)).unwrap());
            let mut big = t(&[256, 784]);
            init::kaiming_normal_(&mut big, 0.0, FanMode::FanOut, Nonlinearity::Relu, Some(g))
                .unwrap();
            put("big_every13", every(&big, 13));
            put("after", Tensor::randn(&[7], Some(g)).unwrap());
        }
        "sizes" => {
            for n in 1..=40 {
                let mut u = Tensor::zeros(&[n]).unwrap();
                init::uniform_(&mut u, -1.0, 1.0, Some(g)).unwrap();
                put(&format!("u{n}"), u);
                put(&format!("n{n}"), Tensor::randn(&[n], Some(g)).unwrap());
            }
        }
        "linear_big" => {
            let l = Linear::with_options(1024, 1024, true, Some(g)).unwrap();
            put("weight_every97", every(&l.weight.data().unwrap(), 97));
            put("bias", l.bias.unwrap().data().unwrap().clone());
            let l = Linear::with_options(3, 5, false, Some(g)).unwrap();
            put("nobias", l.weight.data().unwrap().clone());
            put("after", Tensor::rand(&[3], Some(g)).unwrap());
        }
        "sample" | "sample_dirac" => {
            // examples/sample.rs with --generator torch (its own generator).
            let (argv, shape) = match parts[0] {
                "sample" => (parts[1], "24,10"),
                _ => ("dirac --groups 2", "4,2,3,3"),
            };
            let argv = format!("{argv} --shape {shape} --generator torch --seed 3");
            let args = sample::parse_args(argv.split_whitespace().map(String::from)).unwrap();
            let sampled = sample::sample(&args).unwrap();
            put("out", sampled.tensor);
            *g = sampled.generator;
            if argv.starts_with("orthogonal") {
                approx.push(("out", 1e-5));
            }
        }
        "continue" => {
            put("a", Tensor::randn(&[3], Some(g)).unwrap());
            put("b", Tensor::rand(&[4], Some(g)).unwrap());
            put("c", Tensor::randn(&[40], Some(g)).unwrap());
        }
        other => panic!("unknown extra case {other}"),
    }
    (v, approx)
}

#[test]
fn extra_cases_match_pytorch() {
    let fixtures = extra();
    let path = format!(
        "{}/tests/fixtures/torch_extra.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = index["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 45);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let mut g = Generator::torch(c["seed"].as_u64().unwrap());
        if let Some(state) = fixtures.get(&format!("{name}/state_in")) {
            // A state saved in Python (with a cached normal) continues here.
            g.set_state(GeneratorState::Torch(
                nninit::rng::TorchState::from_bytes(&state.bytes).unwrap(),
            ));
            assert_eq!(state_bytes(&g), state.bytes, "{name}: state round trip");
        }
        let (outputs, approx) = run_extra(name, &mut g);
        let names: Vec<&str> = outputs.iter().map(|(k, _)| k.as_str()).collect();
        let mut want: Vec<&str> = c["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let mut got = names.clone();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "{name}: outputs");
        check_to(&fixtures, name, &outputs, &state_bytes(&g), &approx);
    }
}
