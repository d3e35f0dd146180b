//! [`Conv1d`] and [`Conv2d`]: PyTorch's convolutions (cross-correlations),
//! through the crate's GEMM.
//!
//! # Method
//! For each sample and group the input is unfolded (*im2col*) into a
//! `K × P` matrix, `K = (C/groups)·kh·kw` and `P = Ho·Wo`, whose column `p`
//! holds the input values under the kernel at output position `p` (zeros for
//! padding), and the output is `W_g · cols` (`W_g` the group's weight rows as
//! a `(O/groups) × K` matrix) plus the bias. A `1 × 1` kernel with stride 1 and
//! no padding uses the input itself as `cols`. Backward computes
//! `dW_g += dY_g · colsᵀ`, `db += Σ_p dY`, and `dcols = W_gᵀ · dY_g`, folded
//! back (*col2im*, adding overlaps) into `dX`. Every product goes through
//! [`gemm`](crate::gemm::gemm).
//!
//! A `Conv1d` is a `Conv2d` of height 1.

use std::mem::MaybeUninit;

use super::parameter::{Derived, KEEP_PACKED_FLOATS};
use super::{Module, Parameter, check_grad_shape};
use crate::error::{Error, Result};
use crate::gemm::{self, MatMut, MatRef, PackedA};
use crate::init::{FanMode, Init, Nonlinearity, calculate_fan_in_and_fan_out};
use crate::kernels::Kernels;
use crate::rng::Generator;
use crate::tensor::Tensor;
use rayon::prelude::*;

/// The padding of a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding<const D: usize> {
    /// Zeros on both sides of each spatial dimension.
    Explicit([usize; D]),
    /// `'same'`: the output has the input's size (stride 1 only); the
    /// `dilation·(k − 1)` padding is split with the extra one on the right.
    Same,
    /// `'valid'`: no padding.
    Valid,
}

impl<const D: usize> std::str::FromStr for Padding<D> {
    type Err = Error;

    /// `same` or `valid`.
    fn from_str(s: &str) -> Result<Padding<D>> {
        match s {
            "same" => Ok(Padding::Same),
            "valid" => Ok(Padding::Valid),
            other => Err(Error::PaddingString {
                padding: other.to_string(),
            }),
        }
    }
}

/// The options of a convolution beyond its channels and kernel size, with
/// PyTorch's defaults (`stride=1, padding=0, dilation=1, groups=1,
/// bias=True`; `padding_mode='zeros'`, the only mode supported).
///
/// ```
/// use nninit::nn::ConvOptions;
/// let o = ConvOptions::<2>::default().stride([2, 2]).padding([3, 3]).bias(false);
/// assert_eq!(o.stride, [2, 2]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvOptions<const D: usize> {
    /// Step of the kernel.
    pub stride: [usize; D],
    /// Zero padding.
    pub padding: Padding<D>,
    /// Spacing of the kernel taps.
    pub dilation: [usize; D],
    /// Channel groups (`in_channels` and `out_channels` must be multiples).
    pub groups: usize,
    /// Whether there is a bias.
    pub bias: bool,
}

impl<const D: usize> Default for ConvOptions<D> {
    fn default() -> Self {
        ConvOptions {
            stride: [1; D],
            padding: Padding::Explicit([0; D]),
            dilation: [1; D],
            groups: 1,
            bias: true,
        }
    }
}

impl<const D: usize> ConvOptions<D> {
    /// With `stride`.
    pub fn stride(mut self, stride: [usize; D]) -> Self {
        self.stride = stride;
        self
    }

    /// With zero padding `padding` on both sides.
    pub fn padding(mut self, padding: [usize; D]) -> Self {
        self.padding = Padding::Explicit(padding);
        self
    }

    /// With `'same'` or `'valid'` padding (or [`Padding::Explicit`]).
    pub fn padding_mode(mut self, padding: Padding<D>) -> Self {
        self.padding = padding;
        self
    }

    /// With `dilation`.
    pub fn dilation(mut self, dilation: [usize; D]) -> Self {
        self.dilation = dilation;
        self
    }

    /// With `groups`.
    pub fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// With or without a bias.
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
}

