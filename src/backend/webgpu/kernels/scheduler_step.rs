//! The fused denoising step (scheduler_step.wgsl, `docs/math.md §11.3`).

use bytemuck::Zeroable;

use super::super::context::Kernel;
use super::super::shader::{op_code_constants, shader, wgsl_params};
use super::super::tensor::GpuTensor;
use super::WORKGROUP;
use crate::backend::op_code::{op_code, OpCode};
use crate::backend::ops::{NoiseScale, StepCoefficients, StepOperands};
use crate::error::Result;

shader!("SchedulerStep", "scheduler_step.wgsl", declarations, [
    read model, read v, read sample, read z, write prev, write x0,
]);

op_code! {
    /// The noise a step adds.
    enum NoiseKind as "NOISE" {
        Absent,
        Fixed,
        LearnedRange,
    }
}

wgsl_params! {
    struct StepParams {
        /// elements; a `NoiseKind`
        n: u32, noise_kind: u32, clip_on: u32, _pad0: u32,
        x0_sample: f32, x0_model: f32, x0_denominator: f32, clip: f32,
        mean_x0: f32, mean_sample: f32,
        sigma: f32, log_min: f32, log_max: f32,
        _pad1: f32, _pad2: f32, _pad3: f32,
    }
}

fn declarations() -> String {
    [StepParams::wgsl(), op_code_constants::<NoiseKind>()].concat()
}

/// (x_{t-1}, x̂0) over the `n` values of `sample`.
pub(in super::super) fn denoising_step(
    x: StepOperands<'_, GpuTensor>,
    c: &StepCoefficients,
    n: usize,
) -> Result<(GpuTensor, GpuTensor)> {
    let StepOperands { model, log_variance_frac, sample, noise } = x;
    let (noise_kind, sigma, log_min, log_max) = match (c.noise, noise) {
        (None, _) | (_, None) => (NoiseKind::Absent, 0.0, 0.0, 0.0),
        (Some(NoiseScale::Fixed { sigma }), Some(_)) => (NoiseKind::Fixed, sigma, 0.0, 0.0),
        (Some(NoiseScale::LearnedRange { log_min, log_max }), Some(_)) => {
            (NoiseKind::LearnedRange, 0.0, log_min, log_max)
        }
    };
    let p = StepParams {
        n: n as u32,
        noise_kind: noise_kind.code(),
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
    // unused operands are bound to x_t (never read)
    let v = log_variance_frac.map_or(sample.buffer(), |t| t.buffer());
    let z = noise.map_or(sample.buffer(), |t| t.buffer());
    let buffers = [model.buffer(), v, sample.buffer(), z, prev.buffer(), x0.buffer()];
    sample.launch(Kernel::new(&SHADER, "main"), &p, &buffers, n.div_ceil(WORKGROUP))?;
    Ok((prev, x0))
}
