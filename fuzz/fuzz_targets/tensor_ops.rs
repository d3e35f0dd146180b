//! Arbitrary shapes, indices, ranges and in-place operations on `Tensor`.
//!
//! Invariants: every call either returns an error or leaves a tensor whose
//! element count matches its shape; errors are exactly the documented cases
//! (checked against an independent model of row-major indexing); no panics
//! except `Index`'s, which the target never calls with unchecked input.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nninit::Tensor;

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
        }
    }
});
