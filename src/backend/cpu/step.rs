//! The CPU backend's fused denoising step (`docs/math.md §11.3`).

use crate::backend::ops::{NoiseScale, StepCoefficients};

/// One step over `sample` x_t: (x_{t-1}, x̂0). `v` is present whenever the noise is learned-range and `z` given
/// (checked by `shape::denoising_step`).
pub(super) fn denoising_step(
    model: &[f32],
    v: Option<&[f32]>,
    sample: &[f32],
    z: Option<&[f32]>,
    c: &StepCoefficients,
) -> (Vec<f32>, Vec<f32>) {
    let mut x0 = vec![0f32; sample.len()];
    let mut prev = vec![0f32; sample.len()];
    for (i, &s) in sample.iter().enumerate() {
        let mut x = (c.x0_sample * s + c.x0_model * model[i]) / c.x0_denominator;
        if let Some(r) = c.clip {
            x = x.clamp(-r, r);
        }
        x0[i] = x;
        let mut mean = c.mean_x0 * x + c.mean_sample * s;
        if let (Some(scale), Some(z)) = (&c.noise, z) {
            let sigma = match (scale, v) {
                (NoiseScale::Fixed { sigma }, _) => *sigma,
                (NoiseScale::LearnedRange { log_min, log_max }, Some(v)) => {
                    let frac = (v[i] + 1.0) / 2.0;
                    (0.5 * (frac * log_max + (1.0 - frac) * log_min)).exp()
                }
                (NoiseScale::LearnedRange { .. }, None) => unreachable!("checked by shape::denoising_step"),
            };
            mean += sigma * z[i];
        }
        prev[i] = mean;
    }
    (prev, x0)
}