/// A convolution over `D` spatial dimensions: [`Conv1d`] (`D = 1`) and
/// [`Conv2d`] (`D = 2`), PyTorch's `nn.Conv1d` / `nn.Conv2d`.
///
/// Weight `[out_channels, in_channels / groups, k...]`, bias
/// `[out_channels]`. **Default init** (PyTorch's `reset_parameters`): the
/// weight by `kaiming_uniform_(a = √5)` (`U(±1/√fan_in)`,
/// `fan_in = in_channels/groups · ∏k`), then the bias by `U(±1/√fan_in)`, in
/// that order (with a torch-exact generator, PyTorch's numbers).
///
/// Input `[N, C, L]` / `[N, C, H, W]`, or unbatched `[C, L]` / `[C, H, W]`;
/// output `[N, O, ...]` with `(size + padding − dilation·(k − 1) − 1) / stride + 1`
/// positions per dimension. Backward accumulates into `weight.grad` and
/// `bias.grad` and returns the input's gradient.
///
/// The forward is an implicit-GEMM im2col: blocks of output positions are
/// unfolded straight into the GEMM's packed operand layout and multiplied
/// there, blocks on all threads. The layer keeps its weight packed for the
/// GEMM between forwards (as many floats again as the weight, for weights
/// up to 64 MiB), and packs it again after any write to the weight; a clone
/// starts without it.
///
/// ```
/// use nninit::nn::{Conv2d, ConvOptions, Module};
/// use nninit::Tensor;
///
/// let mut conv = Conv2d::new(3, 64, [7, 7], ConvOptions::default().stride([2, 2]).padding([3, 3]).bias(false), None).unwrap();
/// assert_eq!(
///     conv.to_string(),
///     "Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)"
/// );
/// let y = conv.forward(&Tensor::zeros(&[1, 3, 32, 32]).unwrap()).unwrap();
/// assert_eq!(y.shape(), &[1, 64, 16, 16]);
/// ```
#[derive(Debug, Clone)]
pub struct Conv<const D: usize> {
    /// `[out_channels, in_channels / groups, kernel...]`.
    pub weight: Parameter,
    /// `[out_channels]`, or `None` without bias.
    pub bias: Option<Parameter>,
    in_channels: usize,
    out_channels: usize,
    kernel_size: [usize; D],
    options: ConvOptions<D>,
    training: bool,
    /// Inputs of the training forwards not yet consumed by a backward.
    inputs: Vec<Tensor>,
    /// The weight packed for the GEMM (one packed `A` per group), kept
    /// between forwards while the weight is unchanged.
    packed: Derived<Vec<PackedA<f32>>>,
}

/// PyTorch's `nn.Conv1d`: see [`Conv`].
pub type Conv1d = Conv<1>;
/// PyTorch's `nn.Conv2d`: see [`Conv`].
pub type Conv2d = Conv<2>;

/// The geometry of one forward: everything as 2-D (`Conv1d` has height 1).
#[derive(Debug, Clone, Copy)]
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    groups: usize,
    kh: usize,
    kw: usize,
    stride: [usize; 2],
    dilation: [usize; 2],
    /// Padding before each dimension.
    pad: [usize; 2],
    ho: usize,
    wo: usize,
    o: usize,
}

impl Geometry {
    fn c_per_group(&self) -> usize {
        self.c / self.groups
    }
    fn o_per_group(&self) -> usize {
        self.o / self.groups
    }
    /// Rows of the unfolded input of one group.
    fn k(&self) -> usize {
        self.c_per_group() * self.kh * self.kw
    }
    /// Output positions.
    fn p(&self) -> usize {
        self.ho * self.wo
    }
    /// Whether the unfolded input is the input itself.
    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.pad == [0, 0]
    }
}

