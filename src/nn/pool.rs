//! Pooling: [`MaxPool2d`], [`AvgPool2d`], [`AdaptiveAvgPool2d`], on
//! `[N, C, H, W]` or unbatched `[C, H, W]` inputs.

use super::{Module, check_grad_shape};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use rayon::prelude::*;

/// The options of a max or average pooling, with PyTorch's defaults
/// (`stride = kernel_size`, `padding = 0`, `dilation = 1` (max only),
/// `ceil_mode = False`, `count_include_pad = True` (average only)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// Window size.
    pub kernel_size: [usize; 2],
    /// Step (PyTorch's default: the kernel size).
    pub stride: [usize; 2],
    /// Implicit padding on both sides (`-inf` for max, zeros for average).
    pub padding: [usize; 2],
    /// Spacing of the window's taps (max pooling only).
    pub dilation: [usize; 2],
    /// Round the output size up instead of down.
    pub ceil_mode: bool,
    /// Whether padded zeros count in an average's divisor.
    pub count_include_pad: bool,
}

impl PoolOptions {
    /// A `kernel_size` window with the defaults.
    pub fn new(kernel_size: [usize; 2]) -> PoolOptions {
        PoolOptions {
            kernel_size,
            stride: kernel_size,
            padding: [0, 0],
            dilation: [1, 1],
            ceil_mode: false,
            count_include_pad: true,
        }
    }

    /// With `stride`.
    pub fn stride(mut self, stride: [usize; 2]) -> Self {
        self.stride = stride;
        self
    }

    /// With `padding`.
    pub fn padding(mut self, padding: [usize; 2]) -> Self {
        self.padding = padding;
        self
    }

    /// With `dilation`.
    pub fn dilation(mut self, dilation: [usize; 2]) -> Self {
        self.dilation = dilation;
        self
    }

    /// With `ceil_mode`.
    pub fn ceil_mode(mut self, ceil_mode: bool) -> Self {
        self.ceil_mode = ceil_mode;
        self
    }

    /// With `count_include_pad`.
    pub fn count_include_pad(mut self, count: bool) -> Self {
        self.count_include_pad = count;
        self
    }

    fn check(&self) -> Result<()> {
        let option = |message| Err(Error::LayerOption { message });
        if self.kernel_size.contains(&0) {
            return option("kernel_size must be greater than zero");
        }
        if self.stride.contains(&0) {
            return option("stride should not be zero");
        }
        if self.dilation.contains(&0) {
            return option("dilation should be greater than zero");
        }
        for d in 0..2 {
            let effective = self.dilation[d] * (self.kernel_size[d] - 1) + 1;
            if 2 * self.padding[d] > effective {
                return Err(Error::PoolPadding {
                    pad: self.padding[d],
                    kernel: self.kernel_size[d],
                    dilation: self.dilation[d],
                });
            }
        }
        Ok(())
    }

    /// PyTorch's `pooling_output_shape`.
    fn output_size(&self, size: usize, d: usize) -> usize {
        let (k, s, p, dil) = (
            self.kernel_size[d],
            self.stride[d],
            self.padding[d],
            self.dilation[d],
        );
        let span = (size + 2 * p) as isize - (dil * (k - 1)) as isize - 1;
        if span < 0 {
            return 0;
        }
        let span = span as usize;
        let mut out = if self.ceil_mode {
            span.div_ceil(s) + 1
        } else {
            span / s + 1
        };
        // The last window must start inside the input or its left padding.
        if self.ceil_mode && (out - 1) * s >= size + p {
            out -= 1;
        }
        out
    }
}

/// `(N, C, H, W)` of a pooling input, or the error naming its shape.
fn layout(shape: &[usize], what: &'static str) -> Result<(usize, usize, usize, usize, bool)> {
    match *shape {
        [n, c, h, w] if h > 0 && w > 0 => Ok((n, c, h, w, true)),
        [c, h, w] if h > 0 && w > 0 => Ok((1, c, h, w, false)),
        _ => Err(Error::InputDims {
            expected: what,
            shape: shape.to_vec(),
        }),
    }
}

/// The output shape for a pooling input `[n, c, ...]` of `oh × ow`.
fn out_shape(batched: bool, n: usize, c: usize, oh: usize, ow: usize) -> Vec<usize> {
    if batched {
        vec![n, c, oh, ow]
    } else {
        vec![c, oh, ow]
    }
}

