//! The CPU backend: the op table on candle tensors (native, and wasm32 with simd128 in the browser).
//! Ops candle does slowly or not at all (group norm with fused SiLU, the scheduler step) are written
//! here on plain slices.

use candle_core::{Device, Tensor as Candle};

use super::{Activation, Backend, Tensor};
use crate::error::{Error, Result};
use crate::gguf::TensorView;
use crate::schedulers::{NoiseScale, StepCoefficients};

mod elementwise;
#[cfg(test)]
mod sgemm_tests;

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
            return Err(Error::Model(format!("a tensor of shape {shape:?} needs {n} values, got {}", data.len())));
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
    fn with_data<R>(&self, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
        let t = self.0.contiguous()?;
        let (storage, layout) = t.storage_and_layout();
        match &*storage {
            candle_core::Storage::Cpu(cpu) => f(&cpu.as_slice::<f32>()?[layout.start_offset()..][..t.elem_count()]),
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

    // same shapes (residual connections) on the pool; broadcasts (small: embeddings, per-channel vectors) by candle
    fn add(&self, rhs: &Self) -> Result<Self> {
        if self.dims() == rhs.dims() {
            return elementwise::binary(self, rhs, |a, b| a + b);
        }
        self.map(|t| t.broadcast_add(&rhs.0))
    }

    fn sub(&self, rhs: &Self) -> Result<Self> {
        if self.dims() == rhs.dims() {
            return elementwise::binary(self, rhs, |a, b| a - b);
        }
        self.map(|t| t.broadcast_sub(&rhs.0))
    }

    fn mul(&self, rhs: &Self) -> Result<Self> {
        if self.dims() == rhs.dims() {
            return elementwise::binary(self, rhs, |a, b| a * b);
        }
        self.map(|t| t.broadcast_mul(&rhs.0))
    }

    fn affine(&self, mul: f32, add: f32) -> Result<Self> {
        elementwise::unary(self, |v| v * mul + add)
    }

    fn clamp(&self, min: f32, max: f32) -> Result<Self> {
        elementwise::unary(self, |v| {
            if v < min {
                min
            } else if v > max {
                max
            } else {
                v
            }
        }) // NaN stays NaN
    }

    fn activation(&self, act: Activation) -> Result<Self> {
        elementwise::unary(self, |v| elementwise::activate(act, v))
    }

    fn l2_normalize(&self) -> Result<Self> {
        self.map(|t| t.broadcast_div(&t.sqr()?.sum_keepdim(candle_core::D::Minus1)?.sqrt()?))
    }

    fn linear(&self, w: &CpuTensor, b: Option<&Self>) -> Result<Self> {
        let dims = self.dims().to_vec();
        let (k, out) = (dims[dims.len() - 1], w.dim(0));
        if w.dims() != [out, k] {
            return Err(Error::Model(format!("a linear layer with weight {:?} was given inputs {dims:?}", w.dims())));
        }
        let m = self.elem_count() / k.max(1);
        let bias = b.map(|b| bias_of(b, out)).transpose()?;
        let y = self.with_data(|x| w.with_data(|wd| linear_rows(x, wd, bias.as_deref(), m, k, out)))?;
        let mut shape = dims;
        *shape.last_mut().expect("linear input has at least one dim") = out;
        Self::from_host(y, &shape)
    }

    fn matmul(&self, rhs: &Self) -> Result<Self> {
        self.map(|t| t.broadcast_matmul(&rhs.0))
    }

    /// Implicit GEMM: a k×k kernel unrolls bands of output rows into (C·k·k, rows·W') columns
    /// (im2col, bounded to 16 MB however large the image), and (O, C·k·k) · columns fills those
    /// output columns of the NCHW result; a 1×1 kernel needs no unrolling.
    fn conv2d(&self, w: &CpuTensor, b: Option<&Self>, padding: usize) -> Result<Self> {
        let (n, c, h, wid) = self.0.dims4()?;
        let (o, ci, kh, kw) = w.0.dims4()?;
        if ci != c {
            return Err(Error::Model(format!("a conv over {ci} channels was given {c} channels")));
        }
        let (oh, ow) = ((h + 2 * padding + 1).saturating_sub(kh), (wid + 2 * padding + 1).saturating_sub(kw));
        let g = ConvGeometry { c, h, w: wid, kh, kw, pad: padding, ow };
        let ck = c * kh * kw;
        let bias = b.map(|b| bias_of(b, o)).transpose()?;
        let y = self.with_data(|x| {
            w.with_data(|kernel| {
                // the GEMMs add onto the bias
                let mut y = vec![0f32; n * o * oh * ow];
                if let Some(bias) = &bias {
                    for (row, v) in y.chunks_mut(oh * ow).enumerate() {
                        v.fill(bias[row % o]);
                    }
                }
                for (img, out) in y.chunks_mut(o * oh * ow).enumerate() {
                    let image = &x[img * c * h * wid..][..c * h * wid];
                    if kh == 1 && kw == 1 && padding == 0 {
                        conv_block(kernel, image, out, ck, 0, oh * ow, oh * ow)?;
                        continue;
                    }
                    let band = (IM2COL_MAX_ELEMS / (ck * ow).max(1)).clamp(1, oh.max(1));
                    for y0 in (0..oh).step_by(band) {
                        let y1 = (y0 + band).min(oh);
                        let cols = im2col(image, &g, y0, y1);
                        conv_block(kernel, &cols, out, ck, y0 * ow, (y1 - y0) * ow, oh * ow)?;
                    }
                }
                Ok(y)
            })
        })?;
        Self::from_host(y, &[n, o, oh, ow])
    }

    fn group_norm(
        &self,
        groups: usize,
        gamma: &Self,
        beta: &Self,
        eps: f32,
        modulation: Option<(&Self, &Self)>,
        act: Option<Activation>,
    ) -> Result<Self> {
        let dims = self.dims().to_vec();
        let (n, c) = (dims[0], dims[1]);
        if c % groups != 0 {
            return Err(Error::Model(format!("GroupNorm over {c} channels cannot use {groups} groups")));
        }
        let silu = match act {
            None => false,
            Some(Activation::Silu) => true,
            Some(other) => return Err(Error::Model(format!("GroupNorm cannot fuse {other:?}"))),
        };
        let modulation = match modulation {
            None => None,
            Some((scale, shift)) if scale.dims() == [n, c] && shift.dims() == [n, c] => {
                Some((scale.host()?, shift.host()?))
            }
            Some((scale, shift)) => {
                return Err(Error::Model(format!(
                    "GroupNorm of {:?} was given a modulation scale {:?} and shift {:?}; expected ({n}, {c}) each",
                    dims,
                    scale.dims(),
                    shift.dims()
                )))
            }
        };
        let hw: usize = dims[2..].iter().product();
        let (g, b) = (gamma.host()?, beta.host()?);
        let mut x = self.host()?;
        let per_group = (c / groups) * hw;
        par_chunks(&mut x, per_group, |chunk_idx, chunk| {
            let (mean, var) = moments(chunk);
            let inv = 1.0 / (var + eps as f64).sqrt();
            let group = chunk_idx % groups;
            for (ci, plane) in chunk.chunks_mut(hw).enumerate() {
                let ch = group * (c / groups) + ci;
                // (x − mean)·inv·γ + β, then ·scale + shift: one multiply-add per element
                let mut scale = (inv * g[ch] as f64) as f32;
                let mut shift = b[ch] - (mean * inv * g[ch] as f64) as f32;
                if let Some((ms, mt)) = &modulation {
                    let nc = (chunk_idx / groups) * c + ch;
                    (scale, shift) = (scale * ms[nc], shift * ms[nc] + mt[nc]);
                }
                if silu {
                    plane.iter_mut().for_each(|v| {
                        let y = *v * scale + shift;
                        *v = y / (1.0 + exp(-y));
                    });
                } else {
                    plane.iter_mut().for_each(|v| *v = *v * scale + shift);
                }
            }
        });
        debug_assert_eq!(x.len(), n * c * hw);
        Self::from_host(x, &dims)
    }

    fn layer_norm(&self, gamma: &Self, beta: &Self, eps: f32) -> Result<Self> {
        self.map(|t| candle_nn::ops::layer_norm(&t.contiguous()?, &gamma.0, &beta.0, eps))
    }

    fn attention(q: &Self, k: &Self, v: &Self, heads: usize, bias: Option<&Self>) -> Result<Self> {
        let (n, lq, c) = q.0.dims3()?;
        let lk = k.dim(1);
        if k.dims() != [n, lk, c] || v.dims() != [n, lk, c] || heads == 0 || c % heads != 0 {
            return Err(Error::Model(format!(
                "attention needs q (N, Lq, C), k and v (N, Lk, C) with C divisible by {heads} heads; got {:?}, {:?}, {:?}",
                q.dims(),
                k.dims(),
                v.dims()
            )));
        }
        let bias = match bias {
            Some(b) => {
                let (bn, bq, bk) = b.0.dims3()?;
                if bk != lk || !(bn == 1 || bn == n) || !(bq == 1 || bq == lq) {
                    return Err(Error::Model(format!(
                        "an attention bias {:?} does not broadcast to ({n}, {lq}, {lk})",
                        b.dims()
                    )));
                }
                Some((b.host()?, bn, bq))
            }
            None => None,
        };
        let (qd, kd, vd) = (q.host()?, k.host()?, v.host()?);
        let out = fused_attention(
            &qd,
            &kd,
            &vd,
            AttentionShape { n, lq, lk, c, heads },
            bias.as_ref().map(|(b, bn, bq)| (&b[..], *bn, *bq)),
        )?;
        Self::from_host(out, &[n, lq, c])
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

/// A stride-1 convolution's input and output sizes.
struct ConvGeometry {
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    pad: usize,
    ow: usize,
}

/// Most im2col floats held at once (16 MB): large images are unrolled in bands of output rows.
const IM2COL_MAX_ELEMS: usize = 4 << 20;

/// Unrolls output rows y0..y1 of one CHW image into (C·kh·kw, (y1−y0)·ow) columns, zero-padded.
fn im2col(x: &[f32], g: &ConvGeometry, y0: usize, y1: usize) -> Vec<f32> {
    let ConvGeometry { c, h, w, kh, kw, pad, ow, .. } = *g;
    let n_cols = (y1 - y0) * ow;
    let mut cols = vec![0f32; c * kh * kw * n_cols];
    par_chunks(&mut cols, n_cols, |row, out| {
        let (ch, ky, kx) = (row / (kh * kw), (row / kw) % kh, row % kw);
        let plane = &x[ch * h * w..][..h * w];
        // output column ox reads input column ox + kx − pad; keep the in-range span
        let x0 = pad.saturating_sub(kx);
        let x1 = (w + pad).saturating_sub(kx).min(ow);
        for oy in y0..y1 {
            let iy = oy + ky;
            if iy < pad || iy - pad >= h || x0 >= x1 {
                continue; // a padding row stays zero
            }
            let src = &plane[(iy - pad) * w..][..w];
            let dst = (oy - y0) * ow;
            out[dst + x0..dst + x1].copy_from_slice(&src[x0 + kx - pad..x1 + kx - pad]);
        }
    });
    cols
}

/// out[:, col0..col0+n] (O rows of length hw) += kernel (O, ck) · cols (ck, n), as one GEMM that the
/// kernel spreads over the threads.
fn conv_block(
    kernel: &[f32],
    cols: &[f32],
    out: &mut [f32],
    ck: usize,
    col0: usize,
    n: usize,
    hw: usize,
) -> Result<()> {
    let o = kernel.len() / ck.max(1);
    let gemm = Gemm {
        m: o,
        n,
        k: ck,
        a: kernel,
        a_rs: ck,
        a_cs: 1,
        b: cols,
        b_rs: n,
        b_cs: 1,
        c_rs: hw,
        scale: 1.0,
        accumulate: true,
        parallel: true,
    };
    sgemm(gemm, &mut out[col0..])
}

#[derive(Clone, Copy)]
struct AttentionShape {
    n: usize,
    lq: usize,
    lk: usize,
    c: usize,
    heads: usize,
}

/// Queries per block: a (64, Lk) score block stays in cache while softmax runs over it.
const QUERY_BLOCK: usize = 64;

/// softmax(q·kᵀ/√d + bias)·v without materialising all scores: per (batch, head), blocks of
/// queries go through two GEMMs with the row softmax between them (flash attention's tiling, with
/// the whole key range in one tile). Heads run in parallel where threads exist.
fn fused_attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    s: AttentionShape,
    bias: Option<(&[f32], usize, usize)>,
) -> Result<Vec<f32>> {
    let AttentionShape { n, lq, lk, c, heads } = s;
    let d = c / heads;
    let scale = (d as f32).powf(-0.5);
    let head = |nh: usize| -> Result<Vec<f32>> {
        let (b, h) = (nh / heads, nh % heads);
        let mut out = vec![0f32; lq * d];
        let mut scores = vec![0f32; QUERY_BLOCK * lk];
        for q0 in (0..lq).step_by(QUERY_BLOCK) {
            let bq = QUERY_BLOCK.min(lq - q0);
            let sc = &mut scores[..bq * lk];
            // S = scale · Q_blk · K_hᵀ        Q rows have stride C, Kᵀ is K read column-wise
            let qb = &q[(b * lq + q0) * c + h * d..];
            let kh = &k[b * lk * c + h * d..];
            sgemm(
                Gemm {
                    m: bq,
                    n: lk,
                    k: d,
                    a: qb,
                    a_rs: c,
                    a_cs: 1,
                    b: kh,
                    b_rs: 1,
                    b_cs: c,
                    c_rs: lk,
                    scale,
                    accumulate: false,
                    parallel: false,
                },
                sc,
            )?;
            for (i, row) in sc.chunks_mut(lk).enumerate() {
                if let Some((bias, bn, bqn)) = bias {
                    let bias_row =
                        &bias[((if bn == 1 { 0 } else { b }) * bqn + if bqn == 1 { 0 } else { q0 + i }) * lk..][..lk];
                    row.iter_mut().zip(bias_row).for_each(|(s, b)| *s += b);
                }
                softmax_in_place(row);
            }
            // O_blk = P · V_h
            let vh = &v[b * lk * c + h * d..];
            sgemm(
                Gemm {
                    m: bq,
                    n: d,
                    k: lk,
                    a: sc,
                    a_rs: lk,
                    a_cs: 1,
                    b: vh,
                    b_rs: c,
                    b_cs: 1,
                    c_rs: d,
                    scale: 1.0,
                    accumulate: false,
                    parallel: false,
                },
                &mut out[q0 * d..(q0 + bq) * d],
            )?;
        }
        Ok(out)
    };
    let per_head: Vec<Vec<f32>> = par_map(n * heads, head)?;
    let mut out = vec![0f32; n * lq * c];
    for (nh, o) in per_head.iter().enumerate() {
        let (b, h) = (nh / heads, nh % heads);
        for (i, row) in o.chunks(d).enumerate() {
            out[(b * lq + i) * c + h * d..][..d].copy_from_slice(row);
        }
    }
    Ok(out)
}

/// Y (m, out) = X (m, k) · Wᵀ + b, with W stored (out, k): one GEMM spread over the threads.
fn linear_rows(x: &[f32], w: &[f32], bias: Option<&[f32]>, m: usize, k: usize, out: usize) -> Result<Vec<f32>> {
    // the GEMM adds onto the bias
    let mut y = vec![0f32; m * out];
    if let Some(bias) = bias {
        y.chunks_mut(out).for_each(|r| r.copy_from_slice(bias));
    }
    let (a, b) = (x, w);
    let accumulate = bias.is_some();
    let gemm = Gemm {
        m,
        n: out,
        k,
        a,
        a_rs: k,
        a_cs: 1,
        b,
        b_rs: 1,
        b_cs: k,
        c_rs: out,
        scale: 1.0,
        accumulate,
        parallel: true,
    };
    sgemm(gemm, &mut y)?;
    Ok(y)
}

/// Mean and biased variance of `x` (the variance of the centred values, as torch), summed in f64 over
/// four lanes so the loops vectorize.
fn moments(x: &[f32]) -> (f64, f64) {
    fn lane_sum(x: &[f32], f: impl Fn(f32) -> f64) -> f64 {
        let mut lanes = [0f64; 4];
        let chunks = x.chunks_exact(4);
        let tail: f64 = chunks.remainder().iter().map(|&v| f(v)).sum();
        for c in chunks {
            lanes.iter_mut().zip(c).for_each(|(l, &v)| *l += f(v));
        }
        lanes.iter().sum::<f64>() + tail
    }
    let n = x.len().max(1) as f64;
    let mean = lane_sum(x, |v| v as f64) / n;
    let var = lane_sum(x, |v| (v as f64 - mean) * (v as f64 - mean)) / n;
    (mean, var)
}

/// softmax(row) in place, max-subtracted. Eight running maxima and sums, so the loops vectorize (a
/// single running sum or `f32::max` keeps them scalar; in wasm `f32::max` is a libm call).
fn softmax_in_place(row: &mut [f32]) {
    const LANES: usize = 8;
    let split = row.len() - row.len() % LANES;
    let mut lanes = [f32::NEG_INFINITY; LANES];
    for chunk in row[..split].chunks_exact(LANES) {
        lanes.iter_mut().zip(chunk).for_each(|(m, &s)| *m = if s > *m { s } else { *m });
    }
    let max = row[split..].iter().chain(&lanes).fold(f32::NEG_INFINITY, |m, &s| if s > m { s } else { m });
    let mut sums = [0f32; LANES];
    for chunk in row[..split].chunks_exact_mut(LANES) {
        sums.iter_mut().zip(chunk).for_each(|(sum, s)| {
            *s = exp(*s - max);
            *sum += *s;
        });
    }
    let tail: f32 = row[split..]
        .iter_mut()
        .map(|s| {
            *s = exp(*s - max);
            *s
        })
        .sum();
    let inv = 1.0 / (sums.iter().sum::<f32>() + tail);
    row.iter_mut().for_each(|s| *s *= inv);
}

/// A layer's bias as host values, checked to hold one per output.
fn bias_of(b: &CpuTensor, outputs: usize) -> Result<Vec<f32>> {
    if b.dims() != [outputs] {
        return Err(Error::Model(format!("a layer of {outputs} outputs was given a bias {:?}", b.dims())));
    }
    b.host()
}

/// Whether this build has threads: natively always, in wasm32 only the shared-memory module (feature
/// `threads`, whose rayon pool runs on Web Workers); the single-threaded wasm module has none.
const THREADED: bool = cfg!(any(not(target_arch = "wasm32"), feature = "threads"));

/// Maps 0..n through `f`, in parallel where threads exist.
fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> Result<T> + Sync + Send) -> Result<Vec<T>> {
    use rayon::prelude::*;
    if THREADED {
        (0..n).into_par_iter().map(f).collect()
    } else {
        (0..n).map(f).collect()
    }
}

/// Runs `f(index, chunk)` over `x` in chunks of `size`, in parallel where threads exist.
fn par_chunks(x: &mut [f32], size: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    use rayon::prelude::*;
    if THREADED && x.len() > size {
        x.par_chunks_mut(size.max(1)).enumerate().for_each(|(i, c)| f(i, c));
    } else {
        x.chunks_mut(size.max(1)).enumerate().for_each(|(i, c)| f(i, c));
    }
}

/// C (m×n, row stride c_rs) = scale · A (m×k) · B (k×n), or C += … when `accumulate` (C holds a bias),
/// operands given by slices and strides.
struct Gemm<'a> {
    m: usize,
    n: usize,
    k: usize,
    a: &'a [f32],
    a_rs: usize,
    a_cs: usize,
    b: &'a [f32],
    b_rs: usize,
    b_cs: usize,
    c_rs: usize,
    scale: f32,
    accumulate: bool,
    /// Let the kernel split the product across threads (one big product); false inside tasks that
    /// already run in parallel.
    parallel: bool,
}

