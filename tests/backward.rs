//! Backward against central finite differences of an `f64` re-implementation
//! of the same network (weights read from the modules): random small MLPs, a
//! tied one (whose gradient must also equal the sum of the per-use
//! gradients), and a user-defined module (the chapter's `FixedHiddenMLP`).
//! Plus SGD against `torch.optim.SGD`'s definition, and the error cases.

#[path = "../examples/chapter.rs"]
#[allow(dead_code)]
mod chapter;

use std::collections::HashMap;

use nninit::nn::{Linear, MSELoss, Module, Parameter, ReLU, SGD, Sequential, SgdOptions};
use nninit::{Error, Generator, Tensor};

type Values = HashMap<usize, Vec<f64>>;

fn to_f64(t: &Tensor) -> Vec<f64> {
    t.as_slice().iter().map(|&v| f64::from(v)).collect()
}

fn values_of(params: &[Parameter]) -> Values {
    params
        .iter()
        .map(|p| (p.id(), to_f64(&p.data().unwrap())))
        .collect()
}

/// `x · Wᵀ + b` in f64 (`x` is rows × in).
fn linear_f64(x: &[f64], rows: usize, w: &[f64], b: Option<&[f64]>, out: usize) -> Vec<f64> {
    let inp = w.len() / out.max(1);
    let mut y = vec![0.0; rows * out];
    for r in 0..rows {
        for o in 0..out {
            let dot: f64 = (0..inp).map(|i| x[r * inp + i] * w[o * inp + i]).sum();
            y[r * out + o] = dot + b.map_or(0.0, |b| b[o]);
        }
    }
    y
}

/// The forward of a Sequential of `Linear`s and `ReLU`s, in f64, with the
/// parameter values taken from `vals` (by parameter identity).
fn sequential_f64(net: &Sequential, x: &[f64], rows: usize, vals: &Values) -> Vec<f64> {
    let mut h = x.to_vec();
    for i in 0..net.len() {
        let m = &net[i];
        if let Some(l) = m.downcast_ref::<Linear>() {
            let w = &vals[&l.weight.id()];
            let b = l.bias.as_ref().map(|b| vals[&b.id()].as_slice());
            h = linear_f64(&h, rows, w, b, l.out_features());
        } else if m.is::<ReLU>() {
            for v in &mut h {
                *v = v.max(0.0);
            }
        } else {
            panic!("unexpected module {}", m.type_name());
        }
    }
    h
}

fn mse_f64(pred: &[f64], target: &Tensor) -> f64 {
    let t = to_f64(target);
    pred.iter()
        .zip(&t)
        .map(|(p, t)| (p - t) * (p - t))
        .sum::<f64>()
        / pred.len() as f64
}

/// Checks every element of every parameter's gradient against central
/// differences of `loss(vals)`.
fn check_gradients(params: &[Parameter], loss: impl Fn(&Values) -> f64) {
    let base = values_of(params);
    let h = 1e-6;
    for p in params {
        let grad = p.grad().expect("backward set every gradient");
        for (e, &analytic) in grad.as_slice().iter().enumerate() {
            let mut plus = base.clone();
            plus.get_mut(&p.id()).unwrap()[e] += h;
            let mut minus = base.clone();
            minus.get_mut(&p.id()).unwrap()[e] -= h;
            let numeric = (loss(&plus) - loss(&minus)) / (2.0 * h);
            let err = (f64::from(analytic) - numeric).abs();
            assert!(
                err <= 2e-4 + 2e-3 * numeric.abs(),
                "element {e} of a {:?} parameter: analytic {analytic}, numeric {numeric}",
                p.shape().unwrap()
            );
        }
    }
}

/// Runs forward, MSE, backward on `net`; checks against finite differences.
fn check_sequential(mut net: Sequential, rows: usize, inputs: usize, seed: u64) {
    let mut g = Generator::new(seed);
    let x = Tensor::randn(&[rows, inputs], Some(&mut g)).unwrap();
    net.train(true);
    let pred = net.forward(&x).unwrap();
    let y = Tensor::randn(pred.shape(), Some(&mut g)).unwrap();
    let mut loss = MSELoss::new();
    loss.forward(&pred, &y).unwrap();
    let dx = net.backward(&loss.backward().unwrap()).unwrap();
    assert_eq!(dx.shape(), x.shape());
    let params = net.parameters();
    let xs = to_f64(&x);
    check_gradients(&params, |vals| {
        mse_f64(&sequential_f64(&net, &xs, rows, vals), &y)
    });
    // The input gradient too, by perturbing x.
    let vals = values_of(&params);
    for (e, &analytic) in dx.as_slice().iter().enumerate() {
        let mut xp = xs.clone();
        xp[e] += 1e-6;
        let mut xm = xs.clone();
        xm[e] -= 1e-6;
        let numeric = (mse_f64(&sequential_f64(&net, &xp, rows, &vals), &y)
            - mse_f64(&sequential_f64(&net, &xm, rows, &vals), &y))
            / 2e-6;
        assert!((f64::from(analytic) - numeric).abs() <= 2e-4 + 2e-3 * numeric.abs());
    }
}

