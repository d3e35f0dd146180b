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

/// A safetensors file from a header text and data bytes.
fn st_file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut f = (header.len() as u64).to_le_bytes().to_vec();
    f.extend_from_slice(header.as_bytes());
    f.extend_from_slice(data);
    f
}

#[test]
fn section_4_modules() {
    use nninit::nn::{Linear, Module, ReLU, Sequential, StateDict};

    let mut lin = Linear::new(4, 8).unwrap();
    expect_err(
        "wrong input width",
        "mat1 and mat2 shapes cannot be multiplied (2x5 and 4x8)",
        || lin.forward(&w(&[2, 5])),
    );
    expect_err(
        "0-d input",
        "both arguments to linear need to be at least 1D, but they are 0D and 2D",
        || lin.forward(&Tensor::scalar(1.0)),
    );
    let mut lazy = Linear::lazy(3);
    expect_err(
        "uninitialized parameter",
        "Can't access an uninitialized parameter",
        || lazy.weight.data().map(|_| ()),
    );
    lazy.forward(&w(&[2, 6])).unwrap();
    expect_err(
        "lazy layer, later width",
        "mat1 and mat2 shapes cannot be multiplied (2x7 and 6x3)",
        || lazy.forward(&w(&[2, 7])),
    );
    let mut seq = Sequential::new();
    expect_err(
        "empty module name",
        "module name can't be empty string \"\"",
        || seq.add_module("", ReLU::new()).map(|_| ()),
    );
    expect_err(
        "dotted module name",
        "module name can't contain \".\", got: a.b",
        || seq.add_module("a.b", ReLU::new()).map(|_| ()),
    );
    seq.add_module("x", ReLU::new()).unwrap();
    expect_err(
        "duplicate module name",
        "attribute 'x' already exists",
        || seq.add_module("x", ReLU::new()).map(|_| ()),
    );
    expect_err(
        "child index",
        "index 3 is out of range for a module with 1 children",
        || (&seq as &dyn Module).child(3).map(|_| ()),
    );
    expect_err("child type", "module 'x' is a ReLU, not a Linear", || {
        seq.child::<Linear>(0).map(|_| ())
    });

    let net = Sequential::new().with(Linear::new(2, 3).unwrap());
    let mut sd = StateDict::new();
    sd.insert("0.weight", w(&[3, 2]));
    expect_err(
        "missing key",
        "Error(s) in loading state_dict for Sequential:\n\tMissing key(s) in state_dict: \"0.bias\". ",
        || net.load_state_dict(&sd, true),
    );
    sd.insert("0.bias", w(&[3]));
    sd.insert("1.weight", w(&[1]));
    expect_err(
        "unexpected key",
        "Unexpected key(s) in state_dict: \"1.weight\". ",
        || net.load_state_dict(&sd, true),
    );
    sd.insert("0.weight", w(&[2, 3]));
    expect_err(
        "size mismatch (even when not strict)",
        "size mismatch for 0.weight: copying a param with shape torch.Size([2, 3]) from \
         checkpoint, the shape in current model is torch.Size([3, 2]).",
        || net.load_state_dict(&sd, false),
    );
}

