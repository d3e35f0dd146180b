//! Arbitrary shapes, indices, ranges and in-place operations on `Tensor`,
//! and arbitrary layers (convolutions, normalizations, pooling, activations,
//! embeddings) applied to it, forward and backward.
//!
//! Invariants: every call either returns an error or leaves a tensor whose
//! element count matches its shape; errors are exactly the documented cases
//! (checked against an independent model of row-major indexing); no panics
//! except `Index`'s, which the target never calls with unchecked input.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nninit::nn::{
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, ConvOptions, Dropout,
    Embedding, Flatten, LayerNorm, MaxPool2d, Module, Padding, PoolOptions, Softmax,
};
use nninit::{Generator, IntTensor, Tensor};

/// A layer with arbitrary (small) options.
#[derive(Debug, Arbitrary)]
enum Layer {
    Conv2d {
        cin: u8,
        cout: u8,
        k: [u8; 2],
        stride: [u8; 2],
        pad: [u8; 2],
        dilation: [u8; 2],
        groups: u8,
        same: bool,
        bias: bool,
    },
    Conv1d {
        cin: u8,
        cout: u8,
        k: u8,
        stride: u8,
        pad: u8,
        groups: u8,
    },
    BatchNorm2d(u8),
    BatchNorm1d(u8),
    LayerNorm(Vec<u8>),
    MaxPool {
        k: [u8; 2],
        stride: [u8; 2],
        pad: [u8; 2],
        ceil: bool,
    },
    AvgPool {
        k: [u8; 2],
        stride: [u8; 2],
        pad: [u8; 2],
        ceil: bool,
        include: bool,
    },
    Adaptive([u8; 2]),
    Softmax(i8),
    Flatten(i8, i8),
    Dropout(u8),
    Embedding {
        num: u8,
        dim: u8,
        padding: Option<i8>,
        indices: Vec<i8>,
    },
}

#[derive(Debug, Arbitrary)]
enum Op {
    Get(Vec<usize>),
    Set(Vec<usize>, f32),
    Row(usize),
    Select(usize),
    Narrow(usize, usize),
    Reshape(Vec<usize>),
    AddScalar(f32),
    MulScalar(f32),
    Mask(f32),
    MulBy(Vec<usize>),
    Fill(f32),
    Print,
    Layer(Layer, bool),
}

fn build(layer: &Layer) -> nninit::Result<Box<dyn Module>> {
    let u = |v: u8, m: u8| usize::from(v % m);
    let g = Some(&mut Generator::new(0));
    Ok(match layer {
        Layer::Conv2d {
            cin,
            cout,
            k,
            stride,
            pad,
            dilation,
            groups,
            same,
            bias,
        } => {
            let mut o = ConvOptions::<2>::default()
                .stride([u(stride[0], 4), u(stride[1], 4)])
                .padding([u(pad[0], 4), u(pad[1], 4)])
                .dilation([u(dilation[0], 3), u(dilation[1], 3)])
                .groups(u(*groups, 4))
                .bias(*bias);
            if *same {
                o = o.padding_mode(Padding::Same);
            }
            Box::new(Conv2d::new(
                u(*cin, 8),
                u(*cout, 8),
                [u(k[0], 5), u(k[1], 5)],
                o,
                g,
            )?)
        }
        Layer::Conv1d {
            cin,
            cout,
            k,
            stride,
            pad,
            groups,
        } => {
            let o = ConvOptions::<1>::default()
                .stride([u(*stride, 4)])
                .padding([u(*pad, 4)])
                .groups(u(*groups, 4));
            Box::new(Conv1d::new(u(*cin, 8), u(*cout, 8), [u(*k, 5)], o, g)?)
        }
        Layer::BatchNorm2d(c) => Box::new(BatchNorm2d::new(u(*c, 16))?),
        Layer::BatchNorm1d(c) => Box::new(BatchNorm1d::new(u(*c, 16))?),
        Layer::LayerNorm(s) => {
            let s: Vec<usize> = s.iter().take(3).map(|&d| u(d, 16)).collect();
            Box::new(LayerNorm::new(&s)?)
        }
        Layer::MaxPool {
            k,
            stride,
            pad,
            ceil,
        } => Box::new(MaxPool2d::new(
            PoolOptions::new([u(k[0], 5), u(k[1], 5)])
                .stride([u(stride[0], 4), u(stride[1], 4)])
                .padding([u(pad[0], 3), u(pad[1], 3)])
                .ceil_mode(*ceil),
        )?),
        Layer::AvgPool {
            k,
            stride,
            pad,
            ceil,
            include,
        } => Box::new(AvgPool2d::new(
            PoolOptions::new([u(k[0], 5), u(k[1], 5)])
                .stride([u(stride[0], 4), u(stride[1], 4)])
                .padding([u(pad[0], 3), u(pad[1], 3)])
                .ceil_mode(*ceil)
                .count_include_pad(*include),
        )?),
        Layer::Adaptive(s) => {
            let o = |v: u8| (v % 5 != 0).then(|| usize::from(v % 5));
            Box::new(AdaptiveAvgPool2d::new([o(s[0]), o(s[1])]))
        }
        Layer::Softmax(d) => Box::new(Softmax::new(Some(isize::from(*d % 6)))),
        Layer::Flatten(a, b) => {
            Box::new(Flatten::with_dims(isize::from(*a % 6), isize::from(*b % 6)))
        }
        Layer::Dropout(p) => Box::new(Dropout::new(f64::from(*p) / 200.0)?),
        Layer::Embedding {
            num, dim, padding, ..
        } => Box::new(Embedding::new(
            u(*num, 12),
            u(*dim, 6),
            padding.map(|p| i64::from(p % 14)),
            g,
        )?),
    })
}

