//! `GpuTensor`: the op table as kernel launches. Each op's shapes arrive checked (`backend::shape`); the kernel
//! modules (`kernels/`) fill their kernel's uniform parameters and record one dispatch (or a few) into a
//! buffer from the pool; nothing waits for the GPU until `to_vec`.

use std::sync::Arc;

use bytemuck::Pod;

use super::context::{Context, Kernel};
use super::kernels::{copy, elementwise, gather, gemm, norm, resample, scheduler_step, softmax};
use super::MAX_BINDING_BYTES;
use crate::backend::ops::{Affine, BinaryOp, Ops, StepCoefficients, StepOperands, UnaryOp};
use crate::backend::shape::{
    Attention, Broadcast, Cat, Conv2d, Gather, GroupNorm, Linear, Matmul, Narrow, Planes, Rows, Transpose,
};
use crate::error::{Error, Result};
use crate::gguf::GgmlType;

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
    pub(super) dims: Vec<usize>,
}

/// A `linear` / `conv2d` weight in its stored type; `shape` is the logical shape (out, in[, kh, kw]).
pub struct GpuMatrix {
    pub(super) buffer: wgpu::Buffer,
    pub(super) dtype: GgmlType,
    pub(super) shape: Vec<usize>,
    /// Word index of the f16 block scales (quantized types).
    pub(super) scales_offset: u32,
}

impl GpuTensor {
    pub(super) fn new(ctx: &Arc<Context>, buffer: wgpu::Buffer, dims: &[usize]) -> Self {
        GpuTensor { storage: Arc::new(Storage { buffer: Some(buffer), ctx: ctx.clone() }), dims: dims.to_vec() }
    }

    pub(super) fn ctx(&self) -> &Arc<Context> {
        &self.storage.ctx
    }

    pub(super) fn buffer(&self) -> &wgpu::Buffer {
        self.storage.buffer.as_ref().expect("a live tensor owns its buffer")
    }

    pub(super) fn elem_count(&self) -> usize {
        self.dims.iter().product()
    }

    /// A fresh output tensor of `dims` from the pool.
    pub(super) fn output(&self, dims: &[usize]) -> Result<GpuTensor> {
        let bytes = dims.iter().product::<usize>() as u64 * 4;
        if bytes > MAX_BINDING_BYTES {
            return Err(Error::Device(format!(
                "a tensor of shape {dims:?} needs {bytes} bytes, over WebGPU's default binding limit of \
                 {MAX_BINDING_BYTES}; use a smaller image, or the CPU backend"
            )));
        }
        Ok(GpuTensor::new(self.ctx(), self.ctx().buffer(bytes), dims))
    }

    /// Records `kernel` over `groups` workgroups with `params` at binding 0 and `buffers` from binding 1.
    pub(super) fn launch(
        &self,
        kernel: Kernel,
        params: &impl Pod,
        buffers: &[&wgpu::Buffer],
        groups: usize,
    ) -> Result<()> {
        self.ctx().dispatch(kernel, bytemuck::bytes_of(params), buffers, groups)
    }
}

impl Ops for GpuTensor {
    type Matrix = GpuMatrix;

    fn dims(&self) -> &[usize] {
        &self.dims
    }

    fn matrix_dims(w: &GpuMatrix) -> &[usize] {
        &w.shape
    }

    async fn to_vec(&self) -> Result<Vec<f32>> {
        self.ctx().read(self.buffer(), self.elem_count()).await
    }

    fn reshape(&self, dims: &[usize]) -> Result<Self> {
        Ok(GpuTensor { storage: self.storage.clone(), dims: dims.to_vec() })
    }

    fn transpose(&self, g: &Transpose) -> Result<Self> {
        copy::strided_view(self, &g.view)
    }

    fn narrow(&self, g: &Narrow) -> Result<Self> {
        copy::strided_view(self, &g.view)
    }

    fn cat(parts: &[&Self], g: &Cat) -> Result<Self> {
        copy::cat(parts, g)
    }

    fn gather_rows(&self, ids: &[u32], g: &Gather) -> Result<Self> {
        gather::gather_rows(self, ids, g)
    }

    fn binary(&self, rhs: &Self, op: BinaryOp, g: &Broadcast) -> Result<Self> {
        elementwise::binary(self, rhs, op, g)
    }

    fn unary(&self, op: UnaryOp) -> Result<Self> {
        elementwise::unary(self, op)
    }

    fn l2_normalize(&self, g: &Rows) -> Result<Self> {
        norm::l2_normalize(self, g)
    }

    fn linear(&self, w: &GpuMatrix, b: Option<&Self>, g: &Linear) -> Result<Self> {
        gemm::linear(self, w, b, g)
    }

    fn matmul(&self, rhs: &Self, g: &Matmul) -> Result<Self> {
        gemm::matmul(self, rhs, g)
    }

    fn conv2d(&self, w: &GpuMatrix, b: Option<&Self>, g: &Conv2d) -> Result<Self> {
        gemm::conv2d(self, w, b, g)
    }

    fn group_norm(&self, a: Affine<'_, Self>, g: &GroupNorm) -> Result<Self> {
        norm::group_norm(self, a, g)
    }

    fn layer_norm(&self, a: Affine<'_, Self>, g: &Rows) -> Result<Self> {
        norm::layer_norm(self, a, g)
    }

    fn attention(q: &Self, k: &Self, v: &Self, bias: Option<&Self>, g: &Attention) -> Result<Self> {
        softmax::attention(q, k, v, bias, g)
    }

    fn avg_pool2x2(&self, g: &Planes) -> Result<Self> {
        resample::avg_pool2x2(self, g)
    }

    fn upsample_nearest2x(&self, g: &Planes) -> Result<Self> {
        resample::upsample_nearest2x(self, g)
    }

    fn denoising_step(x: StepOperands<'_, Self>, c: &StepCoefficients, n: usize) -> Result<(Self, Self)> {
        scheduler_step::denoising_step(x, c, n)
    }
}
