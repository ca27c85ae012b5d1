//! Layers shared by every model: weight loading by state-dict key, Linear, Conv2d, norms, and the
//! sinusoidal timestep embedding. Each layer holds its weights on the backend and calls the op table.

pub mod resize;

use crate::backend::{Activation, Affine, Backend, Tensor};
use crate::error::{Error, Result};
use crate::gguf::GgufFile;

type Matrix<B> = <<B as Backend>::Tensor as Tensor>::Matrix;

/// Weights of one component, addressed by diffusers/transformers state-dict keys (candle's
/// `VarBuilder` idiom: `w.pp("down_blocks").pp(0).tensor("conv1.bias", &[c])`).
pub struct Weights<'a, B: Backend> {
    file: &'a GgufFile,
    be: &'a B,
    component: &'a str,
    prefix: String,
}

impl<B: Backend> Clone for Weights<'_, B> {
    fn clone(&self) -> Self {
        Weights { file: self.file, be: self.be, component: self.component, prefix: self.prefix.clone() }
    }
}

impl<'a, B: Backend> Weights<'a, B> {
    pub fn new(file: &'a GgufFile, be: &'a B, component: &'a str) -> Self {
        Weights { file, be, component, prefix: String::new() }
    }

    pub fn backend(&self) -> &'a B {
        self.be
    }

    /// The same weights under `prefix.name`.
    pub fn pp(&self, name: impl std::fmt::Display) -> Self {
        let prefix = if self.prefix.is_empty() { name.to_string() } else { format!("{}.{name}", self.prefix) };
        Weights { prefix, ..self.clone() }
    }

    fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.file.tensor(&self.key(name)).is_some()
    }

    /// The stored tensor; `flat_ok` accepts a kernel stored as the (out, in·kh·kw) matrix.
    fn view(&self, name: &str, shape: &[usize], flat_ok: bool) -> Result<crate::gguf::TensorView<'a>> {
        let key = self.key(name);
        let view = self.file.tensor(&key).ok_or_else(|| {
            Error::Weights(format!(
                "{}: the weight `{key}` (shape {shape:?}) is missing; the file does not match its config",
                self.component
            ))
        })?;
        let flat = [shape[0], shape[1..].iter().product()];
        if view.info.shape != shape && !(flat_ok && shape.len() > 2 && view.info.shape == flat) {
            return Err(Error::Weights(format!(
                "{}: `{key}` has shape {:?}, the config needs {shape:?}",
                self.component, view.info.shape
            )));
        }
        Ok(view)
    }

    /// A dense tensor (norm, bias, embedding table).
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<B::Tensor> {
        self.be.weight(&self.view(name, shape, false)?)
    }

    /// A conv kernel (out, in, kh, kw) as the (out, in·kh·kw) matrix of a Linear over flattened patches.
    pub fn kernel_matrix(&self, name: &str, shape: &[usize]) -> Result<Matrix<B>> {
        let flat = [shape[0], shape[1..].iter().product()];
        self.be.matrix(&self.view(name, shape, true)?, &flat)
    }

    /// A weight of `linear` / `conv2d`, possibly kept quantized by the backend.
    pub fn matrix(&self, name: &str, shape: &[usize]) -> Result<Matrix<B>> {
        self.be.matrix(&self.view(name, shape, true)?, shape)
    }
}

/// `torch.nn.Linear`: y = x·Wᵀ + b, W stored (out, in).
pub struct Linear<B: Backend> {
    weight: Matrix<B>,
    bias: Option<B::Tensor>,
}

impl<B: Backend> Linear<B> {
    pub fn new(w: &Weights<B>, in_dim: usize, out_dim: usize) -> Result<Self> {
        Ok(Linear { weight: w.matrix("weight", &[out_dim, in_dim])?, bias: Some(w.tensor("bias", &[out_dim])?) })
    }

    pub fn no_bias(w: &Weights<B>, in_dim: usize, out_dim: usize) -> Result<Self> {
        Ok(Linear { weight: w.matrix("weight", &[out_dim, in_dim])?, bias: None })
    }

