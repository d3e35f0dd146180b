//! Every bad-input row of SPEC sections 2, 4 and 5: an `Err` with the expected
//! message, never a panic. Each case runs under `catch_unwind` so that a panic
//! is reported as a failure of that row, not of the whole test.

use std::panic::{AssertUnwindSafe, catch_unwind};

use nninit::init::{self, FanMode, Nonlinearity};
use nninit::{Generator, Tensor};

/// Runs `f` and checks it returns an error whose message contains `want`.
fn expect_err<T: std::fmt::Debug>(row: &str, want: &str, f: impl FnOnce() -> nninit::Result<T>) {
    match catch_unwind(AssertUnwindSafe(f)) {
        Err(_) => panic!("{row}: panicked instead of returning an error"),
        Ok(Ok(v)) => panic!("{row}: returned Ok({v:?}), expected an error containing {want:?}"),
        Ok(Err(e)) => {
            let msg = e.to_string();
            assert!(
                msg.contains(want),
                "{row}: message {msg:?} does not contain {want:?}"
            );
        }
    }
}

fn w(shape: &[usize]) -> Tensor {
    Tensor::zeros(shape).unwrap()
}

#[test]
fn section_2_gains_and_fans() {
    expect_err(
        "unknown nonlinearity",
        "Unsupported nonlinearity gelu",
        || "gelu".parse::<Nonlinearity>(),
    );
    expect_err(
        "NaN leaky slope",
        "negative_slope nan not a valid number",
        || init::calculate_gain(Nonlinearity::LeakyRelu, Some(f64::NAN)),
    );
    expect_err(
        "infinite leaky slope",
        "negative_slope inf not a valid number",
        || init::calculate_gain(Nonlinearity::LeakyRelu, Some(f64::INFINITY)),
    );
    let fan_msg = "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions";
    expect_err("fans of 1-D", fan_msg, || {
        init::calculate_fan_in_and_fan_out(&[3])
    });
    expect_err("fans of 0-D", fan_msg, || {
        init::calculate_fan_in_and_fan_out(&[])
    });
    expect_err("xavier on 1-D", fan_msg, || {
        init::xavier_uniform_(&mut w(&[3]), 1.0, None)
    });
    expect_err("xavier_normal on 1-D", fan_msg, || {
        init::xavier_normal_(&mut w(&[3]), 1.0, None)
    });
    expect_err("kaiming on 1-D", fan_msg, || {
        init::kaiming_uniform_(&mut w(&[3]), 0.0, FanMode::FanIn, Nonlinearity::Relu, None)
    });
    expect_err(
        "bad mode",
        "Mode fan_avg not supported, please use one of fan_in, fan_out",
        || "fan_avg".parse::<FanMode>(),
    );
    expect_err(
        "non-finite gain",
        "gain must be a finite number, but found gain nan",
        || init::xavier_uniform_(&mut w(&[3, 3]), f64::NAN, None),
    );
}

#[test]
fn section_2_uniform_and_normal() {
    let t = || w(&[4, 4]);
    expect_err(
        "a > b",
        "uniform_ expects to return a [from, to) range, but found from=2 > to=1",
        || init::uniform_(&mut t(), 2.0, 1.0, None),
    );
    expect_err(
        "NaN bound",
        "from is out of bounds for float: from=nan",
        || init::uniform_(&mut t(), f64::NAN, 1.0, None),
    );
    expect_err(
        "infinite bound",
        "to is out of bounds for float: to=inf",
        || init::uniform_(&mut t(), 0.0, f64::INFINITY, None),
    );
    expect_err(
        "bound outside f32",
        "to is out of bounds for float: to=1e+39",
        || init::uniform_(&mut t(), 0.0, 1e39, None),
    );
    expect_err(
        "b - a overflowing f32",
        "which result in to-from to exceed the limit",
        || init::uniform_(&mut t(), -3e38, 3e38, None),
    );
    expect_err(
        "negative std",
        "normal expects std >= 0.0 and finite, but found std -1",
        || init::normal_(&mut t(), 0.0, -1.0, None),
    );
    expect_err("NaN std", "but found std nan", || {
        init::normal_(&mut t(), 0.0, f64::NAN, None)
    });
    expect_err("infinite std", "but found std inf", || {
        init::normal_(&mut t(), 0.0, f64::INFINITY, None)
    });
    expect_err("NaN mean", "but found mean nan", || {
        init::normal_(&mut t(), f64::NAN, 1.0, None)
    });
    expect_err("overflowing samples", "to fit in float", || {
        init::normal_(&mut t(), 3e38, 1e38, None)
    });
    expect_err(
        "constant overflowing f32",
        "without overflow: 1e+39",
        || init::constant_(&mut t(), 1e39),
    );
    expect_err("NaN threshold", "found threshold nan", || {
        init::threshold_mask_(&mut t(), f32::NAN)
    });
}