/// The output size of `o` for a pooling of `opts` on `h × w`, or the
/// "too small" error.
fn pooled_size(o: &PoolOptions, c: usize, h: usize, w: usize) -> Result<(usize, usize)> {
    let (oh, ow) = (o.output_size(h, 0), o.output_size(w, 1));
    if oh == 0 || ow == 0 {
        return Err(Error::PoolOutputTooSmall {
            input: [c, h, w],
            output: [c, oh, ow],
        });
    }
    Ok((oh, ow))
}

/// The input positions `lo..hi` (every `dilation`-th from `lo`) that the
/// taps of window `i` read inside a dimension of length `len`: the window
/// starts at `i·stride − padding`, its taps `dilation` apart.
fn inside_taps(
    i: usize,
    stride: usize,
    padding: usize,
    kernel: usize,
    dilation: usize,
    len: usize,
) -> (usize, usize) {
    let start = (i * stride) as isize - padding as isize;
    let d = dilation as isize;
    // The first tap at or after 0, and one past the last tap before `len`.
    let first = if start < 0 { (-start + d - 1) / d } else { 0 };
    let last = ((len as isize - start + d - 1) / d).min(kernel as isize);
    if last <= first {
        return (0, 0);
    }
    (
        (start + first * d) as usize,
        (start + (last - 1) * d) as usize + 1,
    )
}

fn tuple_or_int(v: [usize; 2]) -> String {
    if v[0] == v[1] {
        v[0].to_string()
    } else {
        format!("({}, {})", v[0], v[1])
    }
}

/// Max pooling: PyTorch's `nn.MaxPool2d(kernel_size, stride=None,
/// padding=0, dilation=1, ceil_mode=False)`. Padding is `-inf`; a NaN in a
/// window is its maximum, as in PyTorch. Backward sends each output's
/// gradient to its window's (first) maximum.
///
/// ```
/// use nninit::nn::{MaxPool2d, Module, PoolOptions};
/// use nninit::Tensor;
///
/// let mut pool = MaxPool2d::new(PoolOptions::new([3, 3]).stride([2, 2]).padding([1, 1])).unwrap();
/// assert_eq!(pool.to_string(), "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)");
/// assert_eq!(pool.forward(&Tensor::zeros(&[1, 64, 112, 112]).unwrap()).unwrap().shape(), &[1, 64, 56, 56]);
/// ```
#[derive(Debug, Clone)]
pub struct MaxPool2d {
    options: PoolOptions,
    training: bool,
    /// Per training forward: the input shape and each output's argmax.
    records: Vec<Record>,
}

/// What a training forward of [`MaxPool2d`] keeps for its backward.
#[derive(Debug, Clone)]
struct Record {
    /// The input's shape.
    shape: Vec<usize>,
    /// Elements of an input plane (`H·W`).
    plane_in: usize,
    /// Elements of an output plane (`OH·OW`, at least 1).
    plane_out: usize,
    /// Each output's argmax, as an index within its input plane.
    arg: Argmax,
}

/// Argmax indices within a plane: 32 bits when `H·W` fits them (always,
/// but for planes of more than 4G elements), else `usize`.
#[derive(Debug, Clone)]
enum Argmax {
    Narrow(Vec<u32>),
    Wide(Vec<usize>),
}

impl Argmax {
    /// Outputs recorded.
    fn len(&self) -> usize {
        match self {
            Argmax::Narrow(a) => a.len(),
            Argmax::Wide(a) => a.len(),
        }
    }
}

/// Whether indices within a plane of `len` elements fit [`Argmax::Narrow`].
fn narrow_fits(len: usize) -> bool {
    #[cfg(test)]
    if tests::FORCE_WIDE.with(|f| f.get()) {
        return false;
    }
    u32::try_from(len).is_ok()
}

/// An index within a plane, as [`Argmax`] stores it.
trait PlaneIndex: Copy + Send + Sync {
    /// `i`, which the caller has checked fits.
    fn new(i: usize) -> Self;
    /// The index as `usize`.
    fn get(self) -> usize;
}