    /// A bias-free convolution whose stride equals its kernel, applied to flattened patches.
    pub fn from_kernel(w: &Weights<B>, shape: &[usize]) -> Result<Self> {
        Ok(Linear { weight: w.kernel_matrix("weight", shape)?, bias: None })
    }

    pub fn forward(&self, x: &B::Tensor) -> Result<B::Tensor> {
        x.linear(&self.weight, self.bias.as_ref())
    }
}

/// `torch.nn.Conv2d`, stride 1, "same" padding for odd kernels.
pub struct Conv2d<B: Backend> {
    weight: Matrix<B>,
    bias: B::Tensor,
    padding: usize,
}

impl<B: Backend> Conv2d<B> {
    pub fn new(w: &Weights<B>, in_ch: usize, out_ch: usize, kernel: usize) -> Result<Self> {
        Ok(Conv2d {
            weight: w.matrix("weight", &[out_ch, in_ch, kernel, kernel])?,
            bias: w.tensor("bias", &[out_ch])?,
            padding: kernel / 2,
        })
    }

    pub fn forward(&self, x: &B::Tensor) -> Result<B::Tensor> {
        x.conv2d(&self.weight, Some(&self.bias), self.padding)
    }
}

/// `torch.nn.GroupNorm` (affine).
pub struct GroupNorm<B: Backend> {
    gamma: B::Tensor,
    beta: B::Tensor,
    groups: usize,
    eps: f32,
}

impl<B: Backend> GroupNorm<B> {
    pub fn new(w: &Weights<B>, groups: usize, channels: usize, eps: f64) -> Result<Self> {
        if groups == 0 || !channels.is_multiple_of(groups) {
            return Err(Error::Model(format!(
                "{}: GroupNorm of {channels} channels cannot use {groups} groups",
                w.component
            )));
        }
        Ok(GroupNorm {
            gamma: w.tensor("weight", &[channels])?,
            beta: w.tensor("bias", &[channels])?,
            groups,
            eps: eps as f32,
        })
    }

    fn affine<'a>(&'a self, modulation: Option<(&'a B::Tensor, &'a B::Tensor)>) -> Affine<'a, B::Tensor> {
        Affine { gamma: &self.gamma, beta: &self.beta, eps: self.eps, modulation }
    }

    pub fn forward(&self, x: &B::Tensor) -> Result<B::Tensor> {
        x.group_norm(self.groups, self.affine(None), None)
    }

    /// GroupNorm followed by an activation, in one pass.
    pub fn forward_act(&self, x: &B::Tensor, act: Activation) -> Result<B::Tensor> {
        x.group_norm(self.groups, self.affine(None), Some(act))
    }

    /// act(GroupNorm(x)·scale + shift) with `modulation` = (scale, shift), each (N, C), in one pass.
    pub fn forward_modulated(
        &self,
        x: &B::Tensor,
        modulation: (&B::Tensor, &B::Tensor),
        act: Activation,
    ) -> Result<B::Tensor> {
        x.group_norm(self.groups, self.affine(Some(modulation)), Some(act))
    }
}

/// `torch.nn.LayerNorm` over the last dim (affine).
pub struct LayerNorm<B: Backend> {
    gamma: B::Tensor,
    beta: B::Tensor,
    eps: f32,
}

impl<B: Backend> LayerNorm<B> {
    pub fn new(w: &Weights<B>, dim: usize, eps: f64) -> Result<Self> {
        Ok(LayerNorm { gamma: w.tensor("weight", &[dim])?, beta: w.tensor("bias", &[dim])?, eps: eps as f32 })
    }

    pub fn forward(&self, x: &B::Tensor) -> Result<B::Tensor> {
        x.layer_norm(&self.gamma, &self.beta, self.eps)
    }
}

/// Multi-head self-attention's four projections, under the keys a checkpoint gives them (`[q, k, v, out]`, e.g.
/// CLIP's `q_proj … out_proj`, BERT's `self.query … output.dense`): x (N, L, D) → out(attention(q, k, v)) (N, L, D).
pub struct SelfAttention<B: Backend> {
    q: Linear<B>,
    k: Linear<B>,
    v: Linear<B>,
    out: Linear<B>,
    heads: usize,
}

