//! The CPU backend: the op table on candle tensors (native, and wasm32 with simd128 in the browser).
//! Ops candle does slowly or not at all (group norm with fused SiLU, the scheduler step) are written
//! here on plain slices.

use candle_core::{Device, Tensor as Candle};

use super::{Activation, Backend, Tensor};
use crate::error::{Error, Result};
use crate::gguf::TensorView;
use crate::schedulers::{NoiseScale, StepCoefficients};

#[derive(Debug, Clone, Default)]
pub struct Cpu;

/// A candle tensor on the CPU, f32, contiguous.
#[derive(Debug, Clone)]
pub struct CpuTensor(pub Candle);

impl Backend for Cpu {
    type Tensor = CpuTensor;

    fn name(&self) -> &'static str {
        "cpu"
    }

    fn tensor(&self, data: Vec<f32>, shape: &[usize]) -> Result<CpuTensor> {
        let n: usize = shape.iter().product();
        if data.len() != n {
            return Err(Error::Model(format!(
                "a tensor of shape {shape:?} needs {n} values, got {}",
                data.len()
            )));
        }
        Ok(CpuTensor(Candle::from_vec(data, shape, &Device::Cpu)?))
    }

    fn weight(&self, view: &TensorView<'_>) -> Result<CpuTensor> {
        self.tensor(view.to_f32()?, &view.info.shape)
    }

    fn matrix(&self, view: &TensorView<'_>, shape: &[usize]) -> Result<CpuTensor> {
        self.tensor(view.to_f32()?, shape)
    }
}

impl CpuTensor {
    fn host(&self) -> Result<Vec<f32>> {
        Ok(self.0.flatten_all()?.to_vec1::<f32>()?)
    }

    /// Runs `f` on the tensor's data without copying (it is made contiguous first if needed).
    fn with_data<R>(&self, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
        let t = self.0.contiguous()?;
        let (storage, layout) = t.storage_and_layout();
        match &*storage {
            candle_core::Storage::Cpu(cpu) => Ok(f(&cpu.as_slice::<f32>()?[layout.start_offset()..][..t.elem_count()])),
            _ => Err(Error::Model("the CPU backend was handed a tensor that is not in CPU memory".into())),
        }
    }

    fn from_host(data: Vec<f32>, shape: &[usize]) -> Result<Self> {
        Ok(CpuTensor(Candle::from_vec(data, shape, &Device::Cpu)?))
    }

    fn map(&self, f: impl FnOnce(&Candle) -> candle_core::Result<Candle>) -> Result<Self> {
        Ok(CpuTensor(f(&self.0)?))
    }
}

impl Tensor for CpuTensor {
    type Matrix = CpuTensor;

    fn dims(&self) -> &[usize] {
        self.0.dims()
    }

    async fn to_vec(&self) -> Result<Vec<f32>> {
        self.host()
    }

    fn reshape(&self, shape: &[usize]) -> Result<Self> {
        self.map(|t| t.reshape(shape))
    }

    fn transpose(&self, d0: usize, d1: usize) -> Result<Self> {
        self.map(|t| t.transpose(d0, d1)?.contiguous())
    }

    fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Self> {
        self.map(|t| t.narrow(dim, start, len)?.contiguous())
    }

    fn cat(parts: &[&Self], dim: usize) -> Result<Self> {
        let ts: Vec<&Candle> = parts.iter().map(|p| &p.0).collect();
        Ok(CpuTensor(Candle::cat(&ts, dim)?))
    }

