//! `ndarray` support (feature `ndarray`): every initializer on arrays and
//! views gives the bits it gives on a `Tensor` of the same shape from the same
//! generator, whatever the layout; fans on the array's shape; the error texts;
//! conversions and zero-copy views; contiguous arrays filled without a
//! temporary buffer (counted by a global allocator).
//!
//! `cargo test --release --features ndarray --test ndarray`
#![cfg(feature = "ndarray")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::{
    Array, Array1, Array2, Array4, ArrayD, ArrayRef, ArrayViewMutD, Axis, Dimension, Ix1, Ix2, Ix4,
    IxDyn, ShapeBuilder, Slice, s,
};
use nninit::init::{self, FanMode, Init, InitTarget, Nonlinearity, calculate_fan_in_and_fan_out};
use nninit::{Error, Generator, Tensor};

// ---- allocation counting ----------------------------------------------------

/// Allocations of at least this many bytes are counted. Every other test here
/// allocates less than this at a time, so a count taken around a fill of a
/// large array sees only that fill's large buffers.
const BIG: usize = 8 << 20;

static BIG_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments, so
// `System`'s guarantees hold; the counter has no effect on the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= BIG {
            BIG_ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: the caller's layout, as `GlobalAlloc::alloc` requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= BIG {
            BIG_ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= BIG {
            BIG_ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: `ptr` came from `System` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// ---- helpers ----------------------------------------------------------------

/// Distinct, deterministic starting values (what `threshold_mask_` reads, and
/// what an initializer must overwrite or, on failure, leave).
fn start(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i as f32) * 0.618).sin() * 4.0).collect()
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Sets `a`'s elements, in logical order, to `values`.
fn set_logical<S: ndarray::DataMut<Elem = f32>, D: Dimension>(
    a: &mut ndarray::ArrayBase<S, D>,
    values: &[f32],
) {
    assert_eq!(a.len(), values.len());
    for (x, &v) in a.iter_mut().zip(values) {
        *x = v;
    }
}

fn bits(values: impl IntoIterator<Item = f32>) -> Vec<u32> {
    values.into_iter().map(f32::to_bits).collect()
}

/// A view of `a` with every other element of its last axis.
fn strided_last(a: &mut ArrayD<f32>) -> ArrayViewMutD<'_, f32> {
    let last = a.ndim() - 1;
    a.slice_each_axis_mut(|ax| {
        if ax.axis.index() == last {
            Slice::new(0, None, 2)
        } else {
            Slice::from(..)
        }
    })
}

/// What a call left: its result as a message, the values in logical order,
/// and the generator afterwards.
type Outcome = (Result<(), String>, Vec<u32>, Generator);

