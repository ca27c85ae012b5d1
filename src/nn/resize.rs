//! Antialiased bicubic resize = torch `F.interpolate(mode="bicubic", antialias=True,
//! align_corners=False)` = PIL BICUBIC (docs/math.md §10.1): separable, a = −0.5, support 2·max(scale, 1),
//! taps clipped at the borders and renormalised. Images are resampled tap by tap (`bicubic_aa_taps`, memory
//! linear in the output); tensors of model size as two small dense matrices.

use crate::backend::{Backend, Tensor};
use crate::error::Result;

fn cubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// The input taps of one output sample: `weights[k]` multiplies input `start + k`.
#[derive(Debug, Clone, PartialEq)]
pub struct Taps {
    pub start: usize,
    pub weights: Vec<f32>,
}

/// The taps of the outputs `outputs` (a sub-range of `0..out_size`) along one axis: at most
/// 2·⌈2·max(in/out, 1)⌉ + 1 weights each, so memory is linear in the outputs asked for, whatever the scale.
pub fn bicubic_aa_taps(in_size: usize, out_size: usize, outputs: std::ops::Range<usize>) -> Vec<Taps> {
    let scale = in_size as f64 / out_size as f64;
    let support = 2.0 * scale.max(1.0);
    let inv = 1.0 / scale.max(1.0);
    outputs
        .map(|i| {
            let center = scale * (i as f64 + 0.5);
            let lo = ((center - support + 0.5).trunc().max(0.0)) as usize;
            let hi = ((center + support + 0.5).trunc() as usize).min(in_size);
            let w: Vec<f64> = (lo..hi).map(|j| cubic((j as f64 - center + 0.5) * inv)).collect();
            let sum: f64 = w.iter().sum();
            Taps { start: lo, weights: w.iter().map(|wj| (wj / sum) as f32).collect() }
        })
        .collect()
}

/// The dense (out, in) matrix M with out = M · in along one axis (for tensors of model-sized images).
pub fn bicubic_aa_weights(in_size: usize, out_size: usize) -> Vec<f32> {
    let mut m = vec![0f32; out_size * in_size];
    for (i, t) in bicubic_aa_taps(in_size, out_size, 0..out_size).into_iter().enumerate() {
        m[i * in_size + t.start..i * in_size + t.start + t.weights.len()].copy_from_slice(&t.weights);
    }
    m
}

/// (N, C, H, W) → (N, C, out_h, out_w).
pub fn resize_bicubic_aa<B: Backend>(be: &B, x: &B::Tensor, out_h: usize, out_w: usize) -> Result<B::Tensor> {
    let (h, w) = (x.dim(2), x.dim(3));
    let mh = be.tensor(bicubic_aa_weights(h, out_h), &[out_h, h])?;
    let mw_t = be.tensor(bicubic_aa_weights(w, out_w), &[out_w, w])?.transpose(0, 1)?;
    mh.matmul(x)?.matmul(&mw_t) // (oh, H)·(N, C, H, W) → (N, C, oh, W); ·(W, ow) → (N, C, oh, ow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_of_a_huge_upscale_are_few_and_a_window_equals_the_same_rows_of_the_whole() {
        let window = bicubic_aa_taps(4000, 256_000, 128_000..128_064);
        assert_eq!(window.len(), 64);
        assert!(window.iter().all(|t| t.weights.len() <= 5), "upscaling needs at most 4 taps (+1 at the edge)");
        let all = bicubic_aa_taps(37, 11, 0..11);
        assert_eq!(bicubic_aa_taps(37, 11, 3..7), all[3..7]);
    }

    #[test]
    fn rows_sum_to_one_and_identity_at_same_size() {
        let m = bicubic_aa_weights(64, 256);
        for row in m.chunks(64) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        let id = bicubic_aa_weights(5, 5);
        for i in 0..5 {
            for j in 0..5 {
                assert_eq!(id[i * 5 + j], if i == j { 1.0 } else { 0.0 });
            }
        }
    }
}