    fn gather_rows(&self, ids: &[u32]) -> Result<Self> {
        let rows = self.dim(0);
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= rows) {
            return Err(Error::Model(format!(
                "token id {bad} is outside the embedding table of {rows} rows: the tokenizer does not match the text encoder"
            )));
        }
        let idx = Candle::from_slice(ids, ids.len(), &Device::Cpu)?;
        self.map(|t| t.index_select(&idx, 0))
    }

    fn add(&self, rhs: &Self) -> Result<Self> {
        self.map(|t| t.broadcast_add(&rhs.0))
    }

    fn sub(&self, rhs: &Self) -> Result<Self> {
        self.map(|t| t.broadcast_sub(&rhs.0))
    }

    fn mul(&self, rhs: &Self) -> Result<Self> {
        self.map(|t| t.broadcast_mul(&rhs.0))
    }

    fn affine(&self, mul: f32, add: f32) -> Result<Self> {
        self.map(|t| t.affine(mul as f64, add as f64))
    }

    fn clamp(&self, min: f32, max: f32) -> Result<Self> {
        self.map(|t| t.clamp(min, max))
    }

    fn activation(&self, act: Activation) -> Result<Self> {
        self.map(|t| match act {
            Activation::Silu => t.silu(),
            Activation::Gelu => t.gelu_erf(),
            Activation::QuickGelu => t.mul(&candle_nn::ops::sigmoid(&(t * 1.702)?)?),
        })
    }

    fn l2_normalize(&self) -> Result<Self> {
        self.map(|t| t.broadcast_div(&t.sqr()?.sum_keepdim(candle_core::D::Minus1)?.sqrt()?))
    }

    fn linear(&self, w: &CpuTensor, b: Option<&Self>) -> Result<Self> {
        let dims = self.dims().to_vec();
        let (k, out) = (dims[dims.len() - 1], w.dim(0));
        let m = self.elem_count() / k.max(1);
        let mut y = self.0.reshape((m, k))?.matmul(&w.0.t()?)?;
        if let Some(b) = b {
            y = y.broadcast_add(&b.0)?;
        }
        let mut shape = dims;
        *shape.last_mut().expect("linear input has at least one dim") = out;
        Ok(CpuTensor(y.reshape(shape)?))
    }

    fn matmul(&self, rhs: &Self) -> Result<Self> {
        self.map(|t| t.broadcast_matmul(&rhs.0))
    }

    /// Implicit GEMM: a k×k kernel unrolls the input into (C·k·k, H'·W') columns (im2col), then one
    /// (O, C·k·k) · (C·k·k, H'·W') matmul per image gives NCHW directly; 1×1 is the matmul alone.
    fn conv2d(&self, w: &CpuTensor, b: Option<&Self>, padding: usize) -> Result<Self> {
        let (n, c, h, wd) = self.0.dims4()?;
        let (o, ci, kh, kw) = w.0.dims4()?;
        if ci != c {
            return Err(Error::Model(format!("a conv over {ci} channels was given {c} channels")));
        }
        let (oh, ow) = ((h + 2 * padding + 1).saturating_sub(kh), (wd + 2 * padding + 1).saturating_sub(kw));
        let cols = if kh == 1 && kw == 1 && padding == 0 {
            self.0.reshape((n, c, h * wd))?
        } else {
            let data = self.with_data(|x| im2col(x, n, c, h, wd, kh, kw, padding, oh, ow))?;
            Candle::from_vec(data, (n, c * kh * kw, oh * ow), &Device::Cpu)?
        };
        let mut y = w.0.reshape((o, c * kh * kw))?.broadcast_matmul(&cols)?; // (N, O, H'·W')
        if let Some(b) = b {
            y = y.broadcast_add(&b.0.reshape((1, o, 1))?)?;
        }
        Ok(CpuTensor(y.reshape((n, o, oh, ow))?))
    }

    fn group_norm(&self, groups: usize, gamma: &Self, beta: &Self, eps: f32, act: Option<Activation>) -> Result<Self> {
        let dims = self.dims().to_vec();
        let (n, c) = (dims[0], dims[1]);
        if c % groups != 0 {
            return Err(Error::Model(format!("GroupNorm over {c} channels cannot use {groups} groups")));
        }
        let hw: usize = dims[2..].iter().product();
        let (g, b) = (gamma.host()?, beta.host()?);
        let mut x = self.host()?;
        let per_group = (c / groups) * hw;
        for (chunk_idx, chunk) in x.chunks_mut(per_group).enumerate() {
            // mean and biased variance in f64 over (C/G × H × W)
            let mean = chunk.iter().map(|&v| v as f64).sum::<f64>() / per_group as f64;
            let var = chunk.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / per_group as f64;
            let inv = 1.0 / (var + eps as f64).sqrt();
            let group = chunk_idx % groups;
            for (ci, plane) in chunk.chunks_mut(hw).enumerate() {
                let ch = group * (c / groups) + ci;
                let scale = (inv * g[ch] as f64) as f32;
                let shift = b[ch] - (mean * inv * g[ch] as f64) as f32;
                for v in plane.iter_mut() {
                    let y = *v * scale + shift;
                    *v = match act {
                        None => y,
                        Some(Activation::Silu) => y / (1.0 + (-y).exp()),
                        Some(other) => return Err(Error::Model(format!("GroupNorm cannot fuse {other:?}"))),
                    };
                }
            }
        }
        debug_assert_eq!(x.len(), n * c * hw);
        Self::from_host(x, &dims)
    }

    fn layer_norm(&self, gamma: &Self, beta: &Self, eps: f32) -> Result<Self> {
        self.map(|t| candle_nn::ops::layer_norm(&t.contiguous()?, &gamma.0, &beta.0, eps))
    }

    fn attention(q: &Self, k: &Self, v: &Self, heads: usize, bias: Option<&Self>) -> Result<Self> {
        let (n, lq, c) = q.0.dims3()?;
        let lk = k.dim(1);
        let d = c / heads;
        // (N, L, H·d) → (N, H, L, d)
        let split = |t: &Candle, l: usize| t.reshape((n, l, heads, d))?.transpose(1, 2)?.contiguous();
        let (qh, kh, vh) = (split(&q.0, lq)?, split(&k.0, lk)?, split(&v.0, lk)?);
        let mut scores = (qh.matmul(&kh.t()?)? * (d as f64).powf(-0.5))?; // (N, H, Lq, Lk)
        if let Some(bias) = bias {
            scores = scores.broadcast_add(&bias.0.unsqueeze(1)?)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs.matmul(&vh)?.transpose(1, 2)?.reshape((n, lq, c))?; // (N, Lq, H·d)
        Ok(CpuTensor(out))
    }

    fn avg_pool2x2(&self) -> Result<Self> {
        self.map(|t| t.avg_pool2d(2))
    }

    fn upsample_nearest2x(&self) -> Result<Self> {
        let (_, _, h, w) = self.0.dims4()?;
        self.map(|t| t.upsample_nearest2d(2 * h, 2 * w))
    }

    fn scheduler_step(
        model: &Self,
        log_variance_frac: Option<&Self>,
        sample: &Self,
        noise: Option<&Self>,
        c: &StepCoefficients,
    ) -> Result<(Self, Self)> {
        let (m, s) = (model.host()?, sample.host()?);
        let v = log_variance_frac.map(|t| t.host()).transpose()?;
        let z = noise.map(|t| t.host()).transpose()?;
        let mut x0 = vec![0f32; s.len()];
        let mut prev = vec![0f32; s.len()];
        for i in 0..s.len() {
            let mut x = (c.x0_sample * s[i] + c.x0_model * m[i]) / c.x0_denominator;
            if let Some(r) = c.clip {
                x = x.clamp(-r, r);
            }
            x0[i] = x;
            let mut mean = c.mean_x0 * x + c.mean_sample * s[i];
            if let (Some(scale), Some(z)) = (&c.noise, &z) {
                let sigma = match scale {
                    NoiseScale::Fixed { sigma } => *sigma,
                    NoiseScale::LearnedRange { log_min, log_max } => {
                        let v = v.as_ref().ok_or_else(|| {
                            Error::Model("a learned-range scheduler needs the model's variance channels".into())
                        })?;
                        let frac = (v[i] + 1.0) / 2.0;
                        (0.5 * (frac * log_max + (1.0 - frac) * log_min)).exp()
                    }
                };
                mean += sigma * z[i];
            }
            prev[i] = mean;
        }
        let dims = sample.dims();
        Ok((Self::from_host(prev, dims)?, Self::from_host(x0, dims)?))
    }
}