/// Runs `call` on a tensor and on arrays of every layout, all of `shape`
/// starting from the same values, each with a fresh generator from `make`;
/// every array must end as the tensor did, bit for bit, with the same result
/// and the generator in the same state.
macro_rules! same_as_tensor {
    ($shape:expr, $make:expr, |$t:ident, $g:ident| $call:expr) => {{
        let shape: &[usize] = &$shape;
        let make: &dyn Fn() -> Generator = &$make;
        let init_vals = start(numel(shape));
        let finish = |r: nninit::Result<()>, vals: Vec<u32>, g: Generator| -> Outcome {
            (r.map_err(|e| e.to_string()), vals, g)
        };

        let want = {
            let mut tensor = Tensor::from_slice(&init_vals, shape).unwrap();
            let mut generator = make();
            let r = {
                let $t = &mut tensor;
                let $g = Some(&mut generator);
                $call
            };
            finish(r, bits(tensor.as_slice().iter().copied()), generator)
        };
        let mut got: Vec<(&str, Outcome)> = Vec::new();

        // An owned ArrayD, as `&mut`.
        let mut a = ArrayD::<f32>::zeros(IxDyn(shape));
        set_logical(&mut a, &init_vals);
        let mut generator = make();
        let r = {
            let $t = &mut a;
            let $g = Some(&mut generator);
            $call
        };
        got.push(("&mut ArrayD", finish(r, bits(a.iter().copied()), generator)));

        // Its view, by value.
        set_logical(&mut a, &init_vals);
        let mut generator = make();
        let r = {
            let $t = a.view_mut();
            let $g = Some(&mut generator);
            $call
        };
        got.push((
            "ArrayViewMut",
            finish(r, bits(a.iter().copied()), generator),
        ));

        // As `&mut ArrayRef`.
        set_logical(&mut a, &init_vals);
        let mut generator = make();
        let r = {
            let $t: &mut ArrayRef<f32, IxDyn> = &mut a;
            let $g = Some(&mut generator);
            $call
        };
        got.push((
            "&mut ArrayRef",
            finish(r, bits(a.iter().copied()), generator),
        ));

        // Fortran order.
        let mut f = ArrayD::<f32>::zeros(IxDyn(shape).f());
        set_logical(&mut f, &init_vals);
        let mut generator = make();
        let r = {
            let $t = &mut f;
            let $g = Some(&mut generator);
            $call
        };
        got.push((
            "Fortran order",
            finish(r, bits(f.iter().copied()), generator),
        ));

        // Every axis reversed (negative strides): the view's logical order.
        let mut rev = ArrayD::<f32>::zeros(IxDyn(shape));
        let mut view = rev.view_mut();
        for ax in 0..shape.len() {
            view.invert_axis(Axis(ax));
        }
        set_logical(&mut view, &init_vals);
        let mut generator = make();
        let r = {
            let $t = view.view_mut();
            let $g = Some(&mut generator);
            $call
        };
        got.push(("reversed", finish(r, bits(view.iter().copied()), generator)));

        // Every other element of the last axis of a wider array.
        if !shape.is_empty() {
            let mut wide_shape = shape.to_vec();
            *wide_shape.last_mut().unwrap() *= 2;
            let mut wide = ArrayD::<f32>::from_elem(IxDyn(&wide_shape), -9.0);
            let mut strided = strided_last(&mut wide);
            assert_eq!(strided.shape(), shape);
            set_logical(&mut strided, &init_vals);
            let mut generator = make();
            let r = {
                let $t = strided.view_mut();
                let $g = Some(&mut generator);
                $call
            };
            got.push((
                "strided",
                finish(r, bits(strided.iter().copied()), generator),
            ));
            let last = wide_shape.len() - 1;
            let odd = Slice::new(wide_shape[last].min(1) as isize, None, 2);
            assert!(
                wide.slice_axis(Axis(last), odd).iter().all(|&x| x == -9.0),
                "{shape:?}: a strided fill wrote outside its view"
            );
        }

        for (target, outcome) in got {
            assert_eq!(outcome.0, want.0, "{shape:?} {target}: result");
            assert!(outcome.1 == want.1, "{shape:?} {target}: values differ");
            assert_eq!(outcome.2, want.2, "{shape:?} {target}: generator state");
        }
        want.0
    }};
}

/// Shapes for the elementwise initializers: 0-d, empty, 1-D, 2-D, 4-D, and
/// one large enough (210 000 elements) for the parallel fill.
const SHAPES: &[&[usize]] = &[
    &[],
    &[0],
    &[3, 0],
    &[7],
    &[33, 65],
    &[16, 3, 5, 5],
    &[700, 300],
];

fn counter(seed: u64) -> impl Fn() -> Generator {
    move || Generator::new(seed)
}

fn torch(seed: u64) -> impl Fn() -> Generator {
    move || Generator::torch(seed)
}

// ---- every initializer equals the tensor's -------------------------------------

