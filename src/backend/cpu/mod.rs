//! The CPU backend: the op table on candle tensors (native, and wasm32 with simd128 in the browser).
//! Ops candle does slowly or not at all (GEMMs on rayon's pool, convolution, attention, group norm with fused
//! SiLU, the denoising step) are written here on plain slices, one module each.

use candle_core::{Device, Tensor as Candle};

use super::ops::{Affine, BinaryOp, Ops, StepCoefficients, StepOperands, UnaryOp};
use super::shape::{
    self, Attention, Broadcast, Cat, Conv2d, Gather, GroupNorm, Linear, Matmul, Narrow, Planes, Rows, Transpose,
};
use super::Backend;
use crate::error::{Error, Result};
use crate::gguf::TensorView;

mod attention;
mod conv;
mod direct_conv;
#[cfg(test)]
mod direct_conv_tests;
mod elementwise;
mod exp;
mod gemm;
mod norm;
#[cfg(test)]
mod sgemm_tests;
mod step;

#[cfg(test)]
use gemm::{sgemm, Gemm};

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
        shape::host_data(data.len(), shape)?;
        CpuTensor::from_host(data, shape)
    }

    fn weight(&self, view: &TensorView<'_>) -> Result<CpuTensor> {
        self.tensor(view.to_f32()?, &view.info.shape)
    }

    fn matrix(&self, view: &TensorView<'_>, shape: &[usize]) -> Result<CpuTensor> {
        self.tensor(view.to_f32()?, shape)
    }

    fn on_pool<R>(&self, model_call: impl FnOnce() -> R) -> R {
        if !THREADED {
            return model_call();
        }
        /// What crosses to the pool's thread and back: the call and its result.
        struct CpuOnly<T>(T);
        // SAFETY: `on_pool`'s contract: the call holds and returns only this backend's tensors and weights (candle
        // CPU tensors, Send + Sync) and plain data; nothing tied to the calling thread (no JS value) crosses.
        unsafe impl<T> Send for CpuOnly<T> {}
        let call = CpuOnly(model_call);
        let mut result = None;
        let slot = CpuOnly(&mut result);
        rayon::scope(move |_| {
            let (call, slot) = (call, slot);
            *slot.0 = Some(CpuOnly((call.0)()));
        });
        result.expect("rayon::scope returns after its body has run").0
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

impl Ops for CpuTensor {
    type Matrix = CpuTensor;

    fn dims(&self) -> &[usize] {
        self.0.dims()
    }

    fn matrix_dims(w: &CpuTensor) -> &[usize] {
        w.0.dims()
    }

    async fn to_vec(&self) -> Result<Vec<f32>> {
        self.host()
    }

    fn reshape(&self, dims: &[usize]) -> Result<Self> {
        self.map(|t| t.reshape(dims))
    }

    fn transpose(&self, g: &Transpose) -> Result<Self> {
        self.map(|t| t.transpose(g.d0, g.d1)?.contiguous())
    }

    fn narrow(&self, g: &Narrow) -> Result<Self> {
        self.map(|t| t.narrow(g.dim, g.start, g.len)?.contiguous())
    }

    fn cat(parts: &[&Self], g: &Cat) -> Result<Self> {
        let ts: Vec<&Candle> = parts.iter().map(|p| &p.0).collect();
        Ok(CpuTensor(Candle::cat(&ts, g.dim)?))
    }

    fn gather_rows(&self, ids: &[u32], _: &Gather) -> Result<Self> {
        let idx = Candle::from_slice(ids, ids.len(), &Device::Cpu)?;
        self.map(|t| t.index_select(&idx, 0))
    }

    // same shapes (residual connections) on the pool; broadcasts (small: embeddings, per-channel vectors) by candle
    fn binary(&self, rhs: &Self, op: BinaryOp, g: &Broadcast) -> Result<Self> {
        if g.same_shape {
            return elementwise::binary(self, rhs, |a, b| op.apply(a, b));
        }
        self.map(|t| match op {
            BinaryOp::Add => t.broadcast_add(&rhs.0),
            BinaryOp::Sub => t.broadcast_sub(&rhs.0),
            BinaryOp::Mul => t.broadcast_mul(&rhs.0),
        })
    }

    fn unary(&self, op: UnaryOp) -> Result<Self> {
        match op {
            UnaryOp::Affine { mul, add } => elementwise::unary(self, |v| v * mul + add),
            UnaryOp::Clamp { min, max } => elementwise::unary(self, |v| {
                if v < min {
                    min
                } else if v > max {
                    max
                } else {
                    v
                }
            }), // NaN stays NaN
            UnaryOp::Activation(act) => elementwise::unary(self, |v| elementwise::activate(act, v)),
        }
    }

    fn l2_normalize(&self, _: &Rows) -> Result<Self> {
        self.map(|t| t.broadcast_div(&t.sqr()?.sum_keepdim(candle_core::D::Minus1)?.sqrt()?))
    }

    fn linear(&self, w: &CpuTensor, b: Option<&Self>, g: &Linear) -> Result<Self> {
        let bias = b.map(CpuTensor::host).transpose()?;
        let y = self.with_data(|x| w.with_data(|wd| gemm::linear_rows(x, wd, bias.as_deref(), g.m, g.k, g.n)))?;
        Self::from_host(y, &g.dims)
    }

    fn matmul(&self, rhs: &Self, _: &Matmul) -> Result<Self> {
        self.map(|t| t.broadcast_matmul(&rhs.0))
    }

    fn conv2d(&self, w: &CpuTensor, b: Option<&Self>, g: &Conv2d) -> Result<Self> {
        let bias = b.map(CpuTensor::host).transpose()?;
        let y = self.with_data(|x| w.with_data(|kernel| conv::conv2d(x, kernel, bias.as_deref(), g)))?;
        Self::from_host(y, &g.dims())
    }

    fn group_norm(&self, a: Affine<'_, Self>, g: &GroupNorm) -> Result<Self> {
        let modulation =
            a.modulation.map(|(scale, shift)| Ok::<_, Error>((scale.host()?, shift.host()?))).transpose()?;
        let modulation = modulation.as_ref().map(|(scale, shift)| (&scale[..], &shift[..]));
        let (gamma, beta) = (a.gamma.host()?, a.beta.host()?);
        let y = self.with_data(|x| Ok(norm::group_norm(x, &gamma, &beta, a.eps, modulation, g)))?;
        Self::from_host(y, self.dims())
    }

    fn layer_norm(&self, a: Affine<'_, Self>, _: &Rows) -> Result<Self> {
        self.map(|t| candle_nn::ops::layer_norm(&t.contiguous()?, &a.gamma.0, &a.beta.0, a.eps))
    }

    fn attention(q: &Self, k: &Self, v: &Self, bias: Option<&Self>, g: &Attention) -> Result<Self> {
        let bias = bias.map(CpuTensor::host).transpose()?;
        let out = attention::attention(&q.host()?, &k.host()?, &v.host()?, bias.as_deref(), g)?;
        Self::from_host(out, &g.dims())
    }

    fn avg_pool2x2(&self, _: &Planes) -> Result<Self> {
        self.map(|t| t.avg_pool2d(2))
    }

    fn upsample_nearest2x(&self, g: &Planes) -> Result<Self> {
        self.map(|t| t.upsample_nearest2d(2 * g.h, 2 * g.w))
    }

    fn denoising_step(x: StepOperands<'_, Self>, c: &StepCoefficients, _: usize) -> Result<(Self, Self)> {
        let v = x.log_variance_frac.map(CpuTensor::host).transpose()?;
        let z = x.noise.map(CpuTensor::host).transpose()?;
        let (prev, x0) = step::denoising_step(&x.model.host()?, v.as_deref(), &x.sample.host()?, z.as_deref(), c)?;
        let dims = x.sample.dims();
        Ok((Self::from_host(prev, dims)?, Self::from_host(x0, dims)?))
    }
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

/// An output buffer's base pointer, handed to parallel tasks that each write a disjoint part of it (the blocks of a
/// GEMM's C, a convolution's output tiles).
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: created only by a function holding the buffer's `&mut` borrow until every task has joined, for tasks that
// write disjoint elements.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}
impl SharedOut {
    fn get(self) -> *mut f32 {
        self.0
    }
}
