//! One module per WGSL file beside it: each declares its kernel's `Params` (with `wgsl_params!`), op codes and
//! `Shader`, and launches the kernel for the ops it implements. A new kernel is its `.wgsl` and one `.rs` here.

pub(super) mod copy;
pub(super) mod elementwise;
pub(super) mod gather;
pub(super) mod gemm;
pub(super) mod norm;
pub(super) mod resample;
pub(super) mod scheduler_step;
pub(super) mod softmax;

use crate::error::{Error, Result};

/// Invocations per workgroup of the one-thread-per-element kernels.
const WORKGROUP: usize = 256;

/// Highest rank the strided kernels index (elementwise broadcasting, copies).
const MAX_RANK: usize = 8;

/// Up to `MAX_RANK` sizes or strides as the kernels' two vec4s.
fn pack(values: &[usize]) -> [[u32; 4]; 2] {
    let mut out = [[0u32; 4]; 2];
    values.iter().enumerate().for_each(|(i, &v)| out[i / 4][i % 4] = v as u32);
    out
}

fn check_rank(dims: &[usize]) -> Result<()> {
    if dims.len() > MAX_RANK {
        return Err(Error::Model(format!("the WebGPU backend handles tensors of rank ≤ {MAX_RANK}, got {dims:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::shader::Shader;

    /// Every shader, as the device compiles it: generated declarations, prelude, kernel file.
    const SHADERS: [&Shader; 8] = [
        &super::copy::SHADER,
        &super::elementwise::SHADER,
        &super::gather::SHADER,
        &super::gemm::SHADER,
        &super::norm::SHADER,
        &super::resample::SHADER,
        &super::scheduler_step::SHADER,
        &super::softmax::SHADER,
    ];

    /// The WGSL generated from the Rust `Params` and op codes, and the kernel files using them, compile together
    /// (a field or constant renamed on one side only fails here; the layouts are checked at compile time).
    #[test]
    fn every_shader_compiles_with_its_generated_declarations() {
        let gpu = pollster::block_on(crate::backend::webgpu::WebGpu::new()).expect("a WebGPU adapter (lavapipe)");
        for shader in SHADERS {
            gpu.compile(shader).unwrap_or_else(|e| panic!("{}: {e}\n{}", shader.name, shader.module_source()));
        }
    }
}