impl<const D: usize> Conv<D> {
    /// `ConvNd(in_channels, out_channels, kernel_size, ...)` with PyTorch's
    /// default init, drawn from `generator` (the global one if `None`).
    ///
    /// # Errors
    /// PyTorch's: `groups must be a positive integer`, `in_channels must be
    /// divisible by groups`, `out_channels must be divisible by groups`,
    /// `padding='same' is not supported for strided convolutions`; a zero
    /// kernel size, stride or dilation is an error too
    /// ([`Error::LayerOption`]).
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel_size: [usize; D],
        options: ConvOptions<D>,
        generator: Option<&mut Generator>,
    ) -> Result<Conv<D>> {
        let option = |message| Err(Error::LayerOption { message });
        if options.groups == 0 {
            return option("groups must be a positive integer");
        }
        if !in_channels.is_multiple_of(options.groups) {
            return option("in_channels must be divisible by groups");
        }
        if !out_channels.is_multiple_of(options.groups) {
            return option("out_channels must be divisible by groups");
        }
        if options.padding == Padding::Same && options.stride.iter().any(|&s| s != 1) {
            return option("padding='same' is not supported for strided convolutions");
        }
        if kernel_size.contains(&0) {
            return option("kernel_size must be positive");
        }
        if options.stride.contains(&0) {
            return option("stride must be positive");
        }
        if options.dilation.contains(&0) {
            return option("dilation must be positive");
        }
        let mut shape = vec![out_channels, in_channels / options.groups];
        shape.extend_from_slice(&kernel_size);
        let (weight, bias) = default_parameters(&shape, options.bias, generator)?;
        Ok(Conv {
            weight,
            bias,
            in_channels,
            out_channels,
            kernel_size,
            options,
            training: false,
            inputs: Vec::new(),
            packed: Derived::default(),
        })
    }

    /// `in_channels`.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// `out_channels`.
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// `kernel_size`.
    pub fn kernel_size(&self) -> [usize; D] {
        self.kernel_size
    }

    /// The options.
    pub fn options(&self) -> ConvOptions<D> {
        self.options
    }

    /// Padding before and after each spatial dimension.
    fn pads(&self) -> [[usize; 2]; D] {
        std::array::from_fn(|d| match self.options.padding {
            Padding::Explicit(p) => [p[d], p[d]],
            Padding::Valid => [0, 0],
            Padding::Same => {
                let total = self.options.dilation[d] * (self.kernel_size[d] - 1);
                [total / 2, total - total / 2]
            }
        })
    }

    /// Checks `input` and lays it out as 2-D.
    fn geometry(&self, input: &[usize]) -> Result<Geometry> {
        let expected = match D {
            1 => "2D (unbatched) or 3D (batched) input to conv1d",
            _ => "3D (unbatched) or 4D (batched) input to conv2d",
        };
        let batched = match input.len() {
            l if l == D + 2 => true,
            l if l == D + 1 => false,
            _ => {
                return Err(Error::InputDims {
                    expected,
                    shape: input.to_vec(),
                });
            }
        };
        let (n, rest) = if batched {
            (input[0], &input[1..])
        } else {
            (1, input)
        };
        let weight_shape = self.weight.shape().unwrap_or_default();
        if rest[0] != self.in_channels {
            let mut shown = input.to_vec();
            if !batched {
                shown.insert(0, 1);
            }
            return Err(Error::ConvChannels {
                groups: self.options.groups,
                weight: weight_shape,
                input: shown,
                expected: self.in_channels,
            });
        }
        let spatial = &rest[1..];
        let pads = self.pads();
        let mut padded = Vec::with_capacity(D);
        let mut effective = Vec::with_capacity(D);
        let mut out = [0usize; D];
        for d in 0..D {
            let p = spatial[d] + pads[d][0] + pads[d][1];
            let k = self.options.dilation[d] * (self.kernel_size[d] - 1) + 1;
            padded.push(p);
            effective.push(k);
            if p >= k {
                out[d] = (p - k) / self.options.stride[d] + 1;
            }
        }
        if padded.iter().zip(&effective).any(|(p, k)| p < k) {
            return Err(Error::KernelTooLarge {
                padded,
                kernel: effective,
            });
        }
        // As 2-D: Conv1d has a height of 1.
        let two = |v: &[usize], fill: usize| -> [usize; 2] {
            if D == 1 { [fill, v[0]] } else { [v[0], v[1]] }
        };
        let pad_before: Vec<usize> = pads.iter().map(|p| p[0]).collect();
        let [h, w] = two(spatial, 1);
        let [kh, kw] = two(&self.kernel_size, 1);
        let [ho, wo] = two(&out, 1);
        Ok(Geometry {
            n,
            c: self.in_channels,
            h,
            w,
            groups: self.options.groups,
            kh,
            kw,
            stride: two(&self.options.stride, 1),
            dilation: two(&self.options.dilation, 1),
            pad: two(&pad_before, 0),
            ho,
            wo,
            o: self.out_channels,
        })
    }

    /// The output shape for an input of `input` shape.
    fn output_shape(&self, input: &[usize], g: &Geometry) -> Vec<usize> {
        let mut shape = Vec::with_capacity(D + 2);
        if input.len() == D + 2 {
            shape.push(g.n);
        }
        shape.push(g.o);
        if D == 2 {
            shape.push(g.ho);
        }
        shape.push(g.wo);
        shape
    }
}

/// `kaiming_uniform_(a=√5)` on a weight of `shape`, then the bias
/// `U(±1/√fan_in)` (bound 0 for `fan_in == 0`): PyTorch's
/// `_ConvNd.reset_parameters`, which `Linear` shares (on meta inside
/// [`meta::on_meta`](super::meta::on_meta)).
pub(crate) fn default_parameters(
    shape: &[usize],
    bias: bool,
    mut generator: Option<&mut Generator>,
) -> Result<(Parameter, Option<Parameter>)> {
    let weight = super::meta::parameter(
        &Init::KaimingUniform {
            a: 5f64.sqrt(),
            mode: FanMode::FanIn,
            nonlinearity: Nonlinearity::LeakyRelu,
        },
        shape,
        generator.as_deref_mut(),
    )?;
    let bias = if bias {
        let (fan_in, _) = calculate_fan_in_and_fan_out(shape)?;
        // PyTorch: `bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0`,
        // then `uniform_(-bound, bound)`: for fan_in 0 the integer 0 twice,
        // so the bias is +0.0 (not −0.0).
        let (a, b) = if fan_in > 0 {
            let bound = 1.0 / (fan_in as f64).sqrt();
            (-bound, bound)
        } else {
            (0.0, 0.0)
        };
        Some(super::meta::parameter(
            &Init::Uniform { a, b },
            &[shape[0]],
            generator,
        )?)
    } else {
        None
    };
    Ok((weight, bias))
}