#[test]
fn elementwise_initializers_equal_the_tensors_for_both_generators() {
    let mut ok = 0;
    for &shape in SHAPES {
        for make in [&counter(11) as &dyn Fn() -> Generator, &torch(11)] {
            let results = [
                same_as_tensor!(shape, make, |t, g| init::uniform_(t, -0.5, 2.0, g)),
                same_as_tensor!(shape, make, |t, g| init::normal_(t, 1.0, 0.25, g)),
                same_as_tensor!(shape, make, |t, g| init::trunc_normal_(
                    t, 0.0, 0.02, -0.04, 0.04, g
                )),
                same_as_tensor!(shape, make, |t, g| {
                    let _ = g;
                    init::constant_(t, 0.3)
                }),
                same_as_tensor!(shape, make, |t, g| {
                    let _ = g;
                    init::ones_(t)
                }),
                same_as_tensor!(shape, make, |t, g| {
                    let _ = g;
                    init::zeros_(t)
                }),
                same_as_tensor!(shape, make, |t, g| init::xavier_uniform_(t, 1.5, g)),
                same_as_tensor!(shape, make, |t, g| init::xavier_normal_(t, 1.0, g)),
                same_as_tensor!(shape, make, |t, g| init::kaiming_uniform_(
                    t,
                    5f64.sqrt(),
                    FanMode::FanIn,
                    Nonlinearity::LeakyRelu,
                    g
                )),
                same_as_tensor!(shape, make, |t, g| init::kaiming_uniform_(
                    t,
                    0.0,
                    FanMode::FanOut,
                    Nonlinearity::Relu,
                    g
                )),
                same_as_tensor!(shape, make, |t, g| init::kaiming_normal_(
                    t,
                    0.0,
                    FanMode::FanOut,
                    Nonlinearity::Relu,
                    g
                )),
                same_as_tensor!(shape, make, |t, g| {
                    let _ = g;
                    init::threshold_mask_(t, 2.0)
                }),
            ];
            ok += results.iter().filter(|r| r.is_ok()).count();
        }
    }
    // Not everything failed: 0-d and 1-D shapes have no fans, the rest do.
    assert!(ok > 100, "{ok} calls succeeded");
}

#[test]
fn whole_tensor_initializers_equal_the_tensors_for_both_generators() {
    let shapes: &[&[usize]] = &[
        &[],
        &[0, 4],
        &[6],
        &[5, 5],
        &[9, 4],
        &[4, 9],
        &[120, 70],
        &[8, 4, 3],
        &[6, 2, 5, 5],
        &[6, 3, 3, 3, 3],
    ];
    let mut ok = 0;
    for &shape in shapes {
        for make in [&counter(5) as &dyn Fn() -> Generator, &torch(5)] {
            let results = [
                same_as_tensor!(shape, make, |t, g| {
                    let _ = g;
                    init::eye_(t)
                }),
                same_as_tensor!(shape, make, |t, g| {
                    let _ = g;
                    init::dirac_(t, 2)
                }),
                same_as_tensor!(shape, make, |t, g| {
                    let _ = g;
                    init::dirac_(t, 1)
                }),
                same_as_tensor!(shape, make, |t, g| init::orthogonal_(t, 1.5, g)),
                same_as_tensor!(shape, make, |t, g| init::sparse_(t, 0.3, 0.05, g)),
            ];
            ok += results.iter().filter(|r| r.is_ok()).count();
        }
    }
    assert!(ok > 30, "{ok} calls succeeded");
}

#[test]
fn init_values_apply_to_arrays() {
    let inits = [
        Init::Uniform { a: -1.0, b: 1.0 },
        Init::KaimingNormal {
            a: 0.0,
            mode: FanMode::FanIn,
            nonlinearity: Nonlinearity::Relu,
        },
        Init::Orthogonal { gain: 1.0 },
        Init::Sparse {
            sparsity: 0.1,
            std: 0.01,
        },
    ];
    for init in inits {
        same_as_tensor!([40, 30], counter(3), |t, g| init.apply(t, g)).unwrap();
    }
}