impl<B: Backend> SelfAttention<B> {
    pub fn new(w: &Weights<B>, keys: [&str; 4], dim: usize, heads: usize) -> Result<Self> {
        let proj = |key: &str| Linear::new(&w.pp(key), dim, dim);
        Ok(SelfAttention { q: proj(keys[0])?, k: proj(keys[1])?, v: proj(keys[2])?, out: proj(keys[3])?, heads })
    }

    /// x (N, L, D), an additive key bias broadcasting to (N, L, L) → (N, L, D)
    pub fn forward(&self, x: &B::Tensor, bias: Option<&B::Tensor>) -> Result<B::Tensor> {
        let (q, k, v) = (self.q.forward(x)?, self.k.forward(x)?, self.v.forward(x)?);
        self.out.forward(&B::Tensor::attention(&q, &k, &v, self.heads, bias)?)
    }
}

/// Token embeddings plus absolute position embeddings of N rows of L ids (flattened): (N, L, D). A text encoder's
/// position table (P, D) bounds L; longer inputs are refused with a sentence.
pub fn embed_tokens<T: Tensor>(token_table: &T, position_table: &T, ids: &[u32], n: usize) -> Result<T> {
    let (positions, d) = (position_table.dim(0), token_table.dim(1));
    let l = ids.len() / n.max(1);
    if l > positions {
        return Err(Error::Settings(format!("the text encoder takes at most {positions} tokens, got {l}")));
    }
    token_table.gather_rows(ids)?.reshape(&[n, l, d])?.add(&position_table.narrow(0, 0, l)?)
}

/// diffusers `get_timestep_embedding` (docs/math.md §9.1) for one integer timestep, computed in f32 as torch
/// does: freq_k = exp(−ln(10000)·k / (half − shift)), emb = [sin | cos] (or [cos | sin] flipped).
pub fn timestep_embedding(t: usize, dim: usize, flip_sin_to_cos: bool, shift: f64) -> Vec<f32> {
    let half = dim / 2;
    let ln = -(10000f64.ln()) as f32;
    let args: Vec<f32> = (0..half).map(|k| t as f32 * ((ln * k as f32) / (half as f32 - shift as f32)).exp()).collect();
    let (sin, cos): (Vec<f32>, Vec<f32>) = args.iter().map(|a| (a.sin(), a.cos())).unzip();
    let mut emb = if flip_sin_to_cos { [cos, sin].concat() } else { [sin, cos].concat() };
    emb.resize(dim, 0.0); // odd dim → zero-pad one
    emb
}

/// diffusers `TimestepEmbedding`: linear_1 → act → linear_2.
pub struct TimestepEmbedding<B: Backend> {
    linear_1: Linear<B>,
    linear_2: Linear<B>,
    act: Activation,
}

impl<B: Backend> TimestepEmbedding<B> {
    pub fn new(w: &Weights<B>, in_dim: usize, dim: usize, act: Activation) -> Result<Self> {
        Ok(TimestepEmbedding {
            linear_1: Linear::new(&w.pp("linear_1"), in_dim, dim)?,
            linear_2: Linear::new(&w.pp("linear_2"), dim, dim)?,
            act,
        })
    }

    pub fn forward(&self, x: &B::Tensor) -> Result<B::Tensor> {
        self.linear_2.forward(&self.linear_1.forward(x)?.activation(self.act)?)
    }
}

/// Additive attention bias from a boolean key mask: 0 where `mask` is true, −10000 elsewhere
/// (diffusers' convention, docs/math.md §0). Returns (N, 1, L).
pub fn mask_bias<B: Backend>(be: &B, mask: &[bool], n: usize) -> Result<B::Tensor> {
    let bias = mask.iter().map(|&m| if m { 0.0 } else { -10000.0 }).collect();
    be.tensor(bias, &[n, 1, mask.len() / n.max(1)])
}