/// Floats of one block of the column matrix in the forward (1 MiB).
const COLUMN_BLOCK_FLOATS: usize = 1 << 18;

/// Unfolds sample `x` (`[C, H, W]`, channels `c0..c0 + C/groups`) into
/// `cols` (`K × P`, row-major).
fn im2col(g: &Geometry, x: &[f32], c0: usize, cols: &mut [f32]) {
    im2col_block(g, x, c0, 0..g.p(), cols);
}

/// The columns `positions` (output positions, row-major over `Ho × Wo`) of
/// [`im2col`]: `cols` is `K × positions.len()`, row-major.
fn im2col_block(
    g: &Geometry,
    x: &[f32],
    c0: usize,
    positions: std::ops::Range<usize>,
    cols: &mut [f32],
) {
    let pb = positions.len();
    for c in 0..g.c_per_group() {
        let plane = &x[(c0 + c) * g.h * g.w..(c0 + c + 1) * g.h * g.w];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let tap = Tap::new(g, i, j);
                let row = &mut cols[((c * g.kh + i) * g.kw + j) * pb..][..pb];
                // One output row (or the part of it in the block) at a time.
                let mut at = positions.start;
                while at < positions.end {
                    let (oh, ow0) = (at / g.wo, at % g.wo);
                    let ow1 = g.wo.min(ow0 + (positions.end - at));
                    tap.unfold(
                        g,
                        plane,
                        oh,
                        ow0,
                        &mut row[at - positions.start..][..ow1 - ow0],
                    );
                    at += ow1 - ow0;
                }
            }
        }
    }
}

/// The columns `positions` of [`im2col`] straight in the packed layout of
/// the GEMM's `B` ([`PackedA::b_panel_width`]): panels of `nr` positions,
/// `K`-major, element `(r, q)` at `(q / nr)·K·nr + r·nr + q % nr`, positions
/// past the block zero. Written panel by panel, each in one forward sweep.
fn im2col_packed(
    g: &Geometry,
    x: &[f32],
    c0: usize,
    positions: std::ops::Range<usize>,
    nr: usize,
    packed: &mut [f32],
) {
    let k = g.k();
    let taps: Vec<Tap> = (0..g.kh)
        .flat_map(|i| (0..g.kw).map(move |j| (i, j)))
        .map(|(i, j)| Tap::new(g, i, j))
        .collect();
    // The output rows a panel's positions cross: (oh, ow0, ow1, offset in
    // the panel row).
    let mut segments = Vec::with_capacity(nr + 1);
    for (q0, panel) in positions
        .clone()
        .step_by(nr)
        .zip(packed.chunks_exact_mut(k * nr))
    {
        let q1 = positions.end.min(q0 + nr);
        segments.clear();
        let mut at = q0;
        while at < q1 {
            let (oh, ow0) = (at / g.wo, at % g.wo);
            let ow1 = g.wo.min(ow0 + (q1 - at));
            segments.push((oh, ow0, ow1, at - q0));
            at += ow1 - ow0;
        }
        let mut rows = panel.chunks_exact_mut(nr);
        for c in 0..g.c_per_group() {
            let plane = &x[(c0 + c) * g.h * g.w..(c0 + c + 1) * g.h * g.w];
            for (tap, row) in taps.iter().zip(&mut rows) {
                for &(oh, ow0, ow1, off) in &segments {
                    tap.unfold(g, plane, oh, ow0, &mut row[off..off + (ow1 - ow0)]);
                }
                row[q1 - q0..].fill(0.0);
            }
        }
    }
}

/// Packs each group's `O/groups × K` weight matrix (`weight` is `[O, K]`
/// row-major) for the active instruction set.
fn pack_weight(g: &Geometry, weight: &[f32]) -> Result<Vec<PackedA<f32>>> {
    let (k, og) = (g.k(), g.o_per_group());
    (0..g.groups)
        .map(|grp| {
            let w = MatRef::row_major(&weight[grp * og * k..(grp + 1) * og * k], og, k)?;
            Ok(PackedA::new(Kernels::active(), w))
        })
        .collect()
}

/// The output of a convolution, written by its tasks in disjoint blocks.
#[derive(Clone, Copy)]
struct YPtr(*mut f32);

impl YPtr {
    /// The pointer `offset` elements on (a method, so closures capture the
    /// whole `Send + Sync` wrapper).
    ///
    /// # Safety
    /// The result must stay inside the output.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: forwarded to the caller.
        unsafe { self.0.add(offset) }
    }
}