impl PlaneIndex for u32 {
    #[inline(always)]
    fn new(i: usize) -> u32 {
        debug_assert!(u32::try_from(i).is_ok());
        i as u32
    }
    #[inline(always)]
    fn get(self) -> usize {
        self as usize
    }
}

impl PlaneIndex for usize {
    #[inline(always)]
    fn new(i: usize) -> usize {
        i
    }
    #[inline(always)]
    fn get(self) -> usize {
        self
    }
}

/// `dx[plane · plane_in + arg[o]] += g[o]` for every output `o` of every
/// plane, in output order (so repeated argmaxes add in PyTorch's order).
fn scatter<I: PlaneIndex>(dx: &mut [f32], g: &[f32], arg: &[I], plane_in: usize, plane_out: usize) {
    for (plane, (args, gs)) in arg.chunks(plane_out).zip(g.chunks(plane_out)).enumerate() {
        let dx = &mut dx[plane * plane_in..(plane + 1) * plane_in];
        for (&a, &g) in args.iter().zip(gs) {
            dx[a.get()] += g;
        }
    }
}

/// The geometry of one max pooling's windows, shared by its planes.
struct Windows<'a> {
    /// Input row length.
    w: usize,
    /// Output row length.
    ow: usize,
    /// Per output row, the input rows `y0..y1` of its windows inside the
    /// plane.
    rows: &'a [(usize, usize)],
    /// Per kernel column inside the row: the first input column read, and
    /// the output columns `lo..hi` it reaches.
    taps_x: &'a [(usize, usize, usize)],
    /// Per output column, the first input column its window reads (training
    /// only).
    first_x: &'a [usize],
    /// Column stride.
    stride_x: usize,
    /// Row dilation.
    dilation_y: usize,
    /// Elements of an input plane (`H·W`).
    plane_in: usize,
    /// Elements of an output plane (`OH·OW`, at least 1).
    plane_out: usize,
}

