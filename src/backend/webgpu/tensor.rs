//! `GpuTensor`: the op table as kernel launches. Each op checks shapes on the host, fills its kernel's
//! uniform parameters (the `#[repr(C)]` structs below mirror the WGSL `Params` structs) and records one
//! dispatch into a buffer from the pool; nothing waits for the GPU until `to_vec`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use super::context::{Context, Kernel, Shader};
use super::MAX_BINDING_BYTES;
use crate::backend::{Activation, Tensor};
use crate::error::{Error, Result};
use crate::gguf::GgmlType;
use crate::schedulers::{NoiseScale, StepCoefficients};

/// Highest rank the strided kernels index (elementwise broadcasting, copies).
const MAX_RANK: usize = 8;
/// Most attention scores held at once (32 MiB): longer sequences go through attention in blocks of queries.
const MAX_SCORES: usize = 8 << 20;

/// A GPU buffer that goes back to the pool when the last tensor viewing it is dropped.
struct Storage {
    buffer: Option<wgpu::Buffer>,
    ctx: Arc<Context>,
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            self.ctx.recycle(b);
        }
    }
}

/// An f32 tensor in a GPU buffer, contiguous, row-major.
#[derive(Clone)]
pub struct GpuTensor {
    storage: Arc<Storage>,
    dims: Vec<usize>,
}

/// A `linear` / `conv2d` weight in its stored type; `shape` is the logical shape (out, in[, kh, kw]).
pub struct GpuMatrix {
    pub(super) buffer: wgpu::Buffer,
    pub(super) dtype: GgmlType,
    pub(super) shape: Vec<usize>,
    /// Word index of the f16 block scales (quantized types).
    pub(super) scales_offset: u32,
}

impl GpuMatrix {
    /// The GEMM kernel's `WTYPE`.
    fn wtype(&self) -> u32 {
        match self.dtype {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q8_0 => 2,
            GgmlType::Q4_0 => 3,
        }
    }
}

impl GpuTensor {
    pub(super) fn new(ctx: &Arc<Context>, buffer: wgpu::Buffer, dims: &[usize]) -> Self {
        GpuTensor { storage: Arc::new(Storage { buffer: Some(buffer), ctx: ctx.clone() }), dims: dims.to_vec() }
    }

    fn ctx(&self) -> &Arc<Context> {
        &self.storage.ctx
    }

    fn buffer(&self) -> &wgpu::Buffer {
        self.storage.buffer.as_ref().expect("a live tensor owns its buffer")
    }

    /// A fresh output tensor of `dims` from the pool.
    fn output(&self, dims: &[usize]) -> Result<GpuTensor> {
        let bytes = dims.iter().product::<usize>() as u64 * 4;
        if bytes > MAX_BINDING_BYTES {
            return Err(Error::Device(format!(
                "a tensor of shape {dims:?} needs {bytes} bytes, over WebGPU's default binding limit of \
                 {MAX_BINDING_BYTES}; use a smaller image, or the CPU backend"
            )));
        }
        Ok(GpuTensor::new(self.ctx(), self.ctx().buffer(bytes), dims))
    }

    fn launch(&self, kernel: Kernel, params: &impl Pod, buffers: &[&wgpu::Buffer], groups: usize) -> Result<()> {
        self.ctx().dispatch(kernel, bytemuck::bytes_of(params), buffers, groups)
    }

    fn unary(&self, op: u32, a: f32, b: f32) -> Result<Self> {
        let out = self.output(&self.dims)?;
        let n = self.elem_count();
        let p = ElementwiseParams { n: n as u32, op, a, b, ..Zeroable::zeroed() };
        self.launch(Kernel::new(Shader::Elementwise, "unary"), &p, &[self.buffer(), out.buffer()], n.div_ceil(256))?;
        Ok(out)
    }
}

/// Row-major strides of `dims`.
fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

fn pack(values: &[usize]) -> [u32; MAX_RANK] {
    let mut out = [0u32; MAX_RANK];
    values.iter().zip(out.iter_mut()).for_each(|(&v, o)| *o = v as u32);
    out
}

fn check_rank(dims: &[usize]) -> Result<()> {
    if dims.len() > MAX_RANK {
        return Err(Error::Model(format!("the WebGPU backend handles tensors of rank ≤ {MAX_RANK}, got {dims:?}")));
    }
    Ok(())
}

