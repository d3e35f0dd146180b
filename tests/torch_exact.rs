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
                .map(|(k, t)| (k.to_string(), t.clone()))
                .collect();
            v.push(("X".into(), x));
            v.push(("Y".into(), y));
            v
        }
        "sequence" => {
            let mut gen_ = g;
            let mut next = |name: &str, t: Tensor| (name.to_string(), t);
            let a = Tensor::randn(&[3], gen_.as_deref_mut()).unwrap();
            let b = Tensor::randn(&[5], gen_.as_deref_mut()).unwrap();
            let c = Tensor::randn(&[20], gen_.as_deref_mut()).unwrap();
            let d = Tensor::randn(&[1], gen_.as_deref_mut()).unwrap();
            let mut e = Tensor::zeros(&[4]).unwrap();
            init::normal_(&mut e, 1.0, 3.0, gen_.as_deref_mut()).unwrap();
            let f = Tensor::rand(&[9], gen_.as_deref_mut()).unwrap();
            let mut h = Tensor::zeros(&[17]).unwrap();
            init::uniform_(&mut h, -1.0, 1.0, gen_.as_deref_mut()).unwrap();
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
    for (k, t) in outputs {
        let want = fixtures
            .get(&format!("{name}/{k}"))
            .unwrap_or_else(|| panic!("{name}/{k} missing from the fixture"));
        assert_eq!(t.shape(), want.shape.as_slice(), "{name}/{k}: shape");
        let want = want.f32s();
        if k == "Y" {
            for (a, b) in t.as_slice().iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                    "{name}/Y: {a} vs {b}"
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