#[test]
fn fixed_dimension_arrays_are_targets_too() {
    let mut t = Tensor::zeros(&[64, 32]).unwrap();
    init::xavier_normal_(&mut t, 1.0, Some(&mut Generator::new(9))).unwrap();

    let mut a2 = Array2::<f32>::zeros((64, 32));
    init::xavier_normal_(&mut a2, 1.0, Some(&mut Generator::new(9))).unwrap();
    assert_eq!(a2.as_slice().unwrap(), t.as_slice());

    let mut a4 = Array4::<f32>::zeros((64, 32, 1, 1));
    init::xavier_normal_(a4.view_mut(), 1.0, Some(&mut Generator::new(9))).unwrap();
    assert_eq!(a4.as_slice().unwrap(), t.as_slice());

    // An ArcArray sharing its memory is unshared first (copy on write).
    let shared = a2.clone().into_shared();
    let mut other = shared.clone();
    assert_eq!(other.as_ptr(), shared.as_ptr());
    init::xavier_normal_(&mut other, 1.0, Some(&mut Generator::new(10))).unwrap();
    assert_eq!(shared, a2);
    assert_ne!(other.as_ptr(), shared.as_ptr());
    assert_ne!(other, shared);
}

// ---- fans -------------------------------------------------------------------

/// The largest magnitude after `kaiming_uniform_` (relu) with `mode`.
fn kaiming_max(target: impl InitTarget, mode: FanMode) -> nninit::Result<()> {
    init::kaiming_uniform_(
        target,
        0.0,
        mode,
        Nonlinearity::Relu,
        Some(&mut Generator::new(1)),
    )
}

fn max_abs<'a>(values: impl IntoIterator<Item = &'a f32>) -> f32 {
    values.into_iter().fold(0.0f32, |m, x| m.max(x.abs()))
}

/// `U(±bound)` fills reach within 1% of `bound` and never pass it.
fn assert_bound(max: f32, bound: f64, what: &str) {
    let bound = bound as f32;
    assert!(max <= bound, "{what}: {max} > {bound}");
    assert!(max > 0.99 * bound, "{what}: {max} far below {bound}");
}

#[test]
fn fans_follow_the_arrays_shape() {
    // 2-D [out = 40, in = 1000].
    let mut w = Array2::<f32>::zeros((40, 1000));
    assert_eq!(calculate_fan_in_and_fan_out(w.shape()).unwrap(), (1000, 40));
    kaiming_max(&mut w, FanMode::FanIn).unwrap();
    assert_bound(max_abs(&w), (6.0f64 / 1000.0).sqrt(), "2-D fan_in");
    kaiming_max(&mut w, FanMode::FanOut).unwrap();
    assert_bound(max_abs(&w), (6.0f64 / 40.0).sqrt(), "2-D fan_out");
    init::xavier_uniform_(&mut w, 1.0, Some(&mut Generator::new(2))).unwrap();
    assert_bound(max_abs(&w), (6.0f64 / 1040.0).sqrt(), "2-D xavier");

    // A transposed view has the fans of its own shape, [1000, 40].
    let mut wt = w.view_mut().reversed_axes();
    assert_eq!(wt.shape(), &[1000, 40]);
    kaiming_max(wt.view_mut(), FanMode::FanIn).unwrap();
    assert_bound(max_abs(&wt), (6.0f64 / 40.0).sqrt(), "transposed fan_in");

    // 4-D conv weight [16, 3, 5, 5]: receptive field 25.
    let mut c = Array4::<f32>::zeros((16, 3, 5, 5));
    assert_eq!(calculate_fan_in_and_fan_out(c.shape()).unwrap(), (75, 400));
    kaiming_max(&mut c, FanMode::FanIn).unwrap();
    assert_bound(max_abs(&c), (6.0f64 / 75.0).sqrt(), "4-D fan_in");
    kaiming_max(&mut c, FanMode::FanOut).unwrap();
    assert_bound(max_abs(&c), (6.0f64 / 400.0).sqrt(), "4-D fan_out");
    init::xavier_uniform_(&mut c, 2.0, Some(&mut Generator::new(2))).unwrap();
    assert_bound(max_abs(&c), 2.0 * (6.0f64 / 475.0).sqrt(), "4-D xavier");

    // 1-D: no fans; the array and the generator are left alone.
    let mut b = Array1::<f32>::from_elem(10, 3.0);
    let mut g = Generator::new(1);
    for e in [
        init::xavier_uniform_(&mut b, 1.0, Some(&mut g)).unwrap_err(),
        init::xavier_normal_(b.view_mut(), 1.0, Some(&mut g)).unwrap_err(),
        init::kaiming_uniform_(
            &mut b,
            0.0,
            FanMode::FanIn,
            Nonlinearity::Relu,
            Some(&mut g),
        )
        .unwrap_err(),
        init::kaiming_normal_(
            b.view_mut(),
            0.0,
            FanMode::FanOut,
            Nonlinearity::Relu,
            Some(&mut g),
        )
        .unwrap_err(),
    ] {
        assert_eq!(e, Error::FanDims { dims: 1 });
        assert_eq!(
            e.to_string(),
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
        );
    }
    assert!(b.iter().all(|&x| x == 3.0));
    assert_eq!(g.calls(), Some(0), "a failed call takes no stream");
}

