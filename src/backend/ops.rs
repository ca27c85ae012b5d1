//! The backend-facing op table (ggml's lesson: a small set of ops, implemented once per backend). Each op
//! receives its geometry already checked by [`super::shape`]; the model-facing [`super::Tensor`] is implemented
//! once, for every `Ops`, in `checked.rs`, which checks the shapes and calls these. Backends implement this;
//! models call `Tensor`.

use std::future::Future;

use super::op_code::op_code;
use super::shape::{
    Attention, Broadcast, Cat, Conv2d, Gather, GroupNorm, Linear, Matmul, Narrow, Planes, Rows, Transpose,
};
use super::Activation;
use crate::error::Result;

op_code! {
    /// The elementwise binary ops (NumPy broadcasting).
    pub enum BinaryOp as "BINARY" {
        Add,
        Sub,
        Mul,
    }
}

impl BinaryOp {
    pub fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
        }
    }
}

/// The elementwise unary ops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    /// x·mul + add
    Affine {
        mul: f32,
        add: f32,
    },
    /// x clamped to [min, max] (NaN stays NaN)
    Clamp {
        min: f32,
        max: f32,
    },
    Activation(Activation),
}

/// The coefficients of the fused elementwise denoising step, one sampler step `x_t → x_prev` as scalars
/// (`docs/math.md §11.3`; the schedulers compute them, and re-export this type):
///
/// ```text
/// x0   = (x0_sample · sample + x0_model · model_output) / x0_denominator
/// x0   = clamp(x0, -clip, +clip)                          if clip is Some
/// mean = mean_x0 · x0 + mean_sample · sample
/// prev = mean + σ · z                                      if noise is Some, z ~ randn(sample.shape)
/// ```
///
/// `model_output` here is the ε (or x₀) part only; for `learned_range` the caller splits the model's
/// `2C` channels into that part (channels `0..C`) and `v` (channels `C..2C`) first.
///
/// The x₀ line keeps diffusers' order of operations, `(sample − √(1−ᾱ_t)·ε) / √ᾱ_t`
/// (`x0_sample = 1`, `x0_model = −√(1−ᾱ_t)`, `x0_denominator = √ᾱ_t`; for sample prediction `0, 1, 1`).
/// Folding the division into reciprocal coefficients (`x0_sample = 1/√ᾱ_t`) loses the golden match:
/// measured on the 25-step decoder, multiplying by `1/√ᾱ_t` is off by an ulp in up to two thirds of the
/// unclipped elements of a step, and folding `−√(1−ᾱ_t)/√ᾱ_t` too in most of them, while the division
/// form is bit-exact at every step where torch's own √ is correctly rounded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepCoefficients {
    pub x0_sample: f32,
    pub x0_model: f32,
    pub x0_denominator: f32,
    /// `clip_sample_range` when `clip_sample` is on.
    pub clip: Option<f32>,
    pub mean_x0: f32,
    pub mean_sample: f32,
    /// `None` when no noise is added, and then the step must not draw from the generator either
    /// (UnCLIPScheduler draws only for `t > 0`, `docs/math.md §11.3` / `§13`).
    pub noise: Option<NoiseScale>,
}

/// The standard deviation of the noise added by a denoising step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoiseScale {
    /// One σ for every element (`fixed_small_log`, DDIM).
    Fixed { sigma: f32 },
    /// `learned_range`: per element, with `v` the model's variance channels,
    /// `frac = (v + 1) / 2`, `σ = exp(0.5 · (frac · log_max + (1 − frac) · log_min))`
    /// (`log_max = ln β`, `log_min = ln` of the posterior variance; diffusers `_get_variance`).
    LearnedRange { log_min: f32, log_max: f32 },
}

/// A normalisation's affine parameters: y·γ + β, then (GroupNorm only) y·scale + shift.
pub struct Affine<'a, T> {
    pub gamma: &'a T,
    pub beta: &'a T,
    pub eps: f32,
    pub modulation: Option<(&'a T, &'a T)>,
}

/// The tensors of a denoising step, each of the same number of values.
pub struct StepOperands<'a, T> {
    /// ε̂ or x̂0
    pub model: &'a T,
    /// The learned-range channels v: present whenever the noise is learned-range and `noise` is given.
    pub log_variance_frac: Option<&'a T>,
    /// x_t
    pub sample: &'a T,
    /// z
    pub noise: Option<&'a T>,
}

/// The ops a backend implements, on geometry checked by [`super::shape`]. Every op returns a new tensor
/// (`reshape` may share the data). The methods share the names of [`super::Tensor`]'s; only `checked.rs` has
/// both traits in scope.
pub trait Ops: Clone + Sized {
    /// The weight type of `linear` / `conv2d`.
    type Matrix;

    fn dims(&self) -> &[usize];
    /// A weight's logical shape: (out, in) for `linear`, (out, in, kh, kw) for `conv2d`.
    fn matrix_dims(w: &Self::Matrix) -> &[usize];
    fn to_vec(&self) -> impl Future<Output = Result<Vec<f32>>>;

    // ---- layout
    /// The same values viewed as `dims` (same element count).
    fn reshape(&self, dims: &[usize]) -> Result<Self>;
    fn transpose(&self, g: &Transpose) -> Result<Self>;
    fn narrow(&self, g: &Narrow) -> Result<Self>;
    fn cat(parts: &[&Self], g: &Cat) -> Result<Self>;
    /// Rows `ids` (each < g.rows) of the (g.rows, g.d) table.
    fn gather_rows(&self, ids: &[u32], g: &Gather) -> Result<Self>;

    // ---- elementwise
    fn binary(&self, rhs: &Self, op: BinaryOp, g: &Broadcast) -> Result<Self>;
    fn unary(&self, op: UnaryOp) -> Result<Self>;
    /// x / ‖x‖₂ over each row.
    fn l2_normalize(&self, g: &Rows) -> Result<Self>;

    // ---- dense layers (a bias, when given, holds one value per output)
    fn linear(&self, w: &Self::Matrix, b: Option<&Self>, g: &Linear) -> Result<Self>;
    fn matmul(&self, rhs: &Self, g: &Matmul) -> Result<Self>;
    fn conv2d(&self, w: &Self::Matrix, b: Option<&Self>, g: &Conv2d) -> Result<Self>;

    // ---- normalisation
    /// GroupNorm with γ/β (c), then y·scale + shift with the (n, c) modulation, then SiLU when `g.silu`.
    fn group_norm(&self, a: Affine<'_, Self>, g: &GroupNorm) -> Result<Self>;
    /// LayerNorm over each row, γ and β (g.len); no modulation.
    fn layer_norm(&self, a: Affine<'_, Self>, g: &Rows) -> Result<Self>;

    // ---- attention: softmax(q·kᵀ/√d + bias)·v per head; the bias (N|1, Lq|1, Lk) as `g.bias` says
    fn attention(q: &Self, k: &Self, v: &Self, bias: Option<&Self>, g: &Attention) -> Result<Self>;

    // ---- resampling (NCHW)
    fn avg_pool2x2(&self, g: &Planes) -> Result<Self>;
    fn upsample_nearest2x(&self, g: &Planes) -> Result<Self>;

    // ---- the fused denoising step (`docs/math.md §11.3`), elementwise over `n` values, so a denoising step
    // never leaves the device. Returns (x_{t-1}, x̂0).
    fn denoising_step(x: StepOperands<'_, Self>, c: &StepCoefficients, n: usize) -> Result<(Self, Self)>;
}
