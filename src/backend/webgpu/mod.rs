//! The WebGPU backend: the op table as WGSL kernels (`kernels/*.wgsl`, each launched by the `.rs` beside it)
//! through wgpu — the browser's WebGPU in wasm, Vulkan/Metal/DX12 natively. Activations stay on the GPU
//! between ops; `to_vec` is the only way back. Weights of `linear`/`conv2d` stay in their stored type (q8_0, q4_0,
//! f16, f32) and are decoded inside the GEMM kernel.

mod context;
mod kernels;
mod shader;
mod tensor;

use std::sync::Arc;

use context::Context;
pub use context::{AdapterSummary, GpuMemory};
pub use tensor::{GpuMatrix, GpuTensor};

use super::Backend;
use crate::error::{Error, Result};
use crate::gguf::{GgmlType, TensorView};

/// Largest buffer a tensor may need: WebGPU's default `maxStorageBufferBindingSize`.
pub const MAX_BINDING_BYTES: u64 = 128 << 20;

#[derive(Clone)]
pub struct WebGpu {
    ctx: Arc<Context>,
}

impl WebGpu {
    /// Opens the system's preferred adapter (a hardware GPU when there is one) with default limits.
    pub async fn new() -> Result<Self> {
        Ok(WebGpu { ctx: Arc::new(Context::new().await?) })
    }

    pub fn adapter(&self) -> &AdapterSummary {
        &self.ctx.adapter
    }

    /// What this device has allocated so far.
    pub fn memory(&self) -> GpuMemory {
        self.ctx.memory()
    }

    /// Lowers the per-dimension workgroup limit, so tests can exercise dispatch splitting on small tensors.
    pub fn with_max_groups_per_dim(self, max: u32) -> Result<Self> {
        let mut ctx = Arc::try_unwrap(self.ctx)
            .map_err(|_| Error::Device("the dispatch limit can only be changed before tensors exist".into()))?;
        ctx.max_groups_per_dim = max.clamp(1, ctx.max_groups_per_dim);
        Ok(WebGpu { ctx: Arc::new(ctx) })
    }

    /// Natively: times every kernel on its own (each dispatch submitted and waited for), for
    /// [`WebGpu::profile`]. Slower than normal running; for benchmarks.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_profiling(self) -> Result<Self> {
        let mut ctx = Arc::try_unwrap(self.ctx)
            .map_err(|_| Error::Device("profiling can only be switched on before tensors exist".into()))?;
        ctx.profile = Some(Default::default());
        Ok(WebGpu { ctx: Arc::new(ctx) })
    }

    /// Per kernel (WGSL file, entry point, override constants): dispatches and wall milliseconds so far,
    /// slowest first; empty unless made [`WebGpu::with_profiling`].
    pub fn profile(&self) -> Vec<(String, usize, f64)> {
        let Some(profile) = &self.ctx.profile else { return Vec::new() };
        let mut rows: Vec<_> =
            profile.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, &(n, ms))| (k.clone(), n, ms)).collect();
        rows.sort_by(|a, b| b.2.total_cmp(&a.2));
        rows
    }

    /// Compiles `shader` as the kernels use it; the device's validation error, if any (tests).
    #[cfg(test)]
    fn compile(&self, shader: &shader::Shader) -> std::result::Result<(), String> {
        let scope = self.ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        self.ctx.module(shader);
        pollster::block_on(scope.pop()).map_or(Ok(()), |e| Err(e.to_string()))
    }

    fn check_size(&self, what: &str, bytes: u64) -> Result<()> {
        if bytes > MAX_BINDING_BYTES {
            return Err(Error::Device(format!(
                "{what} needs a {bytes}-byte GPU buffer, over WebGPU's default limit of {MAX_BINDING_BYTES} bytes; \
                 use a smaller image or a more quantized model, or the CPU backend"
            )));
        }
        Ok(())
    }
}

impl Backend for WebGpu {
    type Tensor = GpuTensor;

    fn name(&self) -> &'static str {
        "webgpu"
    }

    fn tensor(&self, data: Vec<f32>, shape: &[usize]) -> Result<GpuTensor> {
        super::shape::host_data(data.len(), shape)?;
        self.check_size("a tensor", data.len() as u64 * 4)?;
        Ok(GpuTensor::new(&self.ctx, self.ctx.upload(bytemuck::cast_slice(&data), false), shape))
    }

    fn weight(&self, view: &TensorView<'_>) -> Result<GpuTensor> {
        let data = view.to_f32()?;
        self.check_size("a weight", data.len() as u64 * 4)?;
        Ok(GpuTensor::new(&self.ctx, self.ctx.upload(bytemuck::cast_slice(&data), true), &view.info.shape))
    }

    /// Uploads the stored bytes re-laid-out for word access: the quants of all blocks first (q8_0: one
    /// byte per weight; q4_0: ggml's nibble order), then the f16 scales, two to a word.
    fn matrix(&self, view: &TensorView<'_>, shape: &[usize]) -> Result<GpuMatrix> {
        let n = view.info.n_elements();
        if shape.iter().product::<usize>() != n {
            return Err(Error::Weights(format!(
                "a weight stored with shape {:?} cannot be used as {shape:?}",
                view.info.shape
            )));
        }
        let dtype = view.info.dtype;
        let (bytes, scales_offset) = match dtype {
            GgmlType::F32 | GgmlType::F16 => (view.data.to_vec(), 0),
            GgmlType::Q8_0 | GgmlType::Q4_0 => {
                let block = dtype.block_bytes();
                let quants = block - 2;
                let blocks = view.data.len() / block;
                let mut bytes = Vec::with_capacity(blocks * block + 4);
                view.data.chunks_exact(block).for_each(|b| bytes.extend_from_slice(&b[2..]));
                let scales_offset = bytes.len() / 4; // 32 or 16 quant bytes per block: whole words
                view.data.chunks_exact(block).for_each(|b| bytes.extend_from_slice(&b[..2]));
                debug_assert_eq!(blocks * quants % 4, 0);
                (bytes, scales_offset as u32)
            }
        };
        self.check_size(&format!("a {dtype:?} weight of shape {shape:?}"), bytes.len() as u64)?;
        Ok(GpuMatrix { buffer: self.ctx.upload(&bytes, true), dtype, shape: shape.to_vec(), scales_offset })
    }
}