// ---- errors -----------------------------------------------------------------

#[test]
fn errors_have_pytorchs_texts_and_leave_the_array_alone() {
    let mut wide = Array2::<f32>::from_elem((6, 8), 5.0);
    let mut g = Generator::new(4);
    let mut cube = ArrayD::<f32>::from_elem(IxDyn(&[2, 2, 2]), 5.0);
    let mut vector = Array1::<f32>::from_elem(4, 5.0);
    let cases: Vec<(nninit::Result<()>, &str)> = vec![
        (
            init::xavier_uniform_(&mut vector, 1.0, Some(&mut g)),
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions",
        ),
        (
            init::eye_(&mut cube),
            "Only tensors with 2 dimensions are supported",
        ),
        (
            init::dirac_(wide.slice_mut(s![.., ..;2]), 1),
            "Only tensors with 3, 4, or 5 dimensions are supported",
        ),
        (
            init::dirac_(&mut cube, 0),
            "dirac_ expects groups >= 1, but found groups 0",
        ),
        (
            init::dirac_(&mut cube, 3),
            "dim 0 must be divisible by groups",
        ),
        (
            init::orthogonal_(&mut vector, 1.0, Some(&mut g)),
            "Only tensors with 2 or more dimensions are supported",
        ),
        (
            init::sparse_(&mut cube, 0.5, 0.01, Some(&mut g)),
            "Only tensors with 2 dimensions are supported",
        ),
        (
            init::sparse_(wide.slice_mut(s![.., ..;2]), 1.5, 0.01, Some(&mut g)),
            "sparse_ expects a sparsity in [0, 1], but found sparsity 1.5",
        ),
        (
            init::uniform_(wide.slice_mut(s![.., ..;2]), 1.0, 0.0, Some(&mut g)),
            "uniform_ expects to return a [from, to) range, but found from=1 > to=0",
        ),
        (
            init::normal_(&mut wide, 0.0, -1.0, Some(&mut g)),
            "normal expects std >= 0.0 and finite, but found std -1",
        ),
        (
            init::trunc_normal_(
                wide.view_mut().reversed_axes(),
                0.0,
                1.0,
                2.0,
                -2.0,
                Some(&mut g),
            ),
            "trunc_normal_ expects a < b, but found a=2 >= b=-2",
        ),
        (
            init::kaiming_uniform_(
                wide.slice_mut(s![..;-1, ..]),
                f64::NAN,
                FanMode::FanIn,
                Nonlinearity::LeakyRelu,
                Some(&mut g),
            ),
            "negative_slope nan not a valid number",
        ),
        (
            init::xavier_normal_(&mut wide, f64::INFINITY, Some(&mut g)),
            "gain must be a finite number, but found gain inf",
        ),
        (
            init::threshold_mask_(wide.slice_mut(s![.., ..;2]), f32::NAN),
            "threshold mask expects a threshold that is not NaN, but found threshold nan",
        ),
    ];
    for (result, text) in cases {
        assert_eq!(result.unwrap_err().to_string(), text);
    }
    assert!(wide.iter().chain(&cube).chain(&vector).all(|&x| x == 5.0));
    assert_eq!(g.calls(), Some(0), "failed calls take no stream");
}