/// Runs `layer` forward (and backward in training mode) on `t`: an error,
/// or an output whose gradient has the input's shape.
fn run_layer(layer: &Layer, train: bool, t: &Tensor) {
    let Ok(mut m) = build(layer) else { return };
    m.train(train);
    let out = if let Layer::Embedding { indices, .. } = layer {
        let idx: Vec<i64> = indices.iter().take(8).map(|&i| i64::from(i % 14)).collect();
        let n = idx.len();
        let e = m.as_any_mut().downcast_mut::<Embedding>().unwrap();
        assert!(e.forward(t).is_err(), "float indices are an error");
        e.forward_indices(&IntTensor::from_vec(idx, &[n]).unwrap())
    } else {
        m.forward(t)
    };
    let Ok(y) = out else { return };
    assert_eq!(Some(y.numel()), numel(y.shape()));
    let _ = y.to_string();
    if train {
        let dx = m.backward(&Tensor::ones(y.shape()).unwrap()).unwrap();
        if !matches!(layer, Layer::Embedding { .. }) {
            assert_eq!(dx.shape(), t.shape(), "{layer:?}: input gradient shape");
        }
        assert!(m.backward(&y).is_err(), "one backward per forward");
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    shape: Vec<usize>,
    ops: Vec<Op>,
}

/// Independent model: the flat index of `index` in `shape`, if valid.
fn flat(shape: &[usize], index: &[usize]) -> Option<usize> {
    if shape.len() != index.len() {
        return None;
    }
    let mut f = 0usize;
    for (&i, &n) in index.iter().zip(shape) {
        if i >= n {
            return None;
        }
        f = f * n + i;
    }
    Some(f)
}

fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

fuzz_target!(|input: Input| {
    // Keep allocations bounded: large shapes must be rejected or small.
    let shape: Vec<usize> = input.shape.iter().take(4).map(|d| d % 16).collect();
    let Ok(mut t) = Tensor::zeros(&shape) else {
        return;
    };
    for op in input.ops.into_iter().take(32) {
        assert_eq!(Some(t.numel()), numel(t.shape()));
        let shape = t.shape().to_vec();
        match op {
            Op::Get(i) => assert_eq!(t.get(&i).is_ok(), flat(&shape, &i).is_some()),
            Op::Set(i, v) => {
                let expect = flat(&shape, &i);
                assert_eq!(t.set(&i, v).is_ok(), expect.is_some());
                if let Some(f) = expect {
                    assert_eq!(t.as_slice()[f].to_bits(), v.to_bits());
                }
            }
            Op::Row(i) => {
                let ok = !shape.is_empty() && i < shape[0];
                assert_eq!(t.row(i).is_ok(), ok);
                if ok {
                    assert_eq!(
                        t.row(i).unwrap().len(),
                        shape[1..].iter().product::<usize>()
                    );
                }
            }
            Op::Select(i) => {
                if let Ok(s) = t.select(i) {
                    assert_eq!(s.shape(), &shape[1..]);
                }
            }
            Op::Narrow(a, b) => match t.narrow(a..b) {
                Ok(n) => {
                    assert!(a <= b && b <= shape[0]);
                    assert_eq!(n.shape()[0], b - a);
                }
                Err(_) => assert!(shape.is_empty() || a > b || b > shape[0]),
            },
            Op::Reshape(s) => {
                let s: Vec<usize> = s.into_iter().take(6).collect();
                let same = numel(&s) == Some(t.numel());
                match t.clone().reshape(&s) {
                    Ok(r) => {
                        assert!(same);
                        t = r;
                    }
                    Err(_) => assert!(!same),
                }
            }
            Op::AddScalar(v) => t += v,
            Op::MulScalar(v) => t *= v,
            Op::Mask(th) => {
                let before = t.clone();
                assert_eq!(t.threshold_mask_(th).is_err(), th.is_nan());
                if !th.is_nan() {
                    for (x, y) in t.as_slice().iter().zip(before.as_slice()) {
                        if y.abs() < th {
                            assert_eq!(*x, 0.0);
                        } else {
                            assert_eq!(x.to_bits(), y.to_bits());
                        }
                    }
                }
            }
            Op::MulBy(s) => {
                let s: Vec<usize> = s.into_iter().take(4).map(|d| d % 16).collect();
                if let Ok(other) = Tensor::ones(&s) {
                    assert_eq!(t.mul_(&other).is_ok(), s == shape);
                }
            }
            Op::Fill(v) => {
                t.fill_(v);
                assert!(t.as_slice().iter().all(|x| x.to_bits() == v.to_bits()));
            }
            Op::Print => {
                let text = t.to_string();
                assert!(text.starts_with("tensor(") && text.ends_with(')'));
            }
            Op::Layer(layer, train) => run_layer(&layer, train, &t),
        }
    }
});
