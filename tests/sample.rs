//! `examples/sample.rs`: its one-line errors and its `--plot` pictures.
//!
//! The example is compiled in here as a module (an example has no
//! `CARGO_BIN_EXE_*`): `sample::run` is all that its `main` does but print
//! the message of an `Err` on one line and exit with code 2.

mod common;

// The example includes `src/special.rs` too, as `common` does.
#[path = "../examples/sample.rs"]
#[allow(dead_code, clippy::duplicate_mod)]
mod sample;

use std::path::PathBuf;

use nninit::{Generator, Tensor};

fn run(argv: &str) -> Result<(), String> {
    sample::run(argv.split_whitespace().map(String::from))
}

/// A fresh path in the temporary directory.
fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("nninit-sample-{}-{name}", std::process::id()))
}

/// The error of `argv`, checked to be one line.
fn error(argv: &str) -> String {
    let e = run(argv).expect_err(argv);
    assert!(!e.contains('\n') && !e.is_empty(), "{argv}: {e:?}");
    e
}

/// The SVG `--plot` writes for `argv`, and the KS distance in its title.
fn plot(argv: &str, name: &str) -> (String, Option<f64>) {
    let path = temp(name);
    run(&format!("{argv} --plot {}", path.display())).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for text in [">\nvalue\n<", ">\ndensity\n<"] {
        assert!(svg.contains(text), "{argv}: no axis label {text:?}");
    }
    let ks = svg.split_once(": KS distance ").map(|(_, rest)| {
        let (d, rest) = rest.split_once(' ').unwrap();
        assert!(rest.starts_with("from the target\n"), "{rest}");
        d.parse().unwrap()
    });
    (svg, ks)
}

#[test]
fn plot_writes_an_svg_with_the_ks_distance_in_the_title() {
    let (svg, ks) = plot("kaiming_normal --shape 256,64 --seed 1", "kaiming.svg");
    assert!(svg.contains("kaiming_normal [256, 64]: KS distance "));
    // std = √2/√64: the legend names the law.
    assert!(svg.contains("target: N(0, 0.1768²)"), "{svg}");
    let d = ks.unwrap();
    let critical = common::KS_C_ALPHA_0_001 / (256.0f64 * 64.0).sqrt();
    assert!(d > 0.0 && d < critical, "D = {d}");
}

#[test]
fn every_initializer_plots() {
    for (argv, shape, exact) in [
        ("uniform --a -1 --b 3", "4000", false),
        ("normal --mean 1 --std 2", "4000", false),
        ("trunc_normal --a -0.5 --b inf", "4000", false),
        ("trunc_normal --generator torch", "4000", false),
        ("constant --val 3", "100", true),
        ("zeros", "100", true),
        ("eye", "10,20", true),
        ("dirac --groups 2", "8,4,3,3", true),
        ("orthogonal --gain 2", "40,100", false),
        ("sparse --sparsity 0.3", "200,20", false),
        ("xavier_uniform", "100,40", false),
        ("xavier_normal --gain 3", "100,40", false),
        ("kaiming_uniform --mode fan_out", "100,40", false),
    ] {
        let (svg, ks) = plot(&format!("{argv} --shape {shape}"), "each.svg");
        let d = ks.unwrap_or_else(|| panic!("{argv}: no KS distance"));
        let n: usize = shape
            .split(',')
            .map(|d| d.parse::<usize>().unwrap())
            .product();
        // Orthogonal and sparse entries are dependent; 3/√n is loose for them.
        let bound = if exact { 0.0 } else { 3.0 / (n as f64).sqrt() };
        assert!(d <= bound, "{argv}: D = {d} > {bound}");
        assert!(svg.contains("target: "), "{argv}");
    }
    let (svg, ks) = plot("orthogonal --shape 2,2", "orth.svg");
    assert!(ks.is_none() && svg.contains("histogram only (no target law for this shape)"));
}

#[test]
fn the_ks_distance_is_the_tests_and_sees_a_wrong_std() {
    let values = Tensor::randn(&[200_000], Some(&mut Generator::new(9))).unwrap();
    let values = values.as_slice();
    let args = |argv: &str| sample::parse_args(argv.split_whitespace().map(String::from)).unwrap();
    let law = |std: &str| {
        let dist = args(&format!("normal --std {std}")).dist;
        sample::target(dist, &[200_000]).unwrap().unwrap()
    };
    let d = sample::ks_distance(values, &law("1"));
    assert!((d - common::ks_statistic(values, common::phi)).abs() < 1e-12);
    let critical = common::KS_C_ALPHA_0_001 / (values.len() as f64).sqrt();
    assert!(d < critical, "D = {d}");
    let wrong = sample::ks_distance(values, &law("1.05"));
    assert!(wrong > 2.0 * critical, "D = {wrong}");
}

#[test]
fn bad_plot_paths_are_one_line_errors() {
    let missing = temp("no-such-dir").join("x.svg");
    let e = error(&format!("normal --shape 10 --plot {}", missing.display()));
    assert_eq!(
        e,
        format!(
            "{}: No such file or directory (os error 2)",
            missing.display()
        )
    );
    let dir = std::env::temp_dir();
    let e = error(&format!("normal --shape 10 --plot {}", dir.display()));
    assert!(e.starts_with(&format!("{}: ", dir.display())), "{e}");
    assert_eq!(
        error("normal --shape 0,3 --plot x.svg"),
        "--plot: the tensor is empty"
    );
    assert!(error("normal --shape 10 --plot").contains("'--plot <FILE.svg>'"));
}

#[test]
fn usage_errors_are_one_line() {
    for (argv, want) in [
        ("", "requires a subcommand"),
        ("bogus --shape 2", "unrecognized subcommand 'bogus'"),
        ("normal", "--shape is required"),
        ("normal --shape 3,x", "bad dimension \"x\""),
        ("normal --shape 2 --val 3", "unexpected argument '--val'"),
        (
            "normal --shape 2 --std 1 --std 2",
            "cannot be used multiple times",
        ),
        ("constant --shape 2", "--val <VAL>"),
        ("normal --shape 2 --threads 0", "'--threads <THREADS>'"),
        (
            "normal --shape 2 --generator foo",
            "[possible values: counter, torch]",
        ),
        (
            "kaiming_normal --shape 2,2 --mode foo",
            "Mode foo not supported, please use one of fan_in, fan_out",
        ),
        (
            "kaiming_normal --shape 2",
            "Fan in and fan out can not be computed",
        ),
        ("normal --shape 2 --std -1", "normal expects std >= 0.0"),
        (
            "uniform --shape 2 --a 1 --b 0",
            "uniform_ expects to return a [from, to) range",
        ),
        ("constant --shape 2 --val 1e39", "overflows float"),
    ] {
        let e = error(argv);
        assert!(e.contains(want), "{argv}: {e:?} lacks {want:?}");
    }
    // Values may start with '-'.
    run("trunc_normal --shape 10 --a -inf --b -0.5 --mean -1").unwrap();
}