#[test]
fn section_2_trunc_normal() {
    let t = || w(&[4, 4]);
    let tn = |mean: f64, std: f64, a: f64, b: f64| {
        move || init::trunc_normal_(&mut t(), mean, std, a, b, None)
    };
    expect_err(
        "a >= b",
        "trunc_normal_ expects a < b, but found a=2 >= b=-2",
        tn(0.0, 1.0, 2.0, -2.0),
    );
    expect_err(
        "a == b",
        "trunc_normal_ expects a < b, but found a=1 >= b=1",
        tn(0.0, 1.0, 1.0, 1.0),
    );
    expect_err(
        "std == 0",
        "trunc_normal_ expects std > 0.0 and finite, but found std 0",
        tn(0.0, 0.0, -2.0, 2.0),
    );
    expect_err(
        "negative std",
        "trunc_normal_ expects std > 0.0 and finite, but found std -1",
        tn(0.0, -1.0, -2.0, 2.0),
    );
    expect_err("NaN std", "but found std nan", tn(0.0, f64::NAN, -2.0, 2.0));
    expect_err(
        "infinite std",
        "but found std inf",
        tn(0.0, f64::INFINITY, -2.0, 2.0),
    );
    expect_err(
        "std underflowing f32",
        "but found std 1e-50",
        tn(0.0, 1e-50, -2.0, 2.0),
    );
    expect_err(
        "NaN mean",
        "trunc_normal_ expects a finite mean that fits in float, but found mean nan",
        tn(f64::NAN, 1.0, -2.0, 2.0),
    );
    expect_err(
        "infinite mean",
        "but found mean -inf",
        tn(f64::NEG_INFINITY, 1.0, -2.0, 2.0),
    );
    expect_err(
        "NaN a",
        "trunc_normal_ expects bounds that are not NaN, but found a=nan",
        tn(0.0, 1.0, f64::NAN, 2.0),
    );
    expect_err(
        "NaN b",
        "trunc_normal_ expects bounds that are not NaN, but found b=nan",
        tn(0.0, 1.0, -2.0, f64::NAN),
    );
    expect_err(
        "a = +inf",
        "found a=inf >= b=inf",
        tn(0.0, 1.0, f64::INFINITY, f64::INFINITY),
    );
    expect_err(
        "no float in [a, b]",
        "trunc_normal_ expects [a, b] to contain a float, but found a=0.1 and b=0.1",
        tn(0.0, 1.0, 0.1, 0.1 + 1e-12),
    );
    expect_err(
        "window above f32",
        "to contain a float, but found a=1e+39 and b=inf",
        tn(0.0, 1.0, 1e39, f64::INFINITY),
    );
    expect_err(
        "window 40 std above the mean",
        "trunc_normal_ expects [a, b] to reach within 37 std of the mean and its samples to \
         fit in float, but found a=40 and b=41 with mean 0 and std 1",
        tn(0.0, 1.0, 40.0, 41.0),
    );
    expect_err(
        "window 50 std below the mean",
        "but found a=-1 and b=-0.5 with mean 0 and std 0.01",
        tn(0.0, 0.01, -1.0, -0.5),
    );
    expect_err(
        "samples overflowing f32",
        "with mean 3e+38 and std 1e+37",
        tn(3e38, 1e37, 0.0, f64::INFINITY),
    );
    // Empty tensors: parameters are still checked.
    expect_err("a >= b, empty", "found a=2 >= b=-2", || {
        init::trunc_normal_(&mut w(&[0, 3]), 0.0, 1.0, 2.0, -2.0, None)
    });
    // Infinite bounds are allowed.
    init::trunc_normal_(&mut t(), 0.0, 1.0, f64::NEG_INFINITY, f64::INFINITY, None).unwrap();
    init::trunc_normal_(&mut w(&[0]), 0.0, 1.0, -2.0, 2.0, None).unwrap();
}

#[test]
fn section_2_bad_parameters_still_fail_on_empty_tensors() {
    // Zero-element tensors are no-ops only once the parameters are valid.
    let mut empty = w(&[0, 3]);
    expect_err("a > b, empty", "found from=2 > to=1", || {
        init::uniform_(&mut empty, 2.0, 1.0, None)
    });
    expect_err("NaN std, empty", "found std nan", || {
        init::normal_(&mut empty, 0.0, f64::NAN, None)
    });
    // ... and the shape checks are skipped: these are no-ops.
    init::xavier_uniform_(&mut w(&[0]), 1.0, None).unwrap();
    init::kaiming_normal_(
        &mut w(&[5, 0]),
        0.0,
        FanMode::FanOut,
        Nonlinearity::Relu,
        None,
    )
    .unwrap();
}

#[test]
fn section_2_shards() {
    let init = init::Init::XavierUniform { gain: 1.0 };
    let stream = Generator::new(0).next_stream();
    expect_err(
        "shard past the end",
        "shard [10, 20) is outside a tensor of 12 elements",
        || init.fill_shard(&[3, 4], 10, &mut [0.0; 10], stream),
    );
    expect_err("shard of a 1-D tensor", "fewer than 2 dimensions", || {
        init.fill_shard(&[12], 0, &mut [0.0; 4], stream)
    });
}

#[test]
fn tensors() {
    expect_err(
        "data/shape mismatch",
        "shape '[2, 3]' is invalid for input of size 5",
        || Tensor::from_vec(vec![0.0; 5], &[2, 3]),
    );
    expect_err("overflowing shape", "too many elements", || {
        Tensor::zeros(&[usize::MAX, 3])
    });
    expect_err("shape past isize::MAX bytes", "too many elements", || {
        Tensor::ones(&[1 << 62])
    });
    expect_err(
        "index out of range",
        "index 4 is out of bounds for dimension 1 with size 3",
        || w(&[2, 3]).get(&[1, 4]),
    );
    expect_err("index rank", "2 given for a tensor of dimension 3", || {
        w(&[2, 3, 4]).get(&[1, 1])
    });
    expect_err("row of a scalar", "0-d tensor", || {
        Tensor::scalar(1.0).row(0).map(<[f32]>::to_vec)
    });
    expect_err("narrow past the end", "range 1..5 is out of bounds", || {
        w(&[4, 2]).narrow(1..5)
    });
    expect_err(
        "reshape",
        "shape '[5]' is invalid for input of size 6",
        || w(&[2, 3]).reshape(&[5]),
    );
    expect_err("mul_ shapes", "must match the shape", || {
        w(&[2, 3]).mul_(&w(&[3, 2]))
    });
    expect_err("item of many", "invalid for input of size 6", || {
        w(&[2, 3]).item()
    });
}
