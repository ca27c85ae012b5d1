//! Antialiased bicubic resize = torch `F.interpolate(mode="bicubic", antialias=True,
//! align_corners=False)` = PIL BICUBIC (spec §10.1): separable, a = −0.5, support 2·max(scale, 1),
//! taps clipped at the borders and renormalised. Applied as two small dense matrices.

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

/// The (out, in) matrix M with out = M · in along one axis.
pub fn bicubic_aa_weights(in_size: usize, out_size: usize) -> Vec<f32> {
    let scale = in_size as f64 / out_size as f64;
    let support = 2.0 * scale.max(1.0);
    let inv = 1.0 / scale.max(1.0);
    let mut m = vec![0f32; out_size * in_size];
    for i in 0..out_size {
        let center = scale * (i as f64 + 0.5);
        let lo = ((center - support + 0.5).trunc().max(0.0)) as usize;
        let hi = ((center + support + 0.5).trunc() as usize).min(in_size);
        let w: Vec<f64> = (lo..hi).map(|j| cubic((j as f64 - center + 0.5) * inv)).collect();
        let sum: f64 = w.iter().sum();
        for (j, wj) in (lo..hi).zip(w) {
            m[i * in_size + j] = (wj / sum) as f32;
        }
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