#[test]
fn random_mlps_match_finite_differences() {
    for seed in 0..6 {
        let mut g = Generator::new(100 + seed);
        let widths = [3 + seed as usize % 3, 5, 4, 2 + seed as usize % 2];
        let mut net = Sequential::new();
        for (i, w) in widths.windows(2).enumerate() {
            let bias = !(seed == 3 && i == 1);
            net.push(Linear::with_options(w[0], w[1], bias, Some(&mut g)).unwrap());
            if i + 2 < widths.len() {
                net.push(ReLU::new());
            }
        }
        check_sequential(net, 7, widths[0], seed);
    }
}

#[test]
fn tied_gradient_is_the_sum_of_the_uses() {
    let mut g = Generator::new(5);
    let shared = Linear::with_options(4, 4, true, Some(&mut g)).unwrap();
    let first = Linear::with_options(3, 4, true, Some(&mut g)).unwrap();
    let last = Linear::with_options(4, 2, true, Some(&mut g)).unwrap();
    let tied = Sequential::new()
        .with(first.clone())
        .with(ReLU::new())
        .with(shared.clone())
        .with(ReLU::new())
        .with(shared.clone())
        .with(ReLU::new())
        .with(last.clone());
    assert_eq!(tied.parameters().len(), 6);
    check_sequential(tied, 5, 3, 11);

    // The same network untied (copies of the shared layer): the tied
    // gradient is the sum of the two copies' gradients.
    let copy = |l: &Linear| {
        let c = Linear::with_options(4, 4, true, Some(&mut Generator::new(0))).unwrap();
        c.weight.set_data(l.weight.data().unwrap().clone());
        c.bias
            .as_ref()
            .unwrap()
            .set_data(l.bias.as_ref().unwrap().data().unwrap().clone());
        c
    };
    let mut g = Generator::new(5);
    let shared = Linear::with_options(4, 4, true, Some(&mut g)).unwrap();
    let first = Linear::with_options(3, 4, true, Some(&mut g)).unwrap();
    let last = Linear::with_options(4, 2, true, Some(&mut g)).unwrap();
    let (use2, use4) = (copy(&shared), copy(&shared));
    let run = |net: &mut Sequential| {
        let mut g = Generator::new(11);
        let x = Tensor::randn(&[5, 3], Some(&mut g)).unwrap();
        net.train(true);
        let pred = net.forward(&x).unwrap();
        let y = Tensor::randn(pred.shape(), Some(&mut g)).unwrap();
        let mut loss = MSELoss::new();
        loss.forward(&pred, &y).unwrap();
        net.backward(&loss.backward().unwrap()).unwrap();
    };
    let mut untied = Sequential::new()
        .with(first.clone())
        .with(ReLU::new())
        .with(use2.clone())
        .with(ReLU::new())
        .with(use4.clone())
        .with(ReLU::new())
        .with(last.clone());
    run(&mut untied);
    let mut tied = Sequential::new()
        .with(first)
        .with(ReLU::new())
        .with(shared.clone())
        .with(ReLU::new())
        .with(shared.clone())
        .with(ReLU::new())
        .with(last);
    run(&mut tied);
    let sum: Vec<f32> = use2
        .weight
        .grad()
        .unwrap()
        .as_slice()
        .iter()
        .zip(use4.weight.grad().unwrap().as_slice())
        .map(|(a, b)| a + b)
        .collect();
    let tied_grad = shared.weight.grad().unwrap();
    for (a, b) in tied_grad.as_slice().iter().zip(&sum) {
        assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

#[test]
fn user_module_matches_finite_differences() {
    nninit::manual_seed(3);
    let mut m = chapter::FixedHiddenMLP::new().unwrap();
    let x = Tensor::randn(&[3, 20], Some(&mut Generator::new(8))).unwrap();
    m.train(true);
    let out = m.forward(&x).unwrap();
    assert_eq!(out.shape(), &[] as &[usize]);
    let dx = m.backward(&Tensor::scalar(1.0)).unwrap();
    assert_eq!(dx.shape(), x.shape());
    let params = m.parameters();
    let (w_id, b_id) = (params[0].id(), params[1].id());
    let rand_w = to_f64(&m.named_buffers()[0].1.data().unwrap());
    let xs = to_f64(&x);
    let reference = |vals: &Values, xs: &[f64]| {
        let (w, b) = (&vals[&w_id], &vals[&b_id]);
        let h = linear_f64(xs, 3, w, Some(b), 20);
        let mut a = vec![0.0; 3 * 20];
        for r in 0..3 {
            for j in 0..20 {
                let z: f64 = (0..20).map(|k| h[r * 20 + k] * rand_w[k * 20 + j]).sum();
                a[r * 20 + j] = (z + 1.0).max(0.0);
            }
        }
        let y = linear_f64(&a, 3, w, Some(b), 20);
        let mut s: f64 = y.iter().map(|v| v.abs()).sum();
        let mut scale = 1.0;
        while s > 1.0 {
            s /= 2.0;
            scale /= 2.0;
        }
        y.iter().sum::<f64>() * scale
    };
    check_gradients(&params, |vals| reference(vals, &xs));
    let vals = values_of(&params);
    for e in [0, 17, 59] {
        let (mut xp, mut xm) = (xs.clone(), xs.clone());
        xp[e] += 1e-6;
        xm[e] -= 1e-6;
        let numeric = (reference(&vals, &xp) - reference(&vals, &xm)) / 2e-6;
        let analytic = f64::from(dx.as_slice()[e]);
        assert!((analytic - numeric).abs() <= 2e-4 + 2e-3 * numeric.abs());
    }
    // The buffer is state, not a parameter.
    assert_eq!(m.named_parameters().len(), 2);
    assert!(m.state_dict().contains_key("rand_weight"));
}

#[test]
fn backward_errors_are_values() {
    let mut l = Linear::new(3, 2).unwrap();
    let x = Tensor::ones(&[4, 3]).unwrap();
    // Inference mode records nothing.
    l.forward(&x).unwrap();
    assert_eq!(
        l.backward(&Tensor::ones(&[4, 2]).unwrap())
            .unwrap_err()
            .to_string(),
        "Linear.backward called without a training forward before it (call train(true) and \
         forward first)"
    );
    l.train(true);
    l.forward(&x).unwrap();
    assert_eq!(
        l.backward(&Tensor::ones(&[4, 3]).unwrap())
            .unwrap_err()
            .to_string(),
        "grad_output of Linear must have shape [4, 2], but found shape [4, 3]"
    );
    // Consumed: a second backward is an error again.
    l.forward(&x).unwrap();
    l.backward(&Tensor::ones(&[4, 2]).unwrap()).unwrap();
    assert!(matches!(
        l.backward(&Tensor::ones(&[4, 2]).unwrap()),
        Err(Error::BackwardBeforeForward { .. })
    ));
    let mut relu = ReLU::new();
    assert!(matches!(
        relu.backward(&x),
        Err(Error::BackwardBeforeForward { .. })
    ));
    let p = Parameter::new(Tensor::zeros(&[2]).unwrap());
    assert_eq!(
        p.accumulate_grad(&Tensor::zeros(&[3]).unwrap())
            .unwrap_err()
            .to_string(),
        "gradient of a parameter must have shape [2], but found shape [3]"
    );
    let mut loss = MSELoss::new();
    assert!(loss.backward().is_err());
    assert_eq!(
        loss.forward(&x, &Tensor::ones(&[4, 2]).unwrap())
            .unwrap_err()
            .to_string(),
        "mse_loss: the shape of the other tensor [4, 2] must match the shape [4, 3]"
    );
}

#[test]
fn zero_grad_and_accumulation() {
    let mut net = chapter::tied_net().unwrap();
    net.train(true);
    let x = Tensor::ones(&[2, 4]).unwrap();
    let g1 = {
        let y = net.forward(&x).unwrap();
        net.backward(&Tensor::ones(y.shape()).unwrap()).unwrap();
        net.parameters()[0].grad().unwrap()
    };
    let y = net.forward(&x).unwrap();
    net.backward(&Tensor::ones(y.shape()).unwrap()).unwrap();
    let g2 = net.parameters()[0].grad().unwrap();
    for (a, b) in g2.as_slice().iter().zip(g1.as_slice()) {
        assert!((a - 2.0 * b).abs() <= 1e-6 * (1.0 + b.abs()));
    }
    net.zero_grad();
    assert!(net.parameters().iter().all(|p| p.grad().is_none()));
}

/// `torch.optim.SGD`'s update, written out in f64 for one parameter.
fn sgd_reference(o: SgdOptions, p0: &[f64], grads: &[Vec<f64>]) -> Vec<f64> {
    let mut p = p0.to_vec();
    let mut buf: Option<Vec<f64>> = None;
    for g in grads {
        let mut d: Vec<f64> = g
            .iter()
            .zip(&p)
            .map(|(g, p)| g + o.weight_decay * p)
            .collect();
        if o.momentum != 0.0 {
            let b = match buf.take() {
                None => d.clone(),
                Some(b) => b
                    .iter()
                    .zip(&d)
                    .map(|(b, d)| o.momentum * b + (1.0 - o.dampening) * d)
                    .collect(),
            };
            d = if o.nesterov {
                d.iter().zip(&b).map(|(d, b)| d + o.momentum * b).collect()
            } else {
                b.clone()
            };
            buf = Some(b);
        }
        for (p, d) in p.iter_mut().zip(&d) {
            *p -= o.lr * d;
        }
    }
    p
}

#[test]
fn sgd_follows_torch_definition() {
    let options = [
        SgdOptions {
            lr: 0.1,
            ..SgdOptions::default()
        },
        SgdOptions {
            lr: 0.05,
            momentum: 0.9,
            ..SgdOptions::default()
        },
        SgdOptions {
            lr: 0.05,
            momentum: 0.9,
            dampening: 0.3,
            weight_decay: 0.01,
            nesterov: false,
        },
        SgdOptions {
            lr: 0.02,
            momentum: 0.8,
            dampening: 0.0,
            weight_decay: 0.1,
            nesterov: true,
        },
    ];
    let mut g = Generator::new(77);
    for o in options {
        let p = Parameter::new(Tensor::randn(&[6], Some(&mut g)).unwrap());
        let p0 = to_f64(&p.data().unwrap());
        let grads: Vec<Tensor> = (0..4)
            .map(|_| Tensor::randn(&[6], Some(&mut g)).unwrap())
            .collect();
        // The parameter twice (a tie): stepped once.
        let mut opt = SGD::with_options(vec![p.clone(), p.clone()], o).unwrap();
        assert_eq!(opt.params().len(), 1);
        for gr in &grads {
            p.set_grad(Some(gr.clone())).unwrap();
            opt.step().unwrap();
        }
        let want = sgd_reference(o, &p0, &grads.iter().map(to_f64).collect::<Vec<_>>());
        for (a, b) in p.data().unwrap().as_slice().iter().zip(&want) {
            assert!((f64::from(*a) - b).abs() < 1e-5, "{o:?}: {a} vs {b}");
        }
    }
    // Parameters without a gradient are left alone.
    let q = Parameter::new(Tensor::ones(&[2]).unwrap());
    SGD::new(vec![q.clone()], 1.0).unwrap().step().unwrap();
    assert_eq!(q.data().unwrap().as_slice(), &[1.0, 1.0]);
}

#[test]
fn sgd_errors_have_torch_texts() {
    let err = |o: SgdOptions| SGD::with_options(vec![], o).unwrap_err().to_string();
    let d = SgdOptions::default();
    assert_eq!(
        err(SgdOptions { lr: -0.1, ..d }),
        "Invalid learning rate: -0.1"
    );
    assert_eq!(
        err(SgdOptions { lr: f64::NAN, ..d }),
        "Invalid learning rate: nan"
    );
    assert_eq!(
        err(SgdOptions {
            momentum: -1.0,
            ..d
        }),
        "Invalid momentum value: -1"
    );
    assert_eq!(
        err(SgdOptions {
            weight_decay: -0.5,
            ..d
        }),
        "Invalid weight_decay value: -0.5"
    );
    assert_eq!(
        err(SgdOptions {
            nesterov: true,
            ..d
        }),
        "Nesterov momentum requires a momentum and zero dampening"
    );
    assert_eq!(
        err(SgdOptions {
            nesterov: true,
            momentum: 0.9,
            dampening: 0.1,
            ..d
        }),
        "Nesterov momentum requires a momentum and zero dampening"
    );
}

#[test]
fn training_lowers_the_loss() {
    let mut out = String::new();
    let losses = chapter::train_tied_losses(&mut out).unwrap();
    assert!(losses[losses.len() - 1] < 0.2 * losses[0], "{losses:?}");
    assert!(out.contains("2.weight"));
}