// SAFETY: the tasks that share the pointer write disjoint elements only
// (see `conv_forward`), and the output outlives them.
unsafe impl Send for YPtr {}
// SAFETY: as for `Send`.
unsafe impl Sync for YPtr {}

/// One kernel tap `(i, j)`: its offset from an output position's window
/// origin, and the output columns whose input column is inside the plane.
#[derive(Debug, Clone, Copy)]
struct Tap {
    dy: isize,
    dx: isize,
    /// Output columns `lo..hi` read inside the row (the rest is padding).
    lo: usize,
    hi: usize,
}

impl Tap {
    fn new(g: &Geometry, i: usize, j: usize) -> Tap {
        let (s, w) = (g.stride[1] as isize, g.w as isize);
        let dy = (i * g.dilation[0]) as isize - g.pad[0] as isize;
        let dx = (j * g.dilation[1]) as isize - g.pad[1] as isize;
        let lo = if dx < 0 {
            ((-dx + s - 1) / s) as usize
        } else {
            0
        };
        let hi = if w - dx <= 0 {
            0
        } else {
            (((w - dx + s - 1) / s) as usize).min(g.wo)
        };
        Tap {
            dy,
            dx,
            lo: lo.min(hi),
            hi,
        }
    }

    /// The tap's inputs for output positions `(oh, ow0..ow0 + out.len())`
    /// of one output row into `out` (zero where the window is in the
    /// padding).
    #[inline]
    fn unfold(&self, g: &Geometry, plane: &[f32], oh: usize, ow0: usize, out: &mut [f32]) {
        let ow1 = ow0 + out.len();
        let y = (oh * g.stride[0]) as isize + self.dy;
        if y < 0 || y >= g.h as isize {
            out.fill(0.0);
            return;
        }
        let src = &plane[y as usize * g.w..(y as usize + 1) * g.w];
        // `lo..hi` clipped to this segment, relative to it.
        let (l, h) = (self.lo.clamp(ow0, ow1) - ow0, self.hi.clamp(ow0, ow1) - ow0);
        out[..l].fill(0.0);
        out[h.max(l)..].fill(0.0);
        if h > l {
            let s = g.stride[1];
            let first = ((ow0 + l) as isize * s as isize + self.dx) as usize;
            if s == 1 {
                out[l..h].copy_from_slice(&src[first..first + (h - l)]);
            } else if s == 2 {
                // (Pairs vectorize; a stepped iterator does not.)
                for (o, pair) in out[l..h].iter_mut().zip(src[first..].chunks(2)) {
                    *o = pair[0];
                }
            } else {
                for (o, &v) in out[l..h].iter_mut().zip(src[first..].iter().step_by(s)) {
                    *o = v;
                }
            }
        }
    }
}

/// Folds `cols` (`K × P`) back into `dx` (`[C, H, W]`, channels
/// `c0..c0 + C/groups`), adding where windows overlap.
fn col2im(g: &Geometry, cols: &[f32], c0: usize, dx: &mut [f32]) {
    let p = g.p();
    for c in 0..g.c_per_group() {
        let plane = &mut dx[(c0 + c) * g.h * g.w..(c0 + c + 1) * g.h * g.w];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &cols[((c * g.kh + i) * g.kw + j) * p..][..p];
                let dy = (i * g.dilation[0]) as isize - g.pad[0] as isize;
                let dxo = (j * g.dilation[1]) as isize - g.pad[1] as isize;
                for oh in 0..g.ho {
                    let y = (oh * g.stride[0]) as isize + dy;
                    if y < 0 || y >= g.h as isize {
                        continue;
                    }
                    let dst = &mut plane[y as usize * g.w..(y as usize + 1) * g.w];
                    for (ow, &v) in row[oh * g.wo..(oh + 1) * g.wo].iter().enumerate() {
                        let xx = (ow * g.stride[1]) as isize + dxo;
                        if xx >= 0 && xx < g.w as isize {
                            dst[xx as usize] += v;
                        }
                    }
                }
            }
        }
    }
}

