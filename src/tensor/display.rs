//! PyTorch's tensor printing (`torch/_tensor_str.py`, default print options).
//!
//! One format for the whole tensor, chosen from its nonzero finite values:
//! * all integral: `{:.0f}` plus a `.` (`42.`), or scientific when the largest
//!   magnitude exceeds 1e8 or 1000 times the smallest;
//! * otherwise fixed with 4 decimals, or scientific (`1.0000e-05`) when the
//!   largest exceeds 1e8 or 1000 times the smallest, or the smallest is below
//!   1e-4.
//!
//! Values are right-aligned to a common width, rows wrap at 80 columns, and a
//! tensor of more than 1000 elements is summarized with `...` keeping 3 items
//! at each end of every dimension. `format!("{:.2}", t)` changes the
//! precision, like `torch.set_printoptions(precision=2)`.

use std::fmt::{self, Write};

const THRESHOLD: usize = 1000;
const EDGE_ITEMS: usize = 3;
const LINE_WIDTH: usize = 80;
const DEFAULT_PRECISION: usize = 4;

/// Python's `"{:.{p}e}".format(v)`: `1.2346e+03`, `inf`, `nan`.
fn python_sci(v: f64, precision: usize) -> String {
    if !v.is_finite() {
        return python_nonfinite(v);
    }
    let s = format!("{v:.precision$e}");
    let (mantissa, exp) = s.split_once('e').expect("`{:e}` output has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// Python's `"{:.{p}f}".format(v)`.
fn python_fixed(v: f64, precision: usize) -> String {
    if v.is_finite() {
        format!("{v:.precision$}")
    } else {
        python_nonfinite(v)
    }
}

fn python_nonfinite(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v > 0.0 {
        "inf".into()
    } else {
        "-inf".into()
    }
}

/// `_Formatter`: the format shared by every element of one tensor.
struct Formatter {
    int_mode: bool,
    sci_mode: bool,
    max_width: usize,
    precision: usize,
}

impl Formatter {
    fn new(values: impl Iterator<Item = f32> + Clone, precision: usize) -> Formatter {
        let mut fmt = Formatter {
            int_mode: true,
            sci_mode: false,
            max_width: 1,
            precision,
        };
        let nonzero_finite = values.filter(|v| v.is_finite() && *v != 0.0).map(f64::from);
        let Some((min, max)) =
            nonzero_finite
                .clone()
                .map(f64::abs)
                .fold(None, |acc: Option<(f64, f64)>, a| {
                    Some(acc.map_or((a, a), |(lo, hi)| (lo.min(a), hi.max(a))))
                })
        else {
            return fmt;
        };
        fmt.int_mode = nonzero_finite.clone().all(|v| v == v.ceil());
        let wide_range = max / min > 1000.0 || max > 1.0e8;
        fmt.sci_mode = wide_range || (!fmt.int_mode && min < 1.0e-4);
        fmt.max_width = nonzero_finite
            .map(|v| {
                if fmt.sci_mode {
                    python_sci(v, precision).len()
                } else if fmt.int_mode {
                    python_fixed(v, 0).len() + 1
                } else {
                    python_fixed(v, precision).len()
                }
            })
            .max()
            .unwrap_or(1)
            .max(1);
        fmt
    }

    fn format(&self, v: f32) -> String {
        let v = f64::from(v);
        let s = if self.sci_mode {
            python_sci(v, self.precision)
        } else if self.int_mode {
            let mut s = python_fixed(v, 0);
            if v.is_finite() {
                s.push('.');
            }
            s
        } else {
            python_fixed(v, self.precision)
        };
        format!("{s:>width$}", width = self.max_width)
    }
}

/// The row-major sub-array of `data` at index `i` along the first of `shape`.
fn sub<'a, T>(data: &'a [T], shape: &[usize], i: usize) -> &'a [T] {
    let inner: usize = shape[1..].iter().product();
    &data[i * inner..(i + 1) * inner]
}

/// The indices shown along a dimension of `size`: all, or the edges.
fn shown(size: usize, summarize: bool) -> Vec<Option<usize>> {
    if summarize && size > 2 * EDGE_ITEMS {
        (0..EDGE_ITEMS)
            .map(Some)
            .chain([None])
            .chain((size - EDGE_ITEMS..size).map(Some))
            .collect()
    } else {
        (0..size).map(Some).collect()
    }
}

/// `get_summarized_data`, flattened: the values that will be printed.
fn summarized_values<T: Copy>(data: &[T], shape: &[usize], summarize: bool, out: &mut Vec<T>) {
    match shape {
        [] => out.push(data[0]),
        [_] => out.extend(
            shown(shape[0], summarize)
                .into_iter()
                .flatten()
                .map(|i| data[i]),
        ),
        _ => {
            for i in shown(shape[0], summarize).into_iter().flatten() {
                summarized_values(sub(data, shape, i), &shape[1..], summarize, out);
            }
        }
    }
}

/// How the elements of one tensor are printed: a common width and a format.
trait ElementFormat<T> {
    /// The width every element is padded to.
    fn width(&self) -> usize;
    /// One element, padded.
    fn format(&self, v: T) -> String;
}

