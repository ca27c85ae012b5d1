//! The CPU backend's attention: blocks of queries through two GEMMs with the row softmax between them.

use super::exp::exp;
use super::gemm::{sgemm, Gemm};
use super::par_map;
use crate::backend::shape::Attention;
use crate::error::Result;

/// Queries per block: a (64, Lk) score block stays in cache while softmax runs over it.
const QUERY_BLOCK: usize = 64;

/// softmax(q·kᵀ/√d + bias)·v without materialising all scores: per (batch, head), blocks of
/// queries go through two GEMMs with the row softmax between them (flash attention's tiling, with
/// the whole key range in one tile). Heads run in parallel where threads exist.
/// q (n, lq, c), k and v (n, lk, c), the bias (bn, bq, lk) as `g.bias` says; the result (n, lq, c).
pub(super) fn attention(q: &[f32], k: &[f32], v: &[f32], bias: Option<&[f32]>, g: &Attention) -> Result<Vec<f32>> {
    let Attention { n, lq, lk, c, heads, .. } = *g;
    let bias = bias.zip(g.bias).map(|(b, (bn, bq))| (b, bn, bq));
    let d = g.head_dim();
    let scale = (d as f32).powf(-0.5);
    let head = |nh: usize| -> Result<Vec<f32>> {
        let (b, h) = (nh / heads, nh % heads);
        let mut out = vec![0f32; lq * d];
        let mut scores = vec![0f32; QUERY_BLOCK * lk];
        for q0 in (0..lq).step_by(QUERY_BLOCK) {
            let bq = QUERY_BLOCK.min(lq - q0);
            let sc = &mut scores[..bq * lk];
            // S = scale · Q_blk · K_hᵀ        Q rows have stride C, Kᵀ is K read column-wise
            let qb = &q[(b * lq + q0) * c + h * d..];
            let kh = &k[b * lk * c + h * d..];
            sgemm(
                Gemm {
                    m: bq,
                    n: lk,
                    k: d,
                    a: qb,
                    a_rs: c,
                    a_cs: 1,
                    b: kh,
                    b_rs: 1,
                    b_cs: c,
                    c_rs: lk,
                    scale,
                    accumulate: false,
                    parallel: false,
                },
                sc,
            )?;
            for (i, row) in sc.chunks_mut(lk).enumerate() {
                if let Some((bias, bn, bqn)) = bias {
                    let bias_row =
                        &bias[((if bn == 1 { 0 } else { b }) * bqn + if bqn == 1 { 0 } else { q0 + i }) * lk..][..lk];
                    row.iter_mut().zip(bias_row).for_each(|(s, b)| *s += b);
                }
                softmax_in_place(row);
            }
            // O_blk = P · V_h
            let vh = &v[b * lk * c + h * d..];
            sgemm(
                Gemm {
                    m: bq,
                    n: d,
                    k: lk,
                    a: sc,
                    a_rs: lk,
                    a_cs: 1,
                    b: vh,
                    b_rs: c,
                    b_cs: 1,
                    c_rs: d,
                    scale: 1.0,
                    accumulate: false,
                    parallel: false,
                },
                &mut out[q0 * d..(q0 + bq) * d],
            )?;
        }
        Ok(out)
    };
    let per_head: Vec<Vec<f32>> = par_map(n * heads, head)?;
    let mut out = vec![0f32; n * lq * c];
    for (nh, o) in per_head.iter().enumerate() {
        let (b, h) = (nh / heads, nh % heads);
        for (i, row) in o.chunks(d).enumerate() {
            out[(b * lq + i) * c + h * d..][..d].copy_from_slice(row);
        }
    }
    Ok(out)
}

/// softmax(row) in place, on AVX-512 where the CPU has it (the crate is built for baseline x86-64, SSE2).
fn softmax_in_place(row: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked just above).
        return unsafe { softmax_avx512(row) };
    }
    softmax(row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn softmax_avx512(row: &mut [f32]) {
    softmax(row)
}

/// softmax(row) in place, max-subtracted. Running maxima and sums in lanes (one AVX-512 vector natively, two
/// simd128 ones in wasm), so the loops vectorize (a single running sum or `f32::max` keeps them scalar; in wasm
/// `f32::max` is a libm call).
#[inline(always)]
fn softmax(row: &mut [f32]) {
    const LANES: usize = if cfg!(target_arch = "wasm32") { 8 } else { 16 };
    let split = row.len() - row.len() % LANES;
    let mut lanes = [f32::NEG_INFINITY; LANES];
    for chunk in row[..split].chunks_exact(LANES) {
        lanes.iter_mut().zip(chunk).for_each(|(m, &s)| *m = if s > *m { s } else { *m });
    }
    let max = row[split..].iter().chain(&lanes).fold(f32::NEG_INFINITY, |m, &s| if s > m { s } else { m });
    let mut sums = [0f32; LANES];
    for chunk in row[..split].chunks_exact_mut(LANES) {
        sums.iter_mut().zip(chunk).for_each(|(sum, s)| {
            *s = exp(*s - max);
            *sum += *s;
        });
    }
    let tail: f32 = row[split..]
        .iter_mut()
        .map(|s| {
            *s = exp(*s - max);
            *s
        })
        .sum();
    let inv = 1.0 / (sums.iter().sum::<f32>() + tail);
    row.iter_mut().for_each(|s| *s *= inv);
}
