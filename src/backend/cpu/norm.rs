//! The CPU backend's GroupNorm, with the modulation and SiLU fused.

use super::exp::exp;
use super::par_chunks;
use crate::backend::shape::GroupNorm;

/// GroupNorm of `x` (n, c, plane…) in place: (x − mean)·γ/σ + β per group, then ·scale + shift with the
/// (n, c) `modulation`, then SiLU when `g.silu`.
pub(super) fn group_norm(
    x: &mut [f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    modulation: Option<(&[f32], &[f32])>,
    g: &GroupNorm,
) {
    let GroupNorm { c, groups, plane, silu, .. } = *g;
    let per_group = g.channels_per_group() * plane;
    par_chunks(x, per_group, |chunk_idx, chunk| {
        let (mean, var) = moments(chunk);
        let inv = 1.0 / (var + eps as f64).sqrt();
        let group = chunk_idx % groups;
        for (ci, values) in chunk.chunks_mut(plane).enumerate() {
            let ch = group * g.channels_per_group() + ci;
            // (x − mean)·inv·γ + β, then ·scale + shift: one multiply-add per element
            let mut scale = (inv * gamma[ch] as f64) as f32;
            let mut shift = beta[ch] - (mean * inv * gamma[ch] as f64) as f32;
            if let Some((ms, mt)) = modulation {
                let nc = (chunk_idx / groups) * c + ch;
                (scale, shift) = (scale * ms[nc], shift * ms[nc] + mt[nc]);
            }
            if silu {
                values.iter_mut().for_each(|v| {
                    let y = *v * scale + shift;
                    *v = y / (1.0 + exp(-y));
                });
            } else {
                values.iter_mut().for_each(|v| *v = *v * scale + shift);
            }
        }
    });
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