/// The forward of a convolution of geometry `g` (weight `[O, K]` as a
/// matrix, bias `[O]`) on `x` (`[N, C, H, W]`, row-major): `[N, O, Ho, Wo]`
/// into a new tensor of `shape`.
///
/// Each group's weight comes packed ([`pack_weight`]); the input is
/// unfolded in blocks of output positions straight into the packed layout
/// of the GEMM's `B` (about 1 MiB, so it stays in L2), and each block's
/// product is written into its columns of `Y`. Neither the blocking nor the
/// samples' split over threads changes an element's chain of operations
/// (the GEMM's, over the whole `K`), so the bits are those of one product
/// over the whole column matrix, on any thread count.
fn conv_forward(
    g: &Geometry,
    x: &[f32],
    packed_w: &[PackedA<f32>],
    bias: Option<&[f32]>,
    shape: &[usize],
) -> Result<Tensor> {
    let (k, p, og) = (g.k(), g.p(), g.o_per_group());
    // Every element starts as its bias (the products are added with β = 1)
    // or is overwritten (β = 0).
    let mut out = Tensor::filled_with(shape, |slots| match bias {
        Some(b) => {
            for (row, &b) in slots.chunks_exact_mut(p.max(1)).zip(b.iter().cycle()) {
                row.fill(MaybeUninit::new(b));
            }
        }
        None => Kernels::active().fill_constant_uninit(slots, 0.0),
    })?;
    if out.numel() == 0 || g.c * g.h * g.w == 0 {
        // No output, or no input values (zero channels or an empty, padded
        // plane): the products are zero, the output is the bias.
        return Ok(out);
    }
    let beta = if bias.is_some() { 1.0 } else { 0.0 };
    let nr = packed_w[0].b_panel_width();
    // Positions per block: a packed block of about 1 MiB (whole panels).
    let pb = ((COLUMN_BLOCK_FLOATS / k.max(1)) / nr * nr).clamp(nr, p.next_multiple_of(nr));
    let block_len = packed_w[0].b_len(pb.min(p));
    // One task per (sample, group, block of positions), in parallel: each
    // unfolds its block and multiplies it into its columns of `Y`. With
    // fewer tasks than two per thread (one small sample), the products
    // inside are parallel instead.
    let blocks = p.div_ceil(pb);
    let tasks = g.n * g.groups * blocks;
    let inner_parallel = tasks < 2 * rayon::current_num_threads();
    let y = YPtr(out.as_mut_slice().as_mut_ptr());
    (0..tasks).into_par_iter().for_each_init(
        || vec![0.0f32; block_len],
        |packed, t| {
            let (sample, grp, block) = (t / (g.groups * blocks), t / blocks % g.groups, t % blocks);
            let (p0, n) = (block * pb, pb.min(p - block * pb));
            let w = &packed_w[grp];
            let xs = &x[sample * g.c * g.h * g.w..(sample + 1) * g.c * g.h * g.w];
            let packed = &mut packed[..w.b_len(n)];
            im2col_packed(g, xs, grp * g.c_per_group(), p0..p0 + n, nr, packed);
            let at = (sample * g.o + grp * og) * p + p0;
            // SAFETY: rows `0..og` and columns `p0..p0 + n` (row stride
            // `p`) of this sample's and group's `og × p` part of `Y` are
            // inside `out`, and no other task's (another block, group or
            // sample) overlap them; `out` is not otherwise used meanwhile.
            unsafe {
                gemm::gemm_packed_raw(1.0, w, packed, n, beta, y.at(at), (p, 1), inner_parallel)
            };
        },
    );
    Ok(out)
}