impl Windows<'_> {
    /// Every plane of `x` into `out`, in parallel (each output element is
    /// computed alike anyway), with the argmaxes into `arg` for a training
    /// forward.
    fn max_planes<I: PlaneIndex>(&self, x: &[f32], out: &mut [f32], arg: Option<&mut [I]>) {
        let src = |plane: usize| &x[plane * self.plane_in..(plane + 1) * self.plane_in];
        let planes = out.par_chunks_mut(self.plane_out).enumerate();
        match arg {
            None => planes.for_each(|(plane, out)| self.max_plane::<I>(src(plane), out, None)),
            Some(arg) => planes
                .zip(arg.par_chunks_mut(self.plane_out))
                .for_each(|((plane, out), arg)| self.max_plane(src(plane), out, Some(arg))),
        }
    }

    /// One plane: `out` gets the maxima of `src`'s windows and, for a
    /// training forward, `arg` their indices within the plane.
    fn max_plane<I: PlaneIndex>(&self, src: &[f32], out: &mut [f32], mut arg: Option<&mut [I]>) {
        let (w, ow, s1) = (self.w, self.ow, self.stride_x);
        for (i, (best, &(y0, y1))) in out.chunks_exact_mut(ow.max(1)).zip(self.rows).enumerate() {
            // PyTorch: every window starts at -inf with its first tap as
            // the argmax, and takes `v > best || isnan(v)` over its taps in
            // row-major order (so the first NaN stays). Here all the
            // windows of an output row advance tap by tap together.
            best.fill(f32::NEG_INFINITY);
            let mut at = arg.as_deref_mut().map(|a| &mut a[i * ow..(i + 1) * ow]);
            if let Some(at) = at.as_deref_mut() {
                for (a, &x0) in at.iter_mut().zip(self.first_x) {
                    *a = I::new(y0 * w + x0);
                }
            }
            for y in (y0..y1).step_by(self.dilation_y) {
                let line = &src[y * w..(y + 1) * w];
                for &(first, lo, hi) in self.taps_x {
                    let best = &mut best[lo..hi];
                    match at.as_deref_mut() {
                        None if s1 == 1 => {
                            for (b, &v) in best.iter_mut().zip(&line[first..]) {
                                *b = if v > *b || v.is_nan() { v } else { *b };
                            }
                        }
                        None if s1 == 2 => {
                            for (b, v) in best.iter_mut().zip(line[first..].chunks(2)) {
                                let v = v[0];
                                *b = if v > *b || v.is_nan() { v } else { *b };
                            }
                        }
                        None => {
                            for (b, &v) in best.iter_mut().zip(line[first..].iter().step_by(s1)) {
                                *b = if v > *b || v.is_nan() { v } else { *b };
                            }
                        }
                        Some(at) => {
                            // Selects instead of a branch: on data like
                            // activations, whether a tap is the new maximum
                            // is a coin toss the branch predictor loses.
                            let at = &mut at[lo..hi];
                            let base = y * w + first;
                            if s1 == 2 {
                                let taps = line[first..].chunks(2);
                                for (q, ((b, v), a)) in
                                    best.iter_mut().zip(taps).zip(at).enumerate()
                                {
                                    let v = v[0];
                                    let take = v > *b || v.is_nan();
                                    *b = if take { v } else { *b };
                                    *a = if take { I::new(base + 2 * q) } else { *a };
                                }
                            } else {
                                let taps = line[first..].iter().step_by(s1);
                                for (q, ((b, &v), a)) in
                                    best.iter_mut().zip(taps).zip(at).enumerate()
                                {
                                    let take = v > *b || v.is_nan();
                                    *b = if take { v } else { *b };
                                    *a = if take { I::new(base + q * s1) } else { *a };
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

impl MaxPool2d {
    /// A max pooling with `options`.
    ///
    /// # Errors
    /// A zero kernel size, stride or dilation, or padding beyond half the
    /// effective kernel (PyTorch's messages).
    pub fn new(options: PoolOptions) -> Result<MaxPool2d> {
        options.check()?;
        Ok(MaxPool2d {
            options,
            training: false,
            records: Vec::new(),
        })
    }
}

impl Module for MaxPool2d {
    fn type_name(&self) -> &'static str {
        "MaxPool2d"
    }

    fn extra_repr(&self) -> String {
        let o = &self.options;
        format!(
            "kernel_size={}, stride={}, padding={}, dilation={}, ceil_mode={}",
            tuple_or_int(o.kernel_size),
            tuple_or_int(o.stride),
            tuple_or_int(o.padding),
            tuple_or_int(o.dilation),
            if o.ceil_mode { "True" } else { "False" }
        )
    }

    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        let (n, c, h, w, batched) = layout(
            input.shape(),
            "non-empty 3D or 4D (batch mode) tensor for max_pool2d",
        )?;
        let o = self.options;
        let (oh, ow) = pooled_size(&o, c, h, w)?;
        let x = input.as_slice();
        let mut out = Tensor::zeros(&out_shape(batched, n, c, oh, ow))?;
        let out_len = out.numel();
        let plane_len = (oh * ow).max(1);
        // The taps of each output row's windows that are inside the plane.
        let rows: Vec<(usize, usize)> = (0..oh)
            .map(|i| {
                inside_taps(
                    i,
                    o.stride[0],
                    o.padding[0],
                    o.kernel_size[0],
                    o.dilation[0],
                    h,
                )
            })
            .collect();
        let (s1, d1, p1) = (o.stride[1], o.dilation[1], o.padding[1]);
        // Per kernel column: its offset from a window's start and the output
        // columns `lo..hi` whose tap is inside the row.
        let taps_x: Vec<(usize, usize, usize)> = (0..o.kernel_size[1])
            .filter_map(|kx| {
                let off = (kx * d1) as isize - p1 as isize;
                let lo = if off < 0 { (-off) as usize } else { 0 }.div_ceil(s1);
                let hi = ((w as isize - off).max(0) as usize).div_ceil(s1).min(ow);
                // The first input column read, for output column `lo`.
                (hi > lo).then(|| (((lo * s1) as isize + off) as usize, lo, hi))
            })
            .collect();
        // The first input column each output column's window reads (its
        // argmax before any tap is taken), for a training forward.
        let first_x: Vec<usize> = if self.training {
            (0..ow)
                .map(|j| inside_taps(j, s1, p1, o.kernel_size[1], d1, w).0)
                .collect()
        } else {
            Vec::new()
        };
        let geometry = Windows {
            w,
            ow,
            rows: &rows,
            taps_x: &taps_x,
            first_x: &first_x,
            stride_x: s1,
            dilation_y: o.dilation[0],
            plane_in: h * w,
            plane_out: plane_len,
        };
        let out_s = out.as_mut_slice();
        let argmax = if !self.training {
            geometry.max_planes::<u32>(x, out_s, None);
            None
        } else if narrow_fits(h * w) {
            // Indices within the plane fit 32 bits: the selects then run
            // on lanes as wide as the values'.
            let mut arg = vec![0u32; out_len];
            geometry.max_planes(x, out_s, Some(&mut arg));
            Some(Argmax::Narrow(arg))
        } else {
            let mut arg = vec![0usize; out_len];
            geometry.max_planes(x, out_s, Some(&mut arg));
            Some(Argmax::Wide(arg))
        };
        if let Some(arg) = argmax {
            self.records.push(Record {
                shape: input.shape().to_vec(),
                plane_in: h * w,
                plane_out: plane_len,
                arg,
            });
        }
        Ok(out)
    }

    fn backward(&mut self, grad_output: &Tensor) -> Result<Tensor> {
        let rec = self.records.pop().ok_or(Error::BackwardBeforeForward {
            module: "MaxPool2d".to_string(),
        })?;
        let len = rec.arg.len();
        if grad_output.numel() != len {
            return Err(Error::GradShape {
                what: "grad_output of MaxPool2d".to_string(),
                expected: vec![len],
                found: grad_output.shape().to_vec(),
            });
        }
        let mut dx = Tensor::zeros(&rec.shape)?;
        let dxs = dx.as_mut_slice();
        let g = grad_output.as_slice();
        match &rec.arg {
            Argmax::Narrow(arg) => scatter(dxs, g, arg, rec.plane_in, rec.plane_out),
            Argmax::Wide(arg) => scatter(dxs, g, arg, rec.plane_in, rec.plane_out),
        }
        Ok(dx)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        if !training {
            self.records.clear();
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

/// Average pooling: PyTorch's `nn.AvgPool2d(kernel_size, stride=None,
/// padding=0, ceil_mode=False, count_include_pad=True)` (no dilation).
///
/// ```
/// use nninit::nn::{AvgPool2d, Module, PoolOptions};
/// use nninit::Tensor;
///
/// let mut pool = AvgPool2d::new(PoolOptions::new([2, 2])).unwrap();
/// assert_eq!(pool.to_string(), "AvgPool2d(kernel_size=2, stride=2, padding=0)");
/// let y = pool.forward(&Tensor::ones(&[1, 1, 4, 4]).unwrap()).unwrap();
/// assert_eq!(y.as_slice(), &[1.0; 4]);
/// ```
#[derive(Debug, Clone)]
pub struct AvgPool2d {
    options: PoolOptions,
    training: bool,
    /// Input shapes of the training forwards.
    records: Vec<Vec<usize>>,
}

impl AvgPool2d {
    /// An average pooling with `options` (its dilation must be 1).
    ///
    /// # Errors
    /// As [`MaxPool2d::new`], and a dilation other than 1.
    pub fn new(options: PoolOptions) -> Result<AvgPool2d> {
        if options.dilation != [1, 1] {
            return Err(Error::LayerOption {
                message: "AvgPool2d has no dilation",
            });
        }
        options.check()?;
        Ok(AvgPool2d {
            options,
            training: false,
            records: Vec::new(),
        })
    }

    /// Each output position's window `(h0, h1, w0, w1)` (clamped to the
    /// input) and divisor, as PyTorch's `avg_pool2d` computes them.
    fn windows(
        &self,
        h: usize,
        w: usize,
        oh: usize,
        ow: usize,
    ) -> Vec<(usize, usize, usize, usize, f32)> {
        let o = &self.options;
        let mut v = Vec::with_capacity(oh * ow);
        for i in 0..oh {
            for j in 0..ow {
                let hs = (i * o.stride[0]) as isize - o.padding[0] as isize;
                let ws = (j * o.stride[1]) as isize - o.padding[1] as isize;
                let he = (hs + o.kernel_size[0] as isize).min((h + o.padding[0]) as isize);
                let we = (ws + o.kernel_size[1] as isize).min((w + o.padding[1]) as isize);
                let pool = (he - hs) * (we - ws);
                let (hs, ws) = (hs.max(0), ws.max(0));
                let (he, we) = (he.min(h as isize), we.min(w as isize));
                let divisor = if o.count_include_pad {
                    pool
                } else {
                    (he - hs) * (we - ws)
                };
                v.push((
                    hs as usize,
                    he as usize,
                    ws as usize,
                    we as usize,
                    divisor as f32,
                ));
            }
        }
        v
    }
}

impl Module for AvgPool2d {
    fn type_name(&self) -> &'static str {
        "AvgPool2d"
    }

    fn extra_repr(&self) -> String {
        let o = &self.options;
        format!(
            "kernel_size={}, stride={}, padding={}",
            tuple_or_int(o.kernel_size),
            tuple_or_int(o.stride),
            tuple_or_int(o.padding)
        )
    }

    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        let (n, c, h, w, batched) = layout(
            input.shape(),
            "non-empty 3D or 4D (batch mode) tensor for avg_pool2d",
        )?;
        let (oh, ow) = pooled_size(&self.options, c, h, w)?;
        let windows = self.windows(h, w, oh, ow);
        let x = input.as_slice();
        let mut out = vec![0.0f32; n * c * oh * ow];
        for plane in 0..n * c {
            let src = &x[plane * h * w..(plane + 1) * h * w];
            for (q, &(h0, h1, w0, w1, div)) in windows.iter().enumerate() {
                let mut sum = 0.0f32;
                for y in h0..h1 {
                    for xx in w0..w1 {
                        sum += src[y * w + xx];
                    }
                }
                out[plane * oh * ow + q] = sum / div;
            }
        }
        if self.training {
            self.records.push(input.shape().to_vec());
        }
        Tensor::from_vec(out, &out_shape(batched, n, c, oh, ow))
    }

    fn backward(&mut self, grad_output: &Tensor) -> Result<Tensor> {
        let shape = self.records.pop().ok_or(Error::BackwardBeforeForward {
            module: "AvgPool2d".to_string(),
        })?;
        let (n, c, h, w, batched) = layout(&shape, "")?;
        let (oh, ow) = pooled_size(&self.options, c, h, w)?;
        check_grad_shape(
            "grad_output of AvgPool2d",
            &out_shape(batched, n, c, oh, ow),
            grad_output.shape(),
        )?;
        let windows = self.windows(h, w, oh, ow);
        let mut dx = Tensor::zeros(&shape)?;
        let dy = grad_output.as_slice();
        for plane in 0..n * c {
            let dst = &mut dx.as_mut_slice()[plane * h * w..(plane + 1) * h * w];
            for (q, &(h0, h1, w0, w1, div)) in windows.iter().enumerate() {
                let g = dy[plane * oh * ow + q] / div;
                for y in h0..h1 {
                    for xx in w0..w1 {
                        dst[y * w + xx] += g;
                    }
                }
            }
        }
        Ok(dx)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        if !training {
            self.records.clear();
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

/// Adaptive average pooling to a fixed output size: PyTorch's
/// `nn.AdaptiveAvgPool2d(output_size)`. Output cell `i` of a dimension of
/// input size `n` and output size `m` averages input positions
/// `⌊i·n/m⌋..⌈(i+1)·n/m⌉`. `None` keeps that dimension's input size.
///
/// ```
/// use nninit::nn::{AdaptiveAvgPool2d, Module};
/// use nninit::Tensor;
///
/// let mut pool = AdaptiveAvgPool2d::new([Some(1), Some(1)]);
/// assert_eq!(pool.to_string(), "AdaptiveAvgPool2d(output_size=(1, 1))");
/// let y = pool.forward(&Tensor::ones(&[2, 512, 7, 7]).unwrap()).unwrap();
/// assert_eq!(y.shape(), &[2, 512, 1, 1]);
/// ```
#[derive(Debug, Clone)]
pub struct AdaptiveAvgPool2d {
    output_size: [Option<usize>; 2],
    /// Printed as an int (`output_size=7`) rather than a pair.
    int_form: bool,
    training: bool,
    records: Vec<Vec<usize>>,
}

impl AdaptiveAvgPool2d {
    /// `AdaptiveAvgPool2d((h, w))`.
    pub fn new(output_size: [Option<usize>; 2]) -> AdaptiveAvgPool2d {
        AdaptiveAvgPool2d {
            output_size,
            int_form: false,
            training: false,
            records: Vec::new(),
        }
    }

    /// `AdaptiveAvgPool2d(size)`: a `size × size` output.
    pub fn square(size: usize) -> AdaptiveAvgPool2d {
        AdaptiveAvgPool2d {
            int_form: true,
            ..AdaptiveAvgPool2d::new([Some(size); 2])
        }
    }

    fn sizes(&self, h: usize, w: usize) -> (usize, usize) {
        (
            self.output_size[0].unwrap_or(h),
            self.output_size[1].unwrap_or(w),
        )
    }
}

/// The adaptive window of output cell `i` of `m` over an input of `n`.
fn adaptive_window(i: usize, n: usize, m: usize) -> (usize, usize) {
    ((i * n) / m, ((i + 1) * n).div_ceil(m))
}

impl Module for AdaptiveAvgPool2d {
    fn type_name(&self) -> &'static str {
        "AdaptiveAvgPool2d"
    }

    fn extra_repr(&self) -> String {
        let s = |v: Option<usize>| v.map_or("None".to_string(), |v| v.to_string());
        if self.int_form {
            format!("output_size={}", s(self.output_size[0]))
        } else {
            format!(
                "output_size=({}, {})",
                s(self.output_size[0]),
                s(self.output_size[1])
            )
        }
    }

    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        let (n, c, h, w, batched) = match *input.shape() {
            [_, _, _, _] | [_, _, _] => {
                layout(input.shape(), "").map_err(|_| Error::InputDims {
                    expected: "non-empty 3D or 4D tensor for adaptive_avg_pool2d()",
                    shape: input.shape().to_vec(),
                })?
            }
            _ => {
                return Err(Error::InputDims {
                    expected: "3D or 4D tensor for adaptive_avg_pool2d()",
                    shape: input.shape().to_vec(),
                });
            }
        };
        let (oh, ow) = self.sizes(h, w);
        let x = input.as_slice();
        let mut out = vec![0.0f32; n * c * oh * ow];
        for plane in 0..n * c {
            let src = &x[plane * h * w..(plane + 1) * h * w];
            for i in 0..oh {
                let (h0, h1) = adaptive_window(i, h, oh);
                for j in 0..ow {
                    let (w0, w1) = adaptive_window(j, w, ow);
                    let mut sum = 0.0f32;
                    for y in h0..h1 {
                        for xx in w0..w1 {
                            sum += src[y * w + xx];
                        }
                    }
                    out[(plane * oh + i) * ow + j] = sum / ((h1 - h0) * (w1 - w0)) as f32;
                }
            }
        }
        if self.training {
            self.records.push(input.shape().to_vec());
        }
        Tensor::from_vec(out, &out_shape(batched, n, c, oh, ow))
    }

    fn backward(&mut self, grad_output: &Tensor) -> Result<Tensor> {
        let shape = self.records.pop().ok_or(Error::BackwardBeforeForward {
            module: "AdaptiveAvgPool2d".to_string(),
        })?;
        let (n, c, h, w, batched) = layout(&shape, "")?;
        let (oh, ow) = self.sizes(h, w);
        check_grad_shape(
            "grad_output of AdaptiveAvgPool2d",
            &out_shape(batched, n, c, oh, ow),
            grad_output.shape(),
        )?;
        let mut dx = Tensor::zeros(&shape)?;
        let dy = grad_output.as_slice();
        for plane in 0..n * c {
            let dst = &mut dx.as_mut_slice()[plane * h * w..(plane + 1) * h * w];
            for i in 0..oh {
                let (h0, h1) = adaptive_window(i, h, oh);
                for j in 0..ow {
                    let (w0, w1) = adaptive_window(j, w, ow);
                    let g = dy[(plane * oh + i) * ow + j] / ((h1 - h0) * (w1 - w0)) as f32;
                    for y in h0..h1 {
                        for xx in w0..w1 {
                            dst[y * w + xx] += g;
                        }
                    }
                }
            }
        }
        Ok(dx)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        if !training {
            self.records.clear();
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

super::display_as_module!(MaxPool2d, AvgPool2d, AdaptiveAvgPool2d);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Generator;
    use std::cell::Cell;

    thread_local! {
        /// Makes this thread's training forwards record `usize` argmaxes.
        pub(super) static FORCE_WIDE: Cell<bool> = const { Cell::new(false) };
    }

    /// PyTorch's max pooling, window by window: the maxima and each
    /// window's argmax within its plane (first tap, then `v > best ||
    /// isnan(v)` in row-major order).
    fn reference(
        o: &PoolOptions,
        x: &[f32],
        planes: usize,
        h: usize,
        w: usize,
    ) -> (Vec<f32>, Vec<usize>) {
        let (oh, ow) = (o.output_size(h, 0), o.output_size(w, 1));
        let (mut out, mut arg) = (Vec::new(), Vec::new());
        for p in 0..planes {
            for i in 0..oh {
                for j in 0..ow {
                    let (mut best, mut at) = (f32::NEG_INFINITY, None);
                    for ky in 0..o.kernel_size[0] {
                        for kx in 0..o.kernel_size[1] {
                            let y = (i * o.stride[0] + ky * o.dilation[0]) as isize
                                - o.padding[0] as isize;
                            let xx = (j * o.stride[1] + kx * o.dilation[1]) as isize
                                - o.padding[1] as isize;
                            if y < 0 || xx < 0 || y >= h as isize || xx >= w as isize {
                                continue;
                            }
                            let idx = y as usize * w + xx as usize;
                            let v = x[p * h * w + idx];
                            if at.is_none() {
                                at = Some(idx);
                            }
                            if v > best || v.is_nan() {
                                best = v;
                                at = Some(idx);
                            }
                        }
                    }
                    out.push(best);
                    arg.push(at.expect("every window has a tap inside"));
                }
            }
        }
        (out, arg)
    }

    #[test]
    fn max_pool_matches_the_window_by_window_reference() {
        let mut g = Generator::new(5);
        for (k, s, p, d, ceil) in [
            ([3, 3], [1, 1], [1, 1], [1, 1], false),
            ([3, 3], [2, 2], [1, 1], [1, 1], false),
            ([2, 3], [3, 3], [0, 1], [1, 1], true),
            ([3, 2], [2, 1], [1, 1], [2, 2], false),
            ([2, 2], [2, 2], [0, 0], [1, 1], true),
        ] {
            let o = PoolOptions::new(k)
                .stride(s)
                .padding(p)
                .dilation(d)
                .ceil_mode(ceil);
            let (n, c, h, w) = (2, 3, 9, 11);
            let mut x = Tensor::randn(&[n, c, h, w], Some(&mut g)).unwrap();
            // Ties and NaNs, whose argmax rules differ from a plain max.
            for (i, v) in x.as_mut_slice().iter_mut().enumerate() {
                if i % 7 == 0 {
                    *v = 0.5;
                }
                if i % 53 == 0 {
                    *v = f32::NAN;
                }
            }
            let (want, want_arg) = reference(&o, x.as_slice(), n * c, h, w);
            for wide in [false, true] {
                let mut pool = MaxPool2d::new(o).unwrap();
                for training in [false, true] {
                    pool.set_training(training);
                    FORCE_WIDE.with(|f| f.set(wide));
                    let y = pool.forward(&x).unwrap();
                    FORCE_WIDE.with(|f| f.set(false));
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(y.as_slice()),
                        bits(&want),
                        "{o:?} training={training} wide={wide}"
                    );
                    if !training {
                        continue;
                    }
                    match &pool.records[0].arg {
                        Argmax::Narrow(_) => assert!(!wide),
                        Argmax::Wide(_) => assert!(wide),
                    }
                    let gy = Tensor::randn(y.shape(), Some(&mut g)).unwrap();
                    let dx = pool.backward(&gy).unwrap();
                    let mut want_dx = vec![0f32; x.numel()];
                    let plane_out = y.numel() / (n * c);
                    for (q, (&a, &gv)) in want_arg.iter().zip(gy.as_slice()).enumerate() {
                        want_dx[(q / plane_out) * h * w + a] += gv;
                    }
                    assert_eq!(
                        bits(dx.as_slice()),
                        bits(&want_dx),
                        "{o:?} backward wide={wide}"
                    );
                }
            }
        }
    }
}