#[test]
fn section_5_corrupt_safetensors() {
    use nninit::io::safetensors::deserialize;

    let ok_header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    assert!(deserialize(&st_file(ok_header, &[0; 8])).is_ok());
    let rows: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "empty file",
            "the file has 0 bytes, fewer than the 8",
            vec![],
        ),
        (
            "7 bytes",
            "the file has 7 bytes, fewer than the 8",
            vec![1; 7],
        ),
        (
            "header too large",
            "header length 18446744073709551615 is over the limit",
            vec![0xff; 16],
        ),
        (
            "header past the end",
            "header length 100 runs past the end of the file (4 bytes follow the length)",
            [100u64.to_le_bytes().as_slice(), b"{}  "].concat(),
        ),
        (
            "header not UTF-8",
            "the header is not UTF-8",
            [2u64.to_le_bytes().as_slice(), &[0xff, 0xfe]].concat(),
        ),
        (
            "header not JSON",
            "the header is not valid",
            st_file("{nope", &[]),
        ),
        (
            "header not an object",
            "the header is not valid",
            st_file("[1, 2]", &[]),
        ),
        (
            "entry with a missing field",
            "entry for tensor \"a\"",
            st_file(r#"{"a":{"dtype":"F32","shape":[2]}}"#, &[0; 8]),
        ),
        (
            "entry with a negative offset",
            "entry for tensor \"a\"",
            st_file(
                r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#,
                &[0; 4],
            ),
        ),
        (
            "bad metadata",
            "\"__metadata__\" must map strings to strings",
            st_file(r#"{"__metadata__":{"k":1}}"#, &[]),
        ),
        (
            "duplicate names",
            "duplicate tensor name \"a\" in the header",
            st_file(
                r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                &[0; 4],
            ),
        ),
        (
            "offsets past the data",
            "data_offsets [0, 12] of tensor \"a\" are out of range for 8 bytes of data",
            st_file(
                r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}"#,
                &[0; 8],
            ),
        ),
        (
            "offsets reversed",
            "data_offsets [8, 0] of tensor \"a\" are out of range",
            st_file(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#,
                &[0; 8],
            ),
        ),
        (
            "shape x dtype != bytes",
            "tensor \"a\" of shape [3] and dtype F32 needs 12 bytes, but its data_offsets [0, 8] cover 8",
            st_file(
                r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                &[0; 8],
            ),
        ),
        (
            "shape overflowing",
            "needs too many bytes",
            st_file(
                r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#,
                &[0; 8],
            ),
        ),
        (
            "overlapping tensors",
            "tensors \"a\" (ending at byte 8) and \"b\" (starting at byte 4) overlap",
            st_file(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                &[0; 12],
            ),
        ),
        (
            "a hole",
            "bytes 4..8 of the data belong to no tensor",
            st_file(
                r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
                &[0; 12],
            ),
        ),
        (
            "trailing bytes",
            "bytes 8..12 at the end of the data belong to no tensor",
            st_file(ok_header, &[0; 12]),
        ),
        (
            "other dtype",
            "tensor \"a\" has dtype U8: only F32, BF16, F16 and I64 are supported",
            st_file(
                r#"{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}"#,
                &[0; 8],
            ),
        ),
    ];
    for (row, want, bytes) in rows {
        expect_err(row, want, || deserialize(&bytes));
    }

    // Names or shapes that do not fit the model.
    use nninit::nn::{Linear, Module};
    let lin = Linear::new(2, 3).unwrap();
    let file = st_file(
        r#"{"weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"bias":{"dtype":"F32","shape":[3],"data_offsets":[24,36]}}"#,
        &[0; 36],
    );
    expect_err(
        "shape mismatch with the model",
        "size mismatch for weight: copying a param with shape torch.Size([2, 3])",
        || lin.load_state_dict(&deserialize(&file)?, true),
    );
    let file = st_file(
        r#"{"w":{"dtype":"F32","shape":[3,2],"data_offsets":[0,24]}}"#,
        &[0; 24],
    );
    expect_err(
        "names not in the model",
        "Missing key(s) in state_dict: \"weight\", \"bias\". \n\tUnexpected key(s) in state_dict: \"w\". ",
        || lin.load_state_dict(&deserialize(&file)?, true),
    );
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
fn section_2_eye_dirac_orthogonal_sparse() {
    let two = "Only tensors with 2 dimensions are supported";
    expect_err("eye_ on 3-D", two, || init::eye_(&mut w(&[2, 2, 2])));
    expect_err("eye_ on 1-D", two, || init::eye_(&mut w(&[4])));
    expect_err("eye_ on 0-D", two, || init::eye_(&mut Tensor::scalar(1.0)));

    let dirac = "Only tensors with 3, 4, or 5 dimensions are supported";
    expect_err("dirac_ on 2-D", dirac, || init::dirac_(&mut w(&[3, 3]), 1));
    expect_err("dirac_ on 6-D", dirac, || {
        init::dirac_(&mut w(&[2, 2, 1, 1, 1, 1]), 1)
    });
    expect_err(
        "dirac_ groups 0",
        "dirac_ expects groups >= 1, but found groups 0",
        || init::dirac_(&mut w(&[4, 4, 3]), 0),
    );
    expect_err(
        "dirac_ indivisible",
        "dim 0 must be divisible by groups",
        || init::dirac_(&mut w(&[4, 4, 3]), 3),
    );

    let more = "Only tensors with 2 or more dimensions are supported";
    expect_err("orthogonal_ on 1-D", more, || {
        init::orthogonal_(&mut w(&[5]), 1.0, None)
    });
    expect_err("orthogonal_ on 0-D", more, || {
        init::orthogonal_(&mut Tensor::scalar(0.0), 1.0, None)
    });
    expect_err(
        "orthogonal_ NaN gain",
        "gain must be a finite number, but found gain nan",
        || init::orthogonal_(&mut w(&[3, 3]), f64::NAN, None),
    );
    expect_err("orthogonal_ infinite gain", "but found gain -inf", || {
        init::orthogonal_(&mut w(&[3, 3]), f64::NEG_INFINITY, None)
    });
    expect_err(
        "orthogonal_ gain beyond f32",
        "but found gain 1e+39",
        || init::orthogonal_(&mut w(&[3, 3]), 1e39, None),
    );

    expect_err("sparse_ on 3-D", two, || {
        init::sparse_(&mut w(&[2, 2, 2]), 0.5, 0.01, None)
    });
    expect_err("sparse_ on 1-D", two, || {
        init::sparse_(&mut w(&[4]), 0.5, 0.01, None)
    });
    for (sparsity, shown) in [(-0.1, "-0.1"), (1.5, "1.5"), (f64::NAN, "nan")] {
        expect_err(
            "sparse_ sparsity out of [0, 1]",
            &format!("sparse_ expects a sparsity in [0, 1], but found sparsity {shown}"),
            || init::sparse_(&mut w(&[4, 4]), sparsity, 0.01, None),
        );
    }
    expect_err(
        "sparse_ negative std",
        "normal expects std >= 0.0 and finite, but found std -1",
        || init::sparse_(&mut w(&[4, 4]), 0.5, -1.0, None),
    );
    expect_err("sparse_ NaN std", "but found std nan", || {
        init::sparse_(&mut w(&[4, 4]), 0.5, f64::NAN, None)
    });
}

