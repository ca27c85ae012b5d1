//! The op table every model is written against (ggml's lesson: a small set of ops, implemented once
//! per backend). Model code exists once and calls [`Tensor`]; `Tensor` is implemented once (`checked.rs`) on
//! top of the backend-facing [`ops::Ops`]: it checks shapes in [`shape`] and hands each backend the checked
//! geometry. `cpu` implements `Ops` with candle and plain slices, `webgpu` with WGSL kernels. Tensors are
//! f32, row-major, shapes in PyTorch order (NCHW, (batch, seq, channels)).

mod checked;
pub mod cpu;
pub(crate) mod op_code;
pub mod ops;
pub mod shape;
#[cfg(feature = "webgpu")]
pub mod webgpu;

use std::future::Future;

use crate::error::Result;
use crate::gguf::TensorView;
pub use ops::{Affine, StepCoefficients, StepOperands};

/// Pointwise activations (`docs/math.md §0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// x·sigmoid(x)
    Silu,
    /// exact erf GELU
    Gelu,
    /// x·sigmoid(1.702x) (CLIP)
    QuickGelu,
}

impl Activation {
    /// The activation a config's `hidden_act` / `act_fn` string names.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "silu" | "swish" => Ok(Activation::Silu),
            "gelu" => Ok(Activation::Gelu),
            "quick_gelu" => Ok(Activation::QuickGelu),
            other => Err(crate::Error::Model(format!(
                "activation `{other}` is not supported (expected silu, gelu or quick_gelu)"
            ))),
        }
    }
}

/// A device that makes tensors: the CPU, or a WebGPU device.
pub trait Backend: Clone + 'static {
    type Tensor: Tensor;

    /// Short name shown to people ("cpu", "webgpu").
    fn name(&self) -> &'static str;

    /// A tensor from host data (length = product of `shape`).
    fn tensor(&self, data: Vec<f32>, shape: &[usize]) -> Result<Self::Tensor>;

    /// A weight used as a dense tensor (norms, biases, embeddings), dequantized if stored quantized.
    fn weight(&self, view: &TensorView<'_>) -> Result<Self::Tensor>;

    /// A weight used by `linear` or `conv2d`, of logical `shape` (a conv kernel may be stored as its
    /// (out, in·kh·kw) matrix); a backend may keep it in its stored (quantized) type.
    fn matrix(&self, view: &TensorView<'_>, shape: &[usize]) -> Result<<Self::Tensor as Tensor>::Matrix>;

    /// Runs `model_call` (one call of a model, tensors and weights of this backend only) where its ops run best:
    /// the CPU backend runs it on its thread pool, so that each parallel op inside forks and joins among the
    /// pool's threads instead of waking the pool from outside and waiting to be woken. Elsewhere
    /// it is just the call.
    fn on_pool<R>(&self, model_call: impl FnOnce() -> R) -> R {
        model_call()
    }
}

/// The ops models are written against. Every op returns a new tensor; shapes are checked once, in
/// [`shape`], for every backend.
pub trait Tensor: Clone + Sized {
    /// The weight type of `linear` / `conv2d`.
    type Matrix;

    fn dims(&self) -> &[usize];

    /// Copies the data back to the host (async: WebGPU reads back asynchronously in the browser).
    fn to_vec(&self) -> impl Future<Output = Result<Vec<f32>>>;

    // ---- layout
    fn reshape(&self, shape: &[usize]) -> Result<Self>;
    /// Swaps two dimensions (the result is laid out contiguously).
    fn transpose(&self, d0: usize, d1: usize) -> Result<Self>;
    fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Self>;
    fn cat(parts: &[&Self], dim: usize) -> Result<Self>;
    /// Rows `ids` of a 2-D table: (V, D) → (ids.len(), D).
    fn gather_rows(&self, ids: &[u32]) -> Result<Self>;

    // ---- elementwise (NumPy broadcasting)
    fn add(&self, rhs: &Self) -> Result<Self>;
    fn sub(&self, rhs: &Self) -> Result<Self>;
    fn mul(&self, rhs: &Self) -> Result<Self>;
    /// x·mul + add
    fn affine(&self, mul: f32, add: f32) -> Result<Self>;
    fn clamp(&self, min: f32, max: f32) -> Result<Self>;
    fn activation(&self, act: Activation) -> Result<Self>;
    /// x / ‖x‖₂ over the last dim.
    fn l2_normalize(&self) -> Result<Self>;

    // ---- dense layers
    /// (…, in) · W(out, in)ᵀ + b → (…, out)
    fn linear(&self, w: &Self::Matrix, b: Option<&Self>) -> Result<Self>;
    /// Batched matmul with broadcasting over leading dims: (…, m, k) · (…, k, n).
    fn matmul(&self, rhs: &Self) -> Result<Self>;
    /// NCHW conv, stride 1, `padding` on every side; W (out, in, kh, kw).
    fn conv2d(&self, w: &Self::Matrix, b: Option<&Self>, padding: usize) -> Result<Self>;

    // ---- normalisation
    /// GroupNorm over (N, C, …) with `affine`'s γ/β (C each) and ε, then in the same pass its optional per-sample
    /// modulation `(scale, shift)`, each (N, C): y·scale + shift (a ResNet's time `scale_shift`), then `act`.
    fn group_norm(&self, groups: usize, affine: Affine<'_, Self>, act: Option<Activation>) -> Result<Self>;
    /// LayerNorm over the last dim.
    fn layer_norm(&self, gamma: &Self, beta: &Self, eps: f32) -> Result<Self>;

    // ---- attention
    /// softmax(q·kᵀ/√d + bias)·v per head. q (N, Lq, H·d), k and v (N, Lk, H·d), heads = contiguous
    /// blocks of d channels; `bias` is additive and broadcasts as (N|1, Lq|1, Lk) over heads.
    fn attention(q: &Self, k: &Self, v: &Self, heads: usize, bias: Option<&Self>) -> Result<Self>;

    // ---- resampling (NCHW)
    fn avg_pool2x2(&self) -> Result<Self>;
    fn upsample_nearest2x(&self) -> Result<Self>;

    // ---- the scheduler step (`docs/math.md §11.3`) on the device, so a denoising step never leaves it.
    /// Returns (x_{t-1}, x̂0) of `x`: ε̂ or x̂0 (`model`), the learned-range channels v, x_t and the noise z.
    fn scheduler_step(x: StepOperands<'_, Self>, c: &StepCoefficients) -> Result<(Self, Self)>;

    fn elem_count(&self) -> usize {
        self.dims().iter().product()
    }

    fn dim(&self, i: usize) -> usize {
        self.dims()[i]
    }
}