/// Multiply-adds (m·n·k) below which a product is one kernel call on the calling thread: waking the pool costs
/// more than it saves (tens of µs in a browser, where a worker sleeps in `Atomics.wait`).
const PARALLEL_MIN_WORK: usize = 1 << 19;
/// Columns (or rows) per part are a multiple of this, so each part keeps whole microkernel tiles.
const PART_ALIGN: usize = 16;

/// A bounds-checked GEMM. With `parallel` (and threads, and enough work) the product is cut into one part per
/// thread along its longer side of C — columns when n ≥ m, else rows — and each part is one single-threaded call
/// of the `gemm` crate's kernel: one fork-join per product (the crate's own threading joins once per k-block,
/// which in a browser cost more than it gained). Parts of fixed size, the same on any number of threads, were
/// measured too: 8% slower on one thread natively, 2.5× slower in the single-threaded wasm module on the `full`
/// UNet step. The price of one part per thread: the crate's cache blocking depends on the shape it is given, so
/// a different number of threads sums some products in different k-blocks (the threaded and single-threaded
/// wasm modules' images differ by a few 1/255 at a few pixels; `tests/browser/threads.test.mjs` bounds it).
fn sgemm(g: Gemm<'_>, c: &mut [f32]) -> Result<()> {
    let last = |rows: usize, rs: usize, cols: usize, cs: usize| (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs;
    if g.m == 0 || g.n == 0 || g.k == 0 {
        return Ok(());
    }
    if last(g.m, g.a_rs, g.k, g.a_cs) >= g.a.len()
        || last(g.k, g.b_rs, g.n, g.b_cs) >= g.b.len()
        || last(g.m, g.c_rs, g.n, 1) >= c.len()
    {
        return Err(Error::Model("an internal matrix product was given operands that are too small".into()));
    }
    let threads = if g.parallel && THREADED { rayon::current_num_threads() } else { 1 };
    let (long, along_n) = if g.n >= g.m { (g.n, true) } else { (g.m, false) };
    let parts = threads.min(long / PART_ALIGN).max(1);
    if parts == 1 || g.m * g.n * g.k < PARALLEL_MIN_WORK {
        // SAFETY: checked above: every element of A, B and C the kernel touches is inside its slice.
        unsafe { gemm_part(&g, c.as_mut_ptr(), 0..g.m, 0..g.n) };
        return Ok(());
    }
    let step = long.div_ceil(parts).next_multiple_of(PART_ALIGN);
    let out = SharedOut(c.as_mut_ptr());
    use rayon::prelude::*;
    (0..long.div_ceil(step)).into_par_iter().for_each(|p| {
        let range = p * step..((p + 1) * step).min(long);
        let (rows, cols) = if along_n { (0..g.m, range) } else { (range, 0..g.n) };
        // SAFETY: as above for the whole product; the parts write disjoint blocks of C (disjoint column ranges, or
        // disjoint row ranges), so no two threads touch one element, and `c` stays borrowed until all have joined.
        unsafe { gemm_part(&g, out.get(), rows, cols) };
    });
    Ok(())
}

/// C's base pointer, handed to the threads that write disjoint blocks of it.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: only `sgemm` creates it, for parts that write disjoint elements while it holds the `&mut` borrow.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}
impl SharedOut {
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// The block C[rows, cols] of `g`'s product, by one single-threaded call of the `gemm` crate.
///
/// # Safety
/// `g`'s operands must hold every element the whole m×n×k product reads, `c` must point at C's first element
/// with room for the whole product, and no other thread may touch C[rows, cols] meanwhile.
unsafe fn gemm_part(g: &Gemm<'_>, c: *mut f32, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>) {
    let (i0, j0) = (rows.start, cols.start);
    gemm::gemm(
        rows.len(),
        cols.len(),
        g.k,
        c.add(i0 * g.c_rs + j0),
        1,
        g.c_rs as isize,
        g.accumulate,
        g.a.as_ptr().add(i0 * g.a_rs),
        g.a_cs as isize,
        g.a_rs as isize,
        g.b.as_ptr().add(j0 * g.b_cs),
        g.b_cs as isize,
        g.b_rs as isize,
        if g.accumulate { 1.0 } else { 0.0 },
        g.scale,
        false,
        false,
        false,
        gemm::Parallelism::None,
    );
}

/// e^x in f32 without branches, so loops over it vectorize (Cephes' expf: range reduction by ln 2 in
/// two parts, a degree-5 polynomial, the exponent put in by bit arithmetic; within 2 ulp of the
/// correctly rounded value). Inputs above 88 give e^88; −∞ and anything below −87.3
/// give 0, the way softmax's masked scores need.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let underflow = x < -87.336_55;
    let x = x.clamp(-87.336_55, 88.0);
    // round(x·log2 e) to nearest by adding 1.5·2^23 (no libm call, so it vectorizes)
    const SHIFTER: f32 = 12_582_912.0;
    let t = x * LOG2E + SHIFTER;
    let n = t - SHIFTER;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5e-1;
    let y = p * r * r + r + 1.0;
    let scaled = f32::from_bits(((t.to_bits() as i32 - SHIFTER.to_bits() as i32 + 127) << 23) as u32) * y;
    if underflow {
        0.0
    } else {
        scaled
    }
}