#[test]
fn conversion_errors() {
    let t = Tensor::zeros(&[4, 5]).unwrap();
    let e = t.to_ndarray_dim::<Ix1>().unwrap_err();
    assert_eq!(
        e,
        Error::ArrayDims {
            expected: 1,
            shape: vec![4, 5]
        }
    );
    assert_eq!(
        e.to_string(),
        "cannot convert a tensor of shape [4, 5] (2 dimensions) to an array of 1 dimensions"
    );
    let e = t.as_ndarray_view_dim::<Ix4>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot convert a tensor of shape [4, 5] (2 dimensions) to an array of 4 dimensions"
    );
    let e = Tensor::scalar(1.0).to_ndarray_dim::<Ix2>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot convert a tensor of shape [] (0 dimensions) to an array of 2 dimensions"
    );

    // A `with_tensor` closure that swaps the tensor for one of another shape.
    let mut a = Array2::<f32>::ones((2, 2));
    let e = (&mut a)
        .with_tensor(|t| {
            *t = Tensor::zeros(&[3])?;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "with_tensor: the shape of the other tensor [3] must match the shape [2, 2]"
    );
    assert!(a.iter().all(|&x| x == 1.0));
}

// ---- non-contiguous views ---------------------------------------------------

#[test]
fn strided_views_get_the_values_of_the_contiguous_array() {
    let mut big = Array2::<f32>::zeros((300, 400));
    let mut g = Generator::new(21);
    init::kaiming_uniform_(
        big.slice_mut(s![.., ..;2]),
        5f64.sqrt(),
        FanMode::FanIn,
        Nonlinearity::LeakyRelu,
        Some(&mut g),
    )
    .unwrap();
    let mut dense = Array2::<f32>::zeros((300, 200));
    let mut h = Generator::new(21);
    init::kaiming_uniform_(
        &mut dense,
        5f64.sqrt(),
        FanMode::FanIn,
        Nonlinearity::LeakyRelu,
        Some(&mut h),
    )
    .unwrap();
    assert_eq!(big.slice(s![.., ..;2]), dense);
    assert!(big.slice(s![.., 1..;2]).iter().all(|&x| x == 0.0));
    assert_eq!(g, h);

    // A block in the middle of a matrix, and its transpose.
    let mut m = Array2::<f32>::from_elem((50, 60), 7.0);
    init::normal_(
        m.slice_mut(s![10..30, 5..45]),
        0.0,
        1.0,
        Some(&mut Generator::new(2)),
    )
    .unwrap();
    let want = Tensor::randn(&[20, 40], Some(&mut Generator::new(2))).unwrap();
    assert_eq!(
        Tensor::from_ndarray(&m.slice(s![10..30, 5..45])),
        want,
        "logical order defines the values"
    );
    let outside = m.iter().count() - 20 * 40;
    assert_eq!(m.iter().filter(|&&x| x == 7.0).count(), outside);
    init::normal_(
        m.slice_mut(s![10..30, 5..45]).reversed_axes(),
        0.0,
        1.0,
        Some(&mut Generator::new(2)),
    )
    .unwrap();
    let want_t = Tensor::randn(&[40, 20], Some(&mut Generator::new(2))).unwrap();
    assert_eq!(
        Tensor::from_ndarray(&m.slice(s![10..30, 5..45]).t()),
        want_t
    );
}

// ---- conversions and zero-copy views ------------------------------------------

