//! The CPU backend's fused denoising step (`docs/math.md §11.3`).

use crate::backend::ops::{NoiseScale, StepCoefficients};
use crate::backend::shape::LEARNED_RANGE_WITHOUT_VARIANCE;
use crate::error::{Error, Result};

/// The σ of the step's noise term σ·z, per element.
enum Sigma<'a> {
    Fixed(f32),
    /// Interpolated in log space by the model's variance channel v ∈ [-1, 1].
    LearnedRange {
        log_min: f32,
        log_max: f32,
        v: &'a [f32],
    },
}

impl Sigma<'_> {
    fn at(&self, i: usize) -> f32 {
        match *self {
            Sigma::Fixed(sigma) => sigma,
            Sigma::LearnedRange { log_min, log_max, v } => {
                let frac = (v[i] + 1.0) / 2.0;
                (0.5 * (frac * log_max + (1.0 - frac) * log_min)).exp()
            }
        }
    }
}

/// One step over `sample` x_t: (x_{t-1}, x̂0). `v` (the model's variance channels) must be present whenever the
/// noise is learned-range and `z` given, as `shape::denoising_step` checks.
pub(super) fn denoising_step(
    model: &[f32],
    v: Option<&[f32]>,
    sample: &[f32],
    z: Option<&[f32]>,
    c: &StepCoefficients,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let noise = match (&c.noise, z, v) {
        (None, _, _) | (_, None, _) => None,
        (Some(NoiseScale::Fixed { sigma }), Some(z), _) => Some((Sigma::Fixed(*sigma), z)),
        (Some(NoiseScale::LearnedRange { log_min, log_max }), Some(z), Some(v)) => {
            Some((Sigma::LearnedRange { log_min: *log_min, log_max: *log_max, v }, z))
        }
        (Some(NoiseScale::LearnedRange { .. }), Some(_), None) => {
            return Err(Error::Model(LEARNED_RANGE_WITHOUT_VARIANCE.into()))
        }
    };
    let mut x0 = vec![0f32; sample.len()];
    let mut prev = vec![0f32; sample.len()];
    for (i, &s) in sample.iter().enumerate() {
        let mut x = (c.x0_sample * s + c.x0_model * model[i]) / c.x0_denominator;
        if let Some(r) = c.clip {
            x = x.clamp(-r, r);
        }
        x0[i] = x;
        prev[i] = c.mean_x0 * x + c.mean_sample * s + noise.as_ref().map_or(0.0, |(sigma, z)| sigma.at(i) * z[i]);
    }
    Ok((prev, x0))
}