impl ElementFormat<f32> for Formatter {
    fn width(&self) -> usize {
        self.max_width
    }
    fn format(&self, v: f32) -> String {
        Formatter::format(self, v)
    }
}

/// Integers, right-aligned to the widest printed one.
struct IntFormat(usize);

impl ElementFormat<i64> for IntFormat {
    fn width(&self) -> usize {
        self.0
    }
    fn format(&self, v: i64) -> String {
        format!("{v:>width$}", width = self.0)
    }
}

fn tensor_str<T: Copy>(
    data: &[T],
    shape: &[usize],
    indent: usize,
    summarize: bool,
    fmt: &dyn ElementFormat<T>,
    out: &mut String,
) {
    match shape {
        [] => out.push_str(&fmt.format(data[0])),
        [n] => {
            let element_length = fmt.width() + 2;
            let per_line = (LINE_WIDTH.saturating_sub(indent) / element_length).max(1);
            let items: Vec<String> = shown(*n, summarize)
                .into_iter()
                .map(|i| i.map_or_else(|| " ...".to_string(), |i| fmt.format(data[i])))
                .collect();
            out.push('[');
            for (k, line) in items.chunks(per_line).enumerate() {
                if k > 0 {
                    out.push_str(",\n");
                    out.push_str(&" ".repeat(indent + 1));
                }
                out.push_str(&line.join(", "));
            }
            out.push(']');
        }
        _ => {
            let separator = format!(
                ",{}{}",
                "\n".repeat(shape.len() - 1),
                " ".repeat(indent + 1)
            );
            out.push('[');
            for (k, i) in shown(shape[0], summarize).into_iter().enumerate() {
                if k > 0 {
                    out.push_str(&separator);
                }
                match i {
                    Some(i) => tensor_str(
                        sub(data, shape, i),
                        &shape[1..],
                        indent + 1,
                        summarize,
                        fmt,
                        out,
                    ),
                    None => out.push_str("..."),
                }
            }
            out.push(']');
        }
    }
}

/// `_add_suffixes`: `, suffix` on the last line, or on a new line when it
/// would pass 80 columns.
fn add_suffixes(mut s: String, suffixes: &[String], indent: usize) -> String {
    let mut last_line_len = match s.rfind('\n') {
        Some(p) => s.len() - p + 1,
        None => s.len() + 2,
    };
    for suffix in suffixes {
        if last_line_len + suffix.len() + 2 > LINE_WIDTH {
            s.push_str(",\n");
            s.push_str(&" ".repeat(indent));
            s.push_str(suffix);
            last_line_len = indent + suffix.len();
        } else {
            s.push_str(", ");
            s.push_str(suffix);
            last_line_len += suffix.len() + 2;
        }
    }
    s.push(')');
    s
}

/// `repr(tensor)` for a row-major `data` of `shape`, with extra `suffixes`
/// (such as `requires_grad=True`).
pub(crate) fn repr(
    data: &[f32],
    shape: &[usize],
    precision: Option<usize>,
    suffixes: &[&str],
) -> String {
    const PREFIX: &str = "tensor(";
    let indent = PREFIX.len();
    let precision = precision.unwrap_or(DEFAULT_PRECISION);
    let mut suffixes: Vec<String> = suffixes.iter().map(|s| s.to_string()).collect();
    let mut s = String::from(PREFIX);
    if data.is_empty() {
        if shape.len() != 1 {
            let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
            suffixes.insert(0, format!("size=({})", dims.join(", ")));
        }
        s.push_str("[]");
    } else {
        let summarize = data.len() > THRESHOLD;
        let mut values = Vec::new();
        summarized_values(data, shape, summarize, &mut values);
        let fmt = Formatter::new(values.iter().copied(), precision);
        tensor_str(data, shape, indent, summarize, &fmt, &mut s);
    }
    add_suffixes(s, &suffixes, indent)
}

/// `repr` of an integer (`int64`) tensor: `tensor(0)`, `tensor([ 1, 22])`.
pub(crate) fn repr_i64(data: &[i64], shape: &[usize]) -> String {
    const PREFIX: &str = "tensor(";
    let indent = PREFIX.len();
    let mut suffixes = Vec::new();
    let mut s = String::from(PREFIX);
    if data.is_empty() {
        let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
        if shape.len() != 1 {
            suffixes.push(format!("size=({})", dims.join(", ")));
        }
        suffixes.push("dtype=torch.int64".to_string());
        s.push_str("[]");
    } else {
        let summarize = data.len() > THRESHOLD;
        let mut values = Vec::new();
        summarized_values(data, shape, summarize, &mut values);
        let width = values
            .iter()
            .map(|v| v.to_string().len())
            .max()
            .unwrap_or(1);
        tensor_str(data, shape, indent, summarize, &IntFormat(width), &mut s);
    }
    add_suffixes(s, &suffixes, indent)
}

impl fmt::Display for super::Tensor {
    /// Prints like PyTorch's `repr`: `tensor([[ 1.0000, -0.0226]])`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&repr(self.as_slice(), self.shape(), f.precision(), &[]))
    }
}