/// NumPy broadcast of two shapes.
fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let at = |d: &[usize], i: usize| if i + d.len() >= rank { d[i + d.len() - rank] } else { 1 };
    (0..rank)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(Error::Model(format!("shapes {a:?} and {b:?} do not broadcast"))),
        })
        .collect()
}

/// Strides reading `dims` as if broadcast to `out` (0 along broadcast dimensions).
fn broadcast_strides(dims: &[usize], out: &[usize]) -> Vec<usize> {
    let own = strides(dims);
    let lead = out.len() - dims.len();
    (0..out.len()).map(|i| if i < lead || dims[i - lead] == 1 { 0 } else { own[i - lead] }).collect()
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ElementwiseParams {
    n: u32,
    op: u32,
    a: f32,
    b: f32,
    rank: u32,
    _pad: [u32; 3],
    shape: [u32; MAX_RANK],
    stride_x: [u32; MAX_RANK],
    stride_y: [u32; MAX_RANK],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct CopyParams {
    n: u32,
    rank: u32,
    src_offset: u32,
    dst_offset: u32,
    shape: [u32; MAX_RANK],
    src_stride: [u32; MAX_RANK],
    dst_stride: [u32; MAX_RANK],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct GatherParams {
    n: u32,
    d: u32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    has_bias: u32,
    scales_offset: u32,
    inner: u32,
    a_base: u32,
    a_rs: u32,
    a_so: u32,
    a_si: u32,
    c_base: u32,
    c_rs: u32,
    c_so: u32,
    c_si: u32,
    b_ks: u32,
    b_ns: u32,
    b_so: u32,
    b_si: u32,
    channels: u32,
    height: u32,
    width: u32,
    kh: u32,
    kw: u32,
    pad: u32,
    out_width: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct NormParams {
    rows: u32,
    count: u32,
    plane: u32,
    channels_per_group: u32,
    groups: u32,
    silu: u32,
    eps: f32,
    modulated: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SoftmaxParams {
    rows: u32,
    lk: u32,
    block: u32,
    heads: u32,
    q0: u32,
    bias_n: u32,
    bias_q: u32,
    scale: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ResampleParams {
    n: u32,
    h: u32,
    w: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct StepParams {
    n: u32,
    noise_kind: u32,
    clip_on: u32,
    _pad: u32,
    x0_sample: f32,
    x0_model: f32,
    x0_denominator: f32,
    clip: f32,
    mean_x0: f32,
    mean_sample: f32,
    sigma: f32,
    log_min: f32,
    log_max: f32,
    _pad1: [f32; 3],
}

/// gemm.wgsl's tile: TM rows, TN columns (64, or 32 for narrow products).
const TM: usize = 64;

impl GpuTensor {
    fn binary(&self, rhs: &Self, op: u32) -> Result<Self> {
        let dims = broadcast_shape(&self.dims, &rhs.dims)?;
        check_rank(&dims)?;
        let out = self.output(&dims)?;
        let n = out.elem_count();
        let p = ElementwiseParams {
            n: n as u32,
            op,
            rank: dims.len() as u32,
            shape: pack(&dims),
            stride_x: pack(&broadcast_strides(&self.dims, &dims)),
            stride_y: pack(&broadcast_strides(&rhs.dims, &dims)),
            ..Zeroable::zeroed()
        };
        let kernel = Kernel::new(Shader::Elementwise, "binary");
        self.launch(kernel, &p, &[self.buffer(), out.buffer(), rhs.buffer()], n.div_ceil(256))?;
        Ok(out)
    }

    /// Records dst[dst_offset + Σ c·dst_stride] = self[src_offset + Σ c·src_stride] over `shape`.
    fn copy_into(&self, dst: &GpuTensor, shape: &[usize], src: (usize, &[usize]), to: (usize, &[usize])) -> Result<()> {
        check_rank(shape)?;
        let n: usize = shape.iter().product();
        let p = CopyParams {
            n: n as u32,
            rank: shape.len() as u32,
            src_offset: src.0 as u32,
            dst_offset: to.0 as u32,
            shape: pack(shape),
            src_stride: pack(src.1),
            dst_stride: pack(to.1),
        };
        self.launch(Kernel::new(Shader::Copy, "strided_copy"), &p, &[self.buffer(), dst.buffer()], n.div_ceil(256))
    }

    /// A contiguous copy of `self` read through `src_strides` from `src_offset`, shaped `dims`.
    fn gather_strided(&self, dims: &[usize], src_offset: usize, src_strides: &[usize]) -> Result<Self> {
        let out = self.output(dims)?;
        self.copy_into(&out, dims, (src_offset, src_strides), (0, &strides(dims)))?;
        Ok(out)
    }

    /// One workgroup per row; `extra` are the buffers bound after x and out (γ, β, and for a group norm
    /// the modulation's scale and shift).
    fn norm(&self, entry: &'static str, p: NormParams, extra: &[&Self]) -> Result<Self> {
        let out = self.output(&self.dims)?;
        let mut buffers = vec![self.buffer(), out.buffer()];
        buffers.extend(extra.iter().map(|t| t.buffer()));
        self.launch(Kernel::new(Shader::Norm, entry), &p, &buffers, p.rows as usize)?;
        Ok(out)
    }

    /// Records gemm.wgsl in `mode` into `out`, with `self` as its `a` and `rhs` (a weight of stored type
    /// `wtype`, or a tensor) as its `w`.
    fn gemm(
        &self,
        rhs: &wgpu::Buffer,
        wtype: u32,
        mode: u32,
        bias: Option<&Self>,
        p: GemmParams,
        out: &GpuTensor,
    ) -> Result<()> {
        let tn = if p.n <= 32 { 32 } else { 64 };
        let groups = (p.m as usize).div_ceil(TM) * (p.n as usize).div_ceil(tn) * p.batch as usize;
        let kernel = Kernel::with(Shader::Gemm, "main", [("MODE", mode), ("WTYPE", wtype), ("TN", tn as u32)]);
        // without a bias, the input is bound in its place (read-only aliasing is allowed; it is never read)
        let bias = bias.map_or(self.buffer(), |b| b.buffer());
        self.launch(kernel, &p, &[self.buffer(), rhs, bias, out.buffer()], groups)
    }
}

impl Tensor for GpuTensor {
    type Matrix = GpuMatrix;

    fn dims(&self) -> &[usize] {
        &self.dims
    }

    async fn to_vec(&self) -> Result<Vec<f32>> {
        self.ctx().read(self.buffer(), self.elem_count()).await
    }

    fn reshape(&self, shape: &[usize]) -> Result<Self> {
        if shape.iter().product::<usize>() != self.elem_count() {
            return Err(Error::Model(format!("cannot reshape {:?} to {shape:?}", self.dims)));
        }
        Ok(GpuTensor { storage: self.storage.clone(), dims: shape.to_vec() })
    }

    fn transpose(&self, d0: usize, d1: usize) -> Result<Self> {
        let rank = self.dims.len();
        if d0 >= rank || d1 >= rank {
            return Err(Error::Model(format!("cannot swap dims {d0} and {d1} of {:?}", self.dims)));
        }
        let (mut dims, mut src) = (self.dims.clone(), strides(&self.dims));
        dims.swap(d0, d1);
        src.swap(d0, d1);
        self.gather_strided(&dims, 0, &src)
    }

    fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Self> {
        if dim >= self.dims.len() || start + len > self.dims[dim] {
            return Err(Error::Model(format!("cannot take {start}..{} of dim {dim} of {:?}", start + len, self.dims)));
        }
        let src = strides(&self.dims);
        let mut dims = self.dims.clone();
        dims[dim] = len;
        self.gather_strided(&dims, start * src[dim], &src)
    }

    fn cat(parts: &[&Self], dim: usize) -> Result<Self> {
        let first = parts.first().ok_or_else(|| Error::Model("cat of no tensors".into()))?;
        let mut dims = first.dims.clone();
        if dim >= dims.len() {
            return Err(Error::Model(format!("cannot concatenate {dims:?} along dim {dim}")));
        }
        dims[dim] = 0;
        for p in parts {
            let same = p.dims.len() == dims.len() && (0..dims.len()).all(|i| i == dim || p.dims[i] == dims[i]);
            if !same {
                return Err(Error::Model(format!(
                    "cannot concatenate {:?} and {:?} along dim {dim}",
                    first.dims, p.dims
                )));
            }
            dims[dim] += p.dims[dim];
        }
        let out = first.output(&dims)?;
        let dst = strides(&dims);
        let mut offset = 0;
        for p in parts {
            p.copy_into(&out, &p.dims, (0, &strides(&p.dims)), (offset * dst[dim], &dst))?;
            offset += p.dims[dim];
        }
        Ok(out)
    }

    fn gather_rows(&self, ids: &[u32]) -> Result<Self> {
        let (rows, d) = match self.dims[..] {
            [rows, d] => (rows, d),
            _ => return Err(Error::Model(format!("gather_rows needs a 2-D table, got {:?}", self.dims))),
        };
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= rows) {
            return Err(Error::Model(format!(
                "token id {bad} is outside the embedding table of {rows} rows: the tokenizer does not match the text encoder"
            )));
        }
        let out = self.output(&[ids.len(), d])?;
        let ids_buffer = self.ctx().upload(bytemuck::cast_slice(ids), false);
        let n = ids.len() * d;
        let p = GatherParams { n: n as u32, d: d as u32, _pad: [0; 2] };
        let kernel = Kernel::new(Shader::Gather, "gather_rows");
        self.launch(kernel, &p, &[self.buffer(), &ids_buffer, out.buffer()], n.div_ceil(256))?;
        Ok(out)
    }

    fn add(&self, rhs: &Self) -> Result<Self> {
        self.binary(rhs, 0)
    }

    fn sub(&self, rhs: &Self) -> Result<Self> {
        self.binary(rhs, 1)
    }

    fn mul(&self, rhs: &Self) -> Result<Self> {
        self.binary(rhs, 2)
    }

    fn affine(&self, mul: f32, add: f32) -> Result<Self> {
        self.unary(0, mul, add)
    }

    fn clamp(&self, min: f32, max: f32) -> Result<Self> {
        self.unary(1, min, max)
    }

    fn activation(&self, act: Activation) -> Result<Self> {
        let op = match act {
            Activation::Silu => 2,
            Activation::Gelu => 3,
            Activation::QuickGelu => 4,
        };
        self.unary(op, 0.0, 0.0)
    }

    fn l2_normalize(&self) -> Result<Self> {
        let d = *self.dims.last().ok_or_else(|| Error::Model("l2_normalize of a scalar".into()))?;
        let rows = self.elem_count() / d.max(1);
        let p = NormParams { rows: rows as u32, count: d as u32, ..Zeroable::zeroed() };
        self.norm("l2_normalize", p, &[])
    }

    fn linear(&self, w: &GpuMatrix, b: Option<&Self>) -> Result<Self> {
        let k = *self.dims.last().ok_or_else(|| Error::Model("linear of a scalar".into()))?;
        let out_dim = w.shape[0];
        if w.shape != [out_dim, k] {
            return Err(Error::Model(format!(
                "a linear layer with weight {:?} was given inputs {:?}",
                w.shape, self.dims
            )));
        }
        if let Some(b) = b {
            if b.dims != [out_dim] {
                return Err(Error::Model(format!("a linear layer of {out_dim} outputs was given a bias {:?}", b.dims)));
            }
        }
        let m = self.elem_count() / k.max(1);
        let p = GemmParams {
            m: m as u32,
            n: out_dim as u32,
            k: k as u32,
            batch: 1,
            has_bias: b.is_some() as u32,
            scales_offset: w.scales_offset,
            inner: 1,
            a_rs: k as u32,
            c_rs: out_dim as u32,
            ..Zeroable::zeroed()
        };
        let mut dims = self.dims.clone();
        *dims.last_mut().expect("checked above") = out_dim;
        let out = self.output(&dims)?;
        self.gemm(&w.buffer, w.wtype(), 0, b, p, &out)?;
        Ok(out)
    }

    fn matmul(&self, rhs: &Self) -> Result<Self> {
        let (ra, rb) = (self.dims.len(), rhs.dims.len());
        if ra < 2 || rb < 2 || self.dims[ra - 1] != rhs.dims[rb - 2] {
            return Err(Error::Model(format!("cannot multiply {:?} by {:?}", self.dims, rhs.dims)));
        }
        let (m, k, n) = (self.dims[ra - 2], self.dims[ra - 1], rhs.dims[rb - 1]);
        let batch_dims = broadcast_shape(&self.dims[..ra - 2], &rhs.dims[..rb - 2])?;
        let batch: usize = batch_dims.iter().product();
        // an operand either covers the whole batch, or is shared by all of it, or is expanded first
        let operand = |t: &GpuTensor, rows: usize, cols: usize| -> Result<(GpuTensor, usize)> {
            let own: usize = t.dims[..t.dims.len() - 2].iter().product();
            if own == batch && t.dims[..t.dims.len() - 2] == batch_dims[batch_dims.len() - (t.dims.len() - 2)..] {
                Ok((t.clone(), rows * cols))
            } else if own == 1 {
                Ok((t.clone(), 0))
            } else {
                let full: Vec<usize> = batch_dims.iter().copied().chain([rows, cols]).collect();
                Ok((t.gather_strided(&full, 0, &broadcast_strides(&t.dims, &full))?, rows * cols))
            }
        };
        let (a, a_stride) = operand(self, m, k)?;
        let (b, b_stride) = operand(rhs, k, n)?;
        let p = GemmParams {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            batch: batch as u32,
            inner: 1,
            a_rs: k as u32,
            a_so: a_stride as u32,
            c_rs: n as u32,
            c_so: (m * n) as u32,
            b_ks: n as u32,
            b_ns: 1,
            b_so: b_stride as u32,
            ..Zeroable::zeroed()
        };
        let dims: Vec<usize> = batch_dims.iter().copied().chain([m, n]).collect();
        let out = a.output(&dims)?;
        a.gemm(b.buffer(), 0, 1, None, p, &out)?;
        Ok(out)
    }

    fn conv2d(&self, w: &GpuMatrix, b: Option<&Self>, padding: usize) -> Result<Self> {
        let (n, c, h, wid) = match self.dims[..] {
            [n, c, h, w] => (n, c, h, w),
            _ => return Err(Error::Model(format!("conv2d needs an NCHW input, got {:?}", self.dims))),
        };
        let (o, ci, kh, kw) = match w.shape[..] {
            [o, ci, kh, kw] => (o, ci, kh, kw),
            _ => return Err(Error::Model(format!("conv2d needs an (O, C, kh, kw) kernel, got {:?}", w.shape))),
        };
        if ci != c {
            return Err(Error::Model(format!("a conv over {ci} channels was given {c} channels")));
        }
        let (oh, ow) = ((h + 2 * padding + 1).saturating_sub(kh), (wid + 2 * padding + 1).saturating_sub(kw));
        let p = GemmParams {
            m: o as u32,
            n: (oh * ow) as u32,
            k: (c * kh * kw) as u32,
            batch: n as u32,
            has_bias: b.is_some() as u32,
            scales_offset: w.scales_offset,
            inner: 1,
            c_rs: (oh * ow) as u32,
            c_so: (o * oh * ow) as u32,
            channels: c as u32,
            height: h as u32,
            width: wid as u32,
            kh: kh as u32,
            kw: kw as u32,
            pad: padding as u32,
            out_width: ow as u32,
            ..Zeroable::zeroed()
        };
        let out = self.output(&[n, o, oh, ow])?;
        self.gemm(&w.buffer, w.wtype(), 2, b, p, &out)?;
        Ok(out)
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
        let (n, c) = match self.dims[..] {
            [n, c, ..] => (n, c),
            _ => return Err(Error::Model(format!("GroupNorm needs (N, C, ...), got {:?}", self.dims))),
        };
        if groups == 0 || c % groups != 0 {
            return Err(Error::Model(format!("GroupNorm over {c} channels cannot use {groups} groups")));
        }
        let silu = match act {
            None => 0,
            Some(Activation::Silu) => 1,
            Some(other) => return Err(Error::Model(format!("GroupNorm cannot fuse {other:?}"))),
        };
        // without a modulation, γ and β are bound in its place (never read)
        let (scale, shift) = modulation.unwrap_or((gamma, beta));
        if modulation.is_some() && (scale.dims != [n, c] || shift.dims != [n, c]) {
            return Err(Error::Model(format!(
                "GroupNorm of {:?} was given a modulation scale {:?} and shift {:?}; expected ({n}, {c}) each",
                self.dims, scale.dims, shift.dims
            )));
        }
        let plane: usize = self.dims[2..].iter().product();
        let p = NormParams {
            rows: (n * groups) as u32,
            count: ((c / groups) * plane) as u32,
            plane: plane as u32,
            channels_per_group: (c / groups) as u32,
            groups: groups as u32,
            silu,
            eps,
            modulated: modulation.is_some() as u32,
        };
        self.norm("group_norm", p, &[gamma, beta, scale, shift])
    }

    fn layer_norm(&self, gamma: &Self, beta: &Self, eps: f32) -> Result<Self> {
        let d = *self.dims.last().ok_or_else(|| Error::Model("layer_norm of a scalar".into()))?;
        if gamma.dims != [d] || beta.dims != [d] {
            return Err(Error::Model(format!("LayerNorm over {d} was given γ {:?}, β {:?}", gamma.dims, beta.dims)));
        }
        let p = NormParams { rows: (self.elem_count() / d.max(1)) as u32, count: d as u32, eps, ..Zeroable::zeroed() };
        self.norm("layer_norm", p, &[gamma, beta])
    }

    fn attention(q: &Self, k: &Self, v: &Self, heads: usize, bias: Option<&Self>) -> Result<Self> {
        let (n, lq, c) = match q.dims[..] {
            [n, lq, c] => (n, lq, c),
            _ => return Err(Error::Model(format!("attention needs q (N, Lq, C), got {:?}", q.dims))),
        };
        let lk = k.dims.get(1).copied().unwrap_or(0);
        if k.dims != [n, lk, c] || v.dims != [n, lk, c] || heads == 0 || c % heads != 0 {
            return Err(Error::Model(format!(
                "attention needs q (N, Lq, C), k and v (N, Lk, C) with C divisible by {heads} heads; got {:?}, {:?}, {:?}",
                q.dims, k.dims, v.dims
            )));
        }
        let d = c / heads;
        let (bias_n, bias_q) = match bias {
            None => (0, 0),
            Some(b) => match b.dims[..] {
                [bn, bq, bk] if bk == lk && (bn == 1 || bn == n) && (bq == 1 || bq == lq) => (bn, bq),
                _ => {
                    return Err(Error::Model(format!(
                        "an attention bias {:?} does not broadcast to ({n}, {lq}, {lk})",
                        b.dims
                    )))
                }
            },
        };
        // per (batch, head) b = (i, h): scores_b (block, Lk) = q_b · k_bᵀ, the softmax, then o_b = scores_b · v_b,
        // every operand read in place through strides: q_b[r, e] = q[i, q0 + r, h·d + e], the same for k, v, o
        let out = q.output(&[n, lq, c])?;
        let block = (MAX_SCORES / (n * heads * lk).max(1)).clamp(1, lq.max(1));
        let (nh, scale) = (n * heads, 1.0 / (d as f32).sqrt());
        let u = |v: usize| v as u32;
        for q0 in (0..lq).step_by(block) {
            let bq = block.min(lq - q0);
            let scores = q.output(&[nh, bq, lk])?;
            let qk = GemmParams {
                m: u(bq),
                n: u(lk),
                k: u(d),
                batch: u(nh),
                inner: u(heads),
                a_base: u(q0 * c),
                a_rs: u(c),
                a_so: u(lq * c),
                a_si: u(d),
                b_ks: 1,
                b_ns: u(c),
                b_so: u(lk * c),
                b_si: u(d),
                c_rs: u(lk),
                c_so: u(heads * bq * lk),
                c_si: u(bq * lk),
                ..Zeroable::zeroed()
            };
            q.gemm(k.buffer(), 0, 1, None, qk, &scores)?;
            let p = SoftmaxParams {
                rows: u(nh * bq),
                lk: u(lk),
                block: u(bq),
                heads: u(heads),
                q0: u(q0),
                bias_n: u(bias_n),
                bias_q: u(bias_q),
                scale,
            };
            // without a bias, q is bound in its place (never read)
            let bias = bias.map_or(q.buffer(), |b| b.buffer());
            let kernel = Kernel::new(Shader::Softmax, "softmax_rows");
            q.launch(kernel, &p, &[scores.buffer(), bias], (nh * bq).div_ceil(64))?;
            let pv = GemmParams {
                m: u(bq),
                n: u(d),
                k: u(lk),
                batch: u(nh),
                inner: u(heads),
                a_rs: u(lk),
                a_so: u(heads * bq * lk),
                a_si: u(bq * lk),
                b_ks: u(c),
                b_ns: 1,
                b_so: u(lk * c),
                b_si: u(d),
                c_base: u(q0 * c),
                c_rs: u(c),
                c_so: u(lq * c),
                c_si: u(d),
                ..Zeroable::zeroed()
            };
            scores.gemm(v.buffer(), 0, 1, None, pv, &out)?;
        }
        Ok(out)
    }

    fn avg_pool2x2(&self) -> Result<Self> {
        let (n, c, h, w) = match self.dims[..] {
            [n, c, h, w] => (n, c, h, w),
            _ => return Err(Error::Model(format!("avg_pool2x2 needs NCHW, got {:?}", self.dims))),
        };
        self.resample("avg_pool2x2", &[n, c, h / 2, w / 2], h, w)
    }

    fn upsample_nearest2x(&self) -> Result<Self> {
        let (n, c, h, w) = match self.dims[..] {
            [n, c, h, w] => (n, c, h, w),
            _ => return Err(Error::Model(format!("upsample_nearest2x needs NCHW, got {:?}", self.dims))),
        };
        self.resample("upsample_nearest2x", &[n, c, 2 * h, 2 * w], h, w)
    }

    fn scheduler_step(
        model: &Self,
        log_variance_frac: Option<&Self>,
        sample: &Self,
        noise: Option<&Self>,
        c: &StepCoefficients,
    ) -> Result<(Self, Self)> {
        let n = sample.elem_count();
        for t in [Some(model), log_variance_frac, noise].into_iter().flatten() {
            if t.elem_count() != n {
                return Err(Error::Model(format!(
                    "a scheduler step over {:?} was given a tensor of shape {:?}",
                    sample.dims, t.dims
                )));
            }
        }
        let (noise_kind, sigma, log_min, log_max) = match (c.noise, noise) {
            (None, _) | (_, None) => (0, 0.0, 0.0, 0.0),
            (Some(NoiseScale::Fixed { sigma }), Some(_)) => (1, sigma, 0.0, 0.0),
            (Some(NoiseScale::LearnedRange { log_min, log_max }), Some(_)) => {
                if log_variance_frac.is_none() {
                    return Err(Error::Model("a learned-range scheduler needs the model's variance channels".into()));
                }
                (2, 0.0, log_min, log_max)
            }
        };
        let p = StepParams {
            n: n as u32,
            noise_kind,
            clip_on: c.clip.is_some() as u32,
            x0_sample: c.x0_sample,
            x0_model: c.x0_model,
            x0_denominator: c.x0_denominator,
            clip: c.clip.unwrap_or(0.0),
            mean_x0: c.mean_x0,
            mean_sample: c.mean_sample,
            sigma,
            log_min,
            log_max,
            ..Zeroable::zeroed()
        };
        let prev = sample.output(&sample.dims)?;
        let x0 = sample.output(&sample.dims)?;
        let v = log_variance_frac.map_or(sample.buffer(), |t| t.buffer());
        let z = noise.map_or(sample.buffer(), |t| t.buffer());
        let kernel = Kernel::new(Shader::SchedulerStep, "main");
        let buffers = [model.buffer(), v, sample.buffer(), z, prev.buffer(), x0.buffer()];
        sample.launch(kernel, &p, &buffers, n.div_ceil(256))?;
        Ok((prev, x0))
    }
}

impl GpuTensor {
    fn resample(&self, entry: &'static str, dims: &[usize], h: usize, w: usize) -> Result<Self> {
        let out = self.output(dims)?;
        let n = out.elem_count();
        let p = ResampleParams { n: n as u32, h: h as u32, w: w as u32, _pad: 0 };
        self.launch(Kernel::new(Shader::Resample, entry), &p, &[self.buffer(), out.buffer()], n.div_ceil(256))?;
        Ok(out)
    }
}