#[test]
fn section_2_whole_tensor_inits_on_empty_tensors() {
    // Bad parameters fail on empty tensors too ...
    expect_err("dirac_ groups 0, empty", "found groups 0", || {
        init::dirac_(&mut w(&[0, 3, 3]), 0)
    });
    expect_err("orthogonal_ NaN gain, empty", "found gain nan", || {
        init::orthogonal_(&mut w(&[0, 3]), f64::NAN, None)
    });
    expect_err("sparse_ NaN sparsity, empty", "found sparsity nan", || {
        init::sparse_(&mut w(&[0, 3]), f64::NAN, 0.01, None)
    });
    // ... and shape rules do not: these are no-ops.
    init::eye_(&mut w(&[0])).unwrap();
    init::dirac_(&mut w(&[0, 2]), 1).unwrap();
    init::dirac_(&mut w(&[3, 0, 3]), 2).unwrap();
    init::orthogonal_(&mut w(&[0]), 1.0, None).unwrap();
    init::sparse_(&mut w(&[2, 0, 2]), 0.5, 0.01, None).unwrap();
}

#[test]
fn section_2_whole_tensor_inits_do_not_shard() {
    let stream = Generator::new(0).next_stream();
    for (init, name) in [
        (init::Init::Eye, "eye_"),
        (init::Init::Dirac { groups: 1 }, "dirac_"),
        (init::Init::Orthogonal { gain: 1.0 }, "orthogonal_"),
        (
            init::Init::Sparse {
                sparsity: 0.1,
                std: 0.01,
            },
            "sparse_",
        ),
    ] {
        expect_err(
            name,
            &format!("{name} cannot initialize a shard: it needs the whole tensor"),
            || init.fill_shard(&[4, 4, 3], 0, &mut [0.0; 4], stream),
        );
    }
    // Parameters are checked first.
    expect_err("sharded dirac_ groups 0", "found groups 0", || {
        init::Init::Dirac { groups: 0 }.fill_shard(&[4, 4, 3], 0, &mut [0.0; 4], stream)
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

/// Layer shape, index and option errors: typed errors with PyTorch's texts.
#[test]
fn section_11_layers() {
    use nninit::IntTensor;
    use nninit::nn::Module;
    use nninit::nn::{
        AdaptiveAvgPool2d, Approximate, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, ConvOptions,
        Dropout, Embedding, Flatten, LayerNorm, MaxPool2d, Padding, PoolOptions, Softmax,
    };
    let o2 = ConvOptions::<2>::default();
    let msg = |r: nninit::Result<Tensor>| r.unwrap_err().to_string();
    let mut conv = Conv2d::new(3, 8, [3, 3], o2, None).unwrap();
    assert_eq!(
        msg(conv.forward(&Tensor::zeros(&[2, 4, 8, 8]).unwrap())),
        "Given groups=1, weight of size [8, 3, 3, 3], expected input[2, 4, 8, 8] to have 3 channels, but got 4 channels instead"
    );
    assert_eq!(
        msg(conv.forward(&Tensor::zeros(&[2, 3]).unwrap())),
        "Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: [2, 3]"
    );
    assert_eq!(
        msg(conv.forward(&Tensor::zeros(&[2, 3, 2, 2]).unwrap())),
        "Calculated padded input size per channel: (2 x 2). Kernel size: (3 x 3). Kernel size can't be greater than actual input size"
    );
    let mut dilated = Conv2d::new(3, 8, [3, 3], o2.dilation([2, 2]), None).unwrap();
    assert!(
        msg(dilated.forward(&Tensor::zeros(&[1, 3, 4, 4]).unwrap()))
            .contains("Kernel size: (5 x 5)")
    );
    let err = |r: nninit::Result<Conv2d>| r.unwrap_err().to_string();
    assert_eq!(
        err(Conv2d::new(3, 8, [3, 3], o2.groups(2), None)),
        "in_channels must be divisible by groups"
    );
    assert_eq!(
        err(Conv2d::new(4, 6, [3, 3], o2.groups(4), None)),
        "out_channels must be divisible by groups"
    );
    assert_eq!(
        err(Conv2d::new(4, 8, [3, 3], o2.groups(0), None)),
        "groups must be a positive integer"
    );
    assert_eq!(
        err(Conv2d::new(
            4,
            8,
            [3, 3],
            o2.padding_mode(Padding::Same).stride([2, 2]),
            None
        )),
        "padding='same' is not supported for strided convolutions"
    );
    assert_eq!(
        "full".parse::<Padding<2>>().unwrap_err().to_string(),
        "Invalid padding string 'full', should be one of {'valid', 'same'}"
    );
    let mut c1 = Conv1d::new(3, 8, [3], ConvOptions::default(), None).unwrap();
    assert_eq!(
        msg(c1.forward(&Tensor::zeros(&[2, 3, 4, 4]).unwrap())),
        "Expected 2D (unbatched) or 3D (batched) input to conv1d, but got input of size: [2, 3, 4, 4]"
    );
    let mut e = Embedding::new(10, 3, None, None).unwrap();
    assert!(
        e.forward_indices(&IntTensor::scalar(10))
            .unwrap_err()
            .to_string()
            .starts_with("index out of range in self")
    );
    assert!(e.forward_indices(&IntTensor::scalar(-1)).is_err());
    assert!(
        Embedding::new(10, 3, Some(10), None)
            .unwrap_err()
            .to_string()
            .starts_with("Padding_idx must be within num_embeddings")
    );
    assert_eq!(
        msg(e.forward(&Tensor::zeros(&[2]).unwrap())),
        "the indices of Embedding has dtype float32, expected int64"
    );
    for p in [1.5, -0.1, f64::NAN] {
        assert!(
            Dropout::new(p)
                .unwrap_err()
                .to_string()
                .starts_with("dropout probability has to be between 0 and 1, but got")
        );
    }
    let mut bn = BatchNorm2d::new(4).unwrap();
    assert_eq!(
        msg(bn.forward(&Tensor::zeros(&[2, 4, 3]).unwrap())),
        "expected 4D input (got 3D input)"
    );
    assert_eq!(
        msg(bn.forward(&Tensor::zeros(&[2, 3, 3, 3]).unwrap())),
        "running_mean should contain 3 elements not 4"
    );
    let mut bn1 = BatchNorm1d::new(4).unwrap();
    assert_eq!(
        msg(bn1.forward(&Tensor::zeros(&[2, 4, 3, 3]).unwrap())),
        "expected 2D or 3D input (got 4D input)"
    );
    let mut ln = LayerNorm::new(&[10]).unwrap();
    assert_eq!(
        msg(ln.forward(&Tensor::zeros(&[2, 5]).unwrap())),
        "Given normalized_shape=[10], expected input with shape [*, 10], but got input of size[2, 5]"
    );
    assert_eq!(
        MaxPool2d::new(PoolOptions::new([3, 3]).padding([2, 2]))
            .unwrap_err()
            .to_string(),
        "pad should be at most half of effective kernel size, but got pad=2, kernel_size=3 and dilation=1"
    );
    let mut mp = MaxPool2d::new(PoolOptions::new([3, 3])).unwrap();
    assert_eq!(
        msg(mp.forward(&Tensor::zeros(&[1, 1, 2, 2]).unwrap())),
        "Given input size: (1x2x2). Calculated output size: (1x0x0). Output size is too small"
    );
    assert!(msg(mp.forward(&Tensor::zeros(&[8, 8]).unwrap())).contains("3D or 4D"));
    let mut ap = AdaptiveAvgPool2d::square(2);
    assert!(
        msg(ap.forward(&Tensor::zeros(&[8, 8]).unwrap()))
            .contains("3D or 4D tensor for adaptive_avg_pool2d()")
    );
    assert_eq!(
        msg(Softmax::new(Some(2)).forward(&Tensor::zeros(&[2, 3]).unwrap())),
        "Dimension out of range (expected to be in range of [-2, 1], but got 2)"
    );
    assert_eq!(
        msg(Flatten::with_dims(1, 3).forward(&Tensor::zeros(&[2, 3]).unwrap())),
        "Dimension out of range (expected to be in range of [-2, 1], but got 3)"
    );
    assert!(
        "fast"
            .parse::<Approximate>()
            .unwrap_err()
            .to_string()
            .starts_with("approximate argument must be either none or tanh")
    );
}
