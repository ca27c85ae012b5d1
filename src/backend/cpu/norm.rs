//! The CPU backend's GroupNorm, with the modulation and SiLU fused.

use super::exp::exp;
use super::par_chunks;
use crate::backend::shape::GroupNorm;

/// GroupNorm of `x` (n, c, plane…): (x − mean)·γ/σ + β per group, then ·scale + shift with the (n, c)
/// `modulation`, then SiLU when `g.silu`; one pass to read the statistics, one to write the result.
pub(super) fn group_norm(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    modulation: Option<(&[f32], &[f32])>,
    g: &GroupNorm,
) -> Vec<f32> {
    let per_group = g.channels_per_group() * g.plane;
    let mut y = vec![0f32; x.len()];
    par_chunks(&mut y, per_group, |chunk_idx, out| {
        let x = &x[chunk_idx * per_group..][..out.len()];
        let group = Group { x, gamma, beta, eps, modulation, g, index: chunk_idx };
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return unsafe { normalize_avx512(&group, out) };
        }
        normalize(&group, out)
    });
    y
}

/// One group of one image, and what normalizes it.
struct Group<'a> {
    x: &'a [f32],
    gamma: &'a [f32],
    beta: &'a [f32],
    eps: f32,
    modulation: Option<(&'a [f32], &'a [f32])>,
    g: &'a GroupNorm,
    /// image · groups + group
    index: usize,
}

/// `normalize` on AVX-512 (the crate is built for baseline x86-64, SSE2; SiLU's e^x is most of the time).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn normalize_avx512(group: &Group<'_>, out: &mut [f32]) {
    normalize(group, out)
}

/// out = the group normalized, modulated and through SiLU when `g.silu`.
#[inline(always)]
fn normalize(group: &Group<'_>, out: &mut [f32]) {
    let Group { x, gamma, beta, eps, modulation, g, index } = *group;
    let GroupNorm { c, groups, plane, silu, .. } = *g;
    let (mean, var) = moments(x);
    let inv = 1.0 / (var + eps as f64).sqrt();
    let group = index % groups;
    for (ci, (values, out)) in x.chunks(plane).zip(out.chunks_mut(plane)).enumerate() {
        let ch = group * g.channels_per_group() + ci;
        // (x − mean)·inv·γ + β, then ·scale + shift: one multiply-add per element
        let mut scale = (inv * gamma[ch] as f64) as f32;
        let mut shift = beta[ch] - (mean * inv * gamma[ch] as f64) as f32;
        if let Some((ms, mt)) = modulation {
            let nc = (index / groups) * c + ch;
            (scale, shift) = (scale * ms[nc], shift * ms[nc] + mt[nc]);
        }
        if silu {
            out.iter_mut().zip(values).for_each(|(o, &v)| {
                let y = v * scale + shift;
                *o = y / (1.0 + exp(-y));
            });
        } else {
            out.iter_mut().zip(values).for_each(|(o, &v)| *o = v * scale + shift);
        }
    }
}

/// Mean and biased variance of `x` (the variance of the centred values, as torch), summed in f64 over
/// four lanes so the loops vectorize.
#[inline(always)]
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