impl fmt::Debug for super::Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&repr(self.as_slice(), self.shape(), f.precision(), &[]))?;
        if !f.alternate() {
            return Ok(());
        }
        f.write_char('\n')?;
        write!(f, "shape={:?}", self.shape())
    }
}

#[cfg(test)]
mod tests {
    use super::repr;

    fn r(data: &[f32], shape: &[usize]) -> String {
        repr(data, shape, None, &[])
    }

    #[test]
    fn chapter_outputs() {
        assert_eq!(
            r(&[0.0045, -0.0082, -0.0063, 0.0008], &[4]),
            "tensor([ 0.0045, -0.0082, -0.0063,  0.0008])"
        );
        assert_eq!(r(&[0.0], &[]), "tensor(0.)");
        assert_eq!(r(&[1.0; 4], &[4]), "tensor([1., 1., 1., 1.])");
        assert_eq!(
            r(&[42.0; 8], &[1, 8]),
            "tensor([[42., 42., 42., 42., 42., 42., 42., 42.]])"
        );
        assert_eq!(
            r(
                &[6.25, 9.0335, 6.4244, -6.6561, -5.9088, 9.8715, 7.8404, 0.0],
                &[2, 4]
            ),
            "tensor([[ 6.2500,  9.0335,  6.4244, -6.6561],\n        [-5.9088,  9.8715,  7.8404,  0.0000]])"
        );
        assert_eq!(
            r(&[42.0, 10.0335, 7.4244, -5.6561], &[4]),
            "tensor([42.0000, 10.0335,  7.4244, -5.6561])"
        );
        assert_eq!(r(&[0.3118], &[1]), "tensor([0.3118])");
        assert_eq!(
            repr(&[0.3118], &[1], None, &["requires_grad=True"]),
            "tensor([0.3118], requires_grad=True)"
        );
    }

    #[test]
    fn scientific_and_special_values() {
        assert_eq!(r(&[1e-5, 1.0], &[2]), "tensor([1.0000e-05, 1.0000e+00])");
        assert_eq!(r(&[1e9, 1.0], &[2]), "tensor([1.0000e+09, 1.0000e+00])");
        assert_eq!(
            r(&[f32::NAN, 1.5, f32::NEG_INFINITY], &[3]),
            "tensor([   nan, 1.5000,   -inf])"
        );
        assert_eq!(r(&[f32::INFINITY, 2.0], &[2]), "tensor([inf, 2.])");
        assert_eq!(r(&[-0.0, 0.0], &[2]), "tensor([-0., 0.])");
        assert_eq!(r(&[], &[0]), "tensor([])");
        assert_eq!(r(&[], &[0, 4]), "tensor([], size=(0, 4))");
        assert_eq!(repr(&[1.0 / 3.0], &[1], Some(2), &[]), "tensor([0.33])");
    }

    #[test]
    fn wraps_long_rows() {
        let data: Vec<f32> = (0..20).map(|i| i as f32 + 0.5).collect();
        let s = r(&data, &[20]);
        let lines: Vec<&str> = s.lines().collect();
        // 7 + 8 per element: (80 - 7) / 9 = 8 elements per line.
        assert_eq!(lines.len(), 3, "{s}");
        assert!(lines[1].starts_with("         8.5000,  9.5000"), "{s}");
        assert!(lines.iter().all(|l| l.len() <= 80));
    }

    #[test]
    fn summarizes_large_tensors() {
        // Checked against PyTorch 2.15: print(torch.arange(1000., 3000.)).
        let data: Vec<f32> = (1000..3000).map(|i| i as f32).collect();
        assert_eq!(
            r(&data, &[2000]),
            "tensor([1000., 1001., 1002.,  ..., 2997., 2998., 2999.])"
        );
        let s = r(&data, &[100, 20]);
        assert_eq!(
            s,
            "tensor([[1000., 1001., 1002.,  ..., 1017., 1018., 1019.],\n        \
             [1020., 1021., 1022.,  ..., 1037., 1038., 1039.],\n        \
             [1040., 1041., 1042.,  ..., 1057., 1058., 1059.],\n        \
             ...,\n        \
             [2940., 2941., 2942.,  ..., 2957., 2958., 2959.],\n        \
             [2960., 2961., 2962.,  ..., 2977., 2978., 2979.],\n        \
             [2980., 2981., 2982.,  ..., 2997., 2998., 2999.]])"
        );
        // A range over 1000x switches to scientific notation and wraps.
        let data: Vec<f32> = (0..2000).map(|i| i as f32).collect();
        assert_eq!(
            r(&data, &[2000]),
            "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n        \
             1.9990e+03])"
        );
    }

    #[test]
    fn three_dims_use_blank_lines() {
        let data: Vec<f32> = (0..8).map(|i| i as f32).collect();
        assert_eq!(
            r(&data, &[2, 2, 2]),
            "tensor([[[0., 1.],\n         [2., 3.]],\n\n        [[4., 5.],\n         [6., 7.]]])"
        );
    }
}