/// Unrolls NCHW `x` into (N, C·kh·kw, oh·ow) columns for a stride-1 convolution with zero padding.
#[allow(clippy::too_many_arguments)]
fn im2col(x: &[f32], n: usize, c: usize, h: usize, w: usize, kh: usize, kw: usize, pad: usize, oh: usize, ow: usize) -> Vec<f32> {
    let mut cols = vec![0f32; n * c * kh * kw * oh * ow];
    for (row, out) in cols.chunks_mut(oh * ow).enumerate() {
        let (img, kx) = (row / (c * kh * kw), row % kw);
        let (ch, ky) = ((row / (kh * kw)) % c, (row / kw) % kh);
        let plane = &x[(img * c + ch) * h * w..][..h * w];
        // output column ox reads input column ox + kx − pad; keep the in-range span
        let x0 = pad.saturating_sub(kx);
        let x1 = (w + pad).saturating_sub(kx).min(ow);
        for oy in 0..oh {
            let iy = oy + ky;
            if iy < pad || iy - pad >= h || x0 >= x1 {
                continue; // a padding row stays zero
            }
            let src = &plane[(iy - pad) * w..][..w];
            out[oy * ow + x0..oy * ow + x1].copy_from_slice(&src[x0 + kx - pad..x1 + kx - pad]);
        }
    }
    cols
}