#[test]
fn round_trips() {
    let shapes: [&[usize]; 6] = [&[], &[0], &[2, 0, 3], &[5], &[3, 4], &[2, 3, 4, 5]];
    for shape in shapes {
        let t = Tensor::from_slice(&start(numel(shape)), shape).unwrap();
        let a = t.to_ndarray();
        assert_eq!(a.shape(), shape);
        assert_eq!(Tensor::from_ndarray(&a), t);
        assert_eq!(ArrayD::from(&t), a);
        assert_eq!(Tensor::from(&a), t);
        assert_eq!(Tensor::from(ArrayD::from(t.clone())), t);
        assert_eq!(Tensor::from(&a.view()), t);
        // Every element at its index.
        for (index, &x) in a.indexed_iter() {
            assert_eq!(t.get(index.slice()).unwrap(), x);
        }
    }
    let t = Tensor::from_slice(&start(12), &[3, 4]).unwrap();
    let m: Array2<f32> = t.to_ndarray_dim::<Ix2>().unwrap();
    assert_eq!(Tensor::from(m.clone()), t);
    // Other layouts come back in logical order.
    let mt = m.t();
    let from_t = Tensor::from_ndarray(&mt);
    assert_eq!(from_t.shape(), &[4, 3]);
    for i in 0..4 {
        for j in 0..3 {
            assert_eq!(from_t[[i, j]], m[[j, i]]);
        }
    }
    let f = Array::from_shape_vec((3, 4).f(), start(12)).unwrap();
    assert_eq!(Tensor::from_ndarray(&f).to_ndarray_dim::<Ix2>().unwrap(), f);
}

#[test]
fn views_share_the_tensors_memory() {
    let mut t = Tensor::from_slice(&start(24), &[2, 3, 4]).unwrap();
    let ptr = t.as_slice().as_ptr();
    let v = t.as_ndarray_view();
    assert_eq!(v.as_ptr(), ptr);
    assert!(v.is_standard_layout());
    assert_eq!(v.shape(), t.shape());
    assert_eq!(v.as_slice().unwrap(), t.as_slice());
    assert_eq!(
        t.as_ndarray_view_dim::<ndarray::Ix3>().unwrap().as_ptr(),
        ptr
    );
    let mut vm = t.as_ndarray_view_mut();
    assert_eq!(vm.as_mut_ptr().cast_const(), ptr);
    vm[[1, 2, 3]] = 100.0;
    assert_eq!(t[[1, 2, 3]], 100.0);

    // An initializer through the view fills the tensor.
    let mut want = Tensor::zeros(&[2, 3, 4]).unwrap();
    init::xavier_uniform_(&mut want, 1.0, Some(&mut Generator::new(8))).unwrap();
    init::xavier_uniform_(t.as_ndarray_view_mut(), 1.0, Some(&mut Generator::new(8))).unwrap();
    assert_eq!(t, want);
    assert_eq!(t.as_slice().as_ptr(), ptr);
}

#[test]
fn contiguous_arrays_are_filled_in_place_and_strided_ones_through_one_buffer() {
    // 2048 x 2048 floats: 16 MiB, twice `BIG`.
    let mut a = Array2::<f32>::zeros((2048, 2048));
    let ptr = a.as_ptr();
    let kaiming = |target: ArrayViewMutD<'_, f32>| {
        init::kaiming_uniform_(
            target,
            5f64.sqrt(),
            FanMode::FanIn,
            Nonlinearity::LeakyRelu,
            Some(&mut Generator::new(6)),
        )
        .unwrap()
    };
    let before = BIG_ALLOCATIONS.load(Ordering::SeqCst);
    kaiming(a.view_mut().into_dyn());
    init::normal_(&mut a, 0.0, 1.0, Some(&mut Generator::new(6))).unwrap();
    init::orthogonal_(a.slice_mut(s![..4, ..]), 1.0, None).unwrap();
    assert_eq!(
        BIG_ALLOCATIONS.load(Ordering::SeqCst) - before,
        0,
        "a contiguous array is filled without a temporary"
    );
    assert_eq!(a.as_ptr(), ptr);

    let mut wide = Array2::<f32>::zeros((2048, 4096));
    let before = BIG_ALLOCATIONS.load(Ordering::SeqCst);
    kaiming(wide.slice_mut(s![.., ..;2]).into_dyn());
    let temporaries = BIG_ALLOCATIONS.load(Ordering::SeqCst) - before;
    assert_eq!(
        temporaries, 1,
        "one logical-order buffer for a strided view"
    );

    kaiming(a.view_mut().into_dyn());
    assert_eq!(wide.slice(s![.., ..;2]), a);
}