impl<const D: usize> Module for Conv<D> {
    fn type_name(&self) -> &'static str {
        match D {
            1 => "Conv1d",
            _ => "Conv2d",
        }
    }

    fn extra_repr(&self) -> String {
        let tuple = |v: &[usize; D]| {
            let items: Vec<String> = v.iter().map(usize::to_string).collect();
            if D == 1 {
                format!("({},)", items[0])
            } else {
                format!("({})", items.join(", "))
            }
        };
        let mut s = format!(
            "{}, {}, kernel_size={}, stride={}",
            self.in_channels,
            self.out_channels,
            tuple(&self.kernel_size),
            tuple(&self.options.stride)
        );
        match self.options.padding {
            Padding::Explicit(p) if p == [0; D] => {}
            Padding::Explicit(p) => s += &format!(", padding={}", tuple(&p)),
            Padding::Same => s += ", padding=same",
            Padding::Valid => s += ", padding=valid",
        }
        if self.options.dilation != [1; D] {
            s += &format!(", dilation={}", tuple(&self.options.dilation));
        }
        if self.options.groups != 1 {
            s += &format!(", groups={}", self.options.groups);
        }
        if self.bias.is_none() {
            s += ", bias=False";
        }
        s
    }

    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        let g = self.geometry(input.shape())?;
        let weight = self.weight.data()?;
        let bias = match &self.bias {
            Some(b) => Some(b.data()?),
            None => None,
        };
        let shape = self.output_shape(input.shape(), &g);
        let unkept;
        let packed = if weight.numel() <= KEEP_PACKED_FLOATS {
            self.packed
                .get_or_make(&self.weight, &weight, |w| pack_weight(&g, w.as_slice()))?
        } else {
            unkept = pack_weight(&g, weight.as_slice())?;
            &unkept
        };
        let out = conv_forward(
            &g,
            input.as_slice(),
            packed,
            bias.as_deref().map(Tensor::as_slice),
            &shape,
        )?;
        if self.training {
            self.inputs.push(input.clone());
        }
        Ok(out)
    }

    fn backward(&mut self, grad_output: &Tensor) -> Result<Tensor> {
        let x = self.inputs.pop().ok_or(Error::BackwardBeforeForward {
            module: self.type_name().to_string(),
        })?;
        let g = self.geometry(x.shape())?;
        let y_shape = self.output_shape(x.shape(), &g);
        check_grad_shape(
            &format!("grad_output of {}", self.type_name()),
            &y_shape,
            grad_output.shape(),
        )?;
        let (k, p, og) = (g.k(), g.p(), g.o_per_group());
        let w_shape = self.weight.shape().unwrap_or_default();
        let mut dw = vec![0.0f32; g.o * k];
        let mut dx = vec![0.0f32; x.numel()];
        let mut cols = vec![0.0f32; k * p];
        let xs_all = x.as_slice();
        let dy_all = grad_output.as_slice();
        {
            let weight = self.weight.data()?;
            for n in 0..g.n {
                let xs = &xs_all[n * g.c * g.h * g.w..(n + 1) * g.c * g.h * g.w];
                let dys = &dy_all[n * g.o * p..(n + 1) * g.o * p];
                let dxs = &mut dx[n * g.c * g.h * g.w..(n + 1) * g.c * g.h * g.w];
                for grp in 0..g.groups {
                    let dy = MatRef::row_major(&dys[grp * og * p..(grp + 1) * og * p], og, p)?;
                    let w = MatRef::row_major(
                        &weight.as_slice()[grp * og * k..(grp + 1) * og * k],
                        og,
                        k,
                    )?;
                    // dW_g += dY_g · colsᵀ
                    let dwg = MatMut::row_major(&mut dw[grp * og * k..(grp + 1) * og * k], og, k)?;
                    if g.is_pointwise() {
                        let xm = MatRef::row_major(&xs[grp * k * p..(grp + 1) * k * p], k, p)?;
                        gemm::gemm(1.0, dy, xm.t(), 1.0, dwg)?;
                        // dX_g = W_gᵀ · dY_g, straight into the input gradient.
                        let dxg =
                            MatMut::row_major(&mut dxs[grp * k * p..(grp + 1) * k * p], k, p)?;
                        gemm::gemm(1.0, w.t(), dy, 0.0, dxg)?;
                    } else {
                        im2col(&g, xs, grp * g.c_per_group(), &mut cols);
                        let cm = MatRef::row_major(&cols, k, p)?;
                        gemm::gemm(1.0, dy, cm.t(), 1.0, dwg)?;
                        let dcols = MatMut::row_major(&mut cols, k, p)?;
                        gemm::gemm(1.0, w.t(), dy, 0.0, dcols)?;
                        col2im(&g, &cols, grp * g.c_per_group(), dxs);
                    }
                }
            }
        }
        self.weight
            .accumulate_grad(&Tensor::from_vec(dw, &w_shape)?)?;
        if let Some(b) = &self.bias {
            let mut db = vec![0.0f32; g.o];
            for n in 0..g.n {
                for (o, d) in db.iter_mut().enumerate() {
                    let row = &dy_all[(n * g.o + o) * p..(n * g.o + o + 1) * p];
                    *d += row.iter().sum::<f32>();
                }
            }
            b.accumulate_grad(&Tensor::from_vec(db, &[g.o])?)?;
        }
        Tensor::from_vec(dx, x.shape())
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        if !training {
            self.inputs.clear();
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn own_parameters(&self) -> Vec<(&str, &Parameter)> {
        let mut v = vec![("weight", &self.weight)];
        if let Some(b) = &self.bias {
            v.push(("bias", b));
        }
        v
    }
}

impl<const D: usize> std::fmt::Display for Conv<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&super::repr(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reference unfold: one element at a time, straight from the
    /// definition.
    fn unfold(g: &Geometry, x: &[f32], c0: usize) -> Vec<f32> {
        let p = g.p();
        let mut cols = vec![f32::NAN; g.k() * p];
        for c in 0..g.c_per_group() {
            for i in 0..g.kh {
                for j in 0..g.kw {
                    for oh in 0..g.ho {
                        for ow in 0..g.wo {
                            let y =
                                (oh * g.stride[0] + i * g.dilation[0]) as isize - g.pad[0] as isize;
                            let xx =
                                (ow * g.stride[1] + j * g.dilation[1]) as isize - g.pad[1] as isize;
                            let inside =
                                (0..g.h as isize).contains(&y) && (0..g.w as isize).contains(&xx);
                            cols[((c * g.kh + i) * g.kw + j) * p + oh * g.wo + ow] = if inside {
                                x[((c0 + c) * g.h + y as usize) * g.w + xx as usize]
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
        }
        cols
    }

    /// Every block of positions (starting and ending mid-row, one position,
    /// all of them), row-major and packed in panels of every width, equals
    /// those columns of the reference, for strides,
    /// padding wider than the kernel reach, dilation and groups.
    #[test]
    fn im2col_blocks_equal_the_reference_unfold() {
        let cases = [
            // (c, h, w, groups, kh, kw, stride, dilation, pad)
            (3, 7, 9, 1, 3, 3, [1, 1], [1, 1], [1, 1]),
            (4, 8, 5, 2, 3, 2, [2, 3], [1, 1], [2, 0]),
            (2, 6, 6, 1, 2, 3, [1, 2], [2, 2], [3, 4]),
            (1, 5, 11, 1, 1, 5, [3, 1], [1, 2], [0, 5]),
        ];
        for (c, h, w, groups, kh, kw, stride, dilation, pad) in cases {
            let ho = (h + 2 * pad[0] - dilation[0] * (kh - 1) - 1) / stride[0] + 1;
            let wo = (w + 2 * pad[1] - dilation[1] * (kw - 1) - 1) / stride[1] + 1;
            let g = Geometry {
                n: 1,
                c,
                h,
                w,
                groups,
                kh,
                kw,
                stride,
                dilation,
                pad,
                ho,
                wo,
                o: groups,
            };
            let x: Vec<f32> = (0..c * h * w).map(|v| v as f32 + 1.0).collect();
            for grp in 0..groups {
                let c0 = grp * g.c_per_group();
                let want = unfold(&g, &x, c0);
                let mut full = vec![f32::NAN; g.k() * g.p()];
                im2col(&g, &x, c0, &mut full);
                assert_eq!(full, want);
                let p = g.p();
                for start in [0, 1, wo - 1, wo, wo + 1, p / 2] {
                    for len in [1, wo - 1, wo, wo + 2, p - start] {
                        if start + len > p || len == 0 {
                            continue;
                        }
                        let mut cols = vec![f32::NAN; g.k() * len];
                        im2col_block(&g, &x, c0, start..start + len, &mut cols);
                        for r in 0..g.k() {
                            assert_eq!(
                                cols[r * len..(r + 1) * len],
                                want[r * p + start..r * p + start + len],
                                "row {r}, positions {start}..{}",
                                start + len
                            );
                        }
                        for nr in [1, 4, 16, 32] {
                            let k = g.k();
                            let mut packed = vec![f32::NAN; len.div_ceil(nr) * nr * k];
                            im2col_packed(&g, &x, c0, start..start + len, nr, &mut packed);
                            for r in 0..k {
                                for q in 0..len.next_multiple_of(nr) {
                                    let v = packed[(q / nr) * k * nr + r * nr + q % nr];
                                    let w = if q < len {
                                        want[r * p + start + q]
                                    } else {
                                        0.0
                                    };
                                    assert_eq!(
                                        v.to_bits(),
                                        w.to_bits(),
                                        "packed (nr {nr}) row {r}, position {q} of {start}..{}",
                                        start + len
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The blocked forward (here 2 blocks of 32 positions and a partial
    /// one: `K = 4608`) gives the bits of one product over the whole column
    /// matrix.
    #[test]
    fn blocked_forward_equals_one_product() {
        let (c, h, w, o) = (512, 7, 10, 3);
        let g = Geometry {
            n: 2,
            c,
            h,
            w,
            groups: 1,
            kh: 3,
            kw: 3,
            stride: [1, 1],
            dilation: [1, 1],
            pad: [1, 1],
            ho: h,
            wo: w,
            o,
        };
        let x: Vec<f32> = (0..2 * c * h * w)
            .map(|v| ((v * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let weight: Vec<f32> = (0..o * g.k())
            .map(|v| ((v * 53 % 97) as f32 - 48.0) / 11.0)
            .collect();
        let bias = [0.5f32, -1.25, 2.0];
        let (k, p) = (g.k(), g.p());
        let packed = pack_weight(&g, &weight).unwrap();
        let got = conv_forward(&g, &x, &packed, Some(&bias), &[2, o, h, w]).unwrap();
        let got = got.as_slice();
        for n in 0..2 {
            let xs = &x[n * c * h * w..(n + 1) * c * h * w];
            let mut cols = vec![0.0; k * p];
            im2col(&g, xs, 0, &mut cols);
            let mut y: Vec<f32> = bias
                .iter()
                .flat_map(|&b| std::iter::repeat_n(b, p))
                .collect();
            gemm::gemm(
                1.0,
                MatRef::row_major(&weight, o, k).unwrap(),
                MatRef::row_major(&cols, k, p).unwrap(),
                1.0,
                MatMut::row_major(&mut y, o, p).unwrap(),
            )
            .unwrap();
            let part = &got[n * o * p..(n + 1) * o * p];
            assert!(
                part.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()),
                "sample {n}"
            );
        }
    }
}
