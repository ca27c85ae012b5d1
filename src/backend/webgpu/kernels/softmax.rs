//! Attention: per (batch, head), q·kᵀ (gemm.wgsl), the row softmax with scale and bias (softmax.wgsl), then
//! the scores · v (gemm.wgsl), in blocks of queries when all scores would not fit at once.

use bytemuck::Zeroable;

use super::super::context::Kernel;
use super::super::shader::{shader, wgsl_params};
use super::super::tensor::GpuTensor;
use super::gemm::{product, GemmParams};
use crate::backend::shape::Attention;
use crate::error::Result;

shader!("Softmax", "softmax.wgsl", SoftmaxParams::wgsl, [write scores, read bias]);

wgsl_params! {
    struct SoftmaxParams {
        /// N · heads · block rows of Lk scores
        rows: u32, lk: u32,
        /// queries per (batch, head) in this launch, starting at query q0
        block: u32, heads: u32, q0: u32,
        /// the bias's broadcast (N|1, Lq|1); bias_n is 0 when the bias is absent
        bias_n: u32, bias_q: u32,
        scale: f32,
    }
}

/// Most attention scores held at once (32 MiB): longer sequences go through attention in blocks of queries.
const MAX_SCORES: usize = 8 << 20;

/// Invocations per workgroup of softmax.wgsl (one per row).
const ROWS_PER_WORKGROUP: usize = 64;

pub(in super::super) fn attention(
    q: &GpuTensor,
    k: &GpuTensor,
    v: &GpuTensor,
    bias: Option<&GpuTensor>,
    g: &Attention,
) -> Result<GpuTensor> {
    let Attention { n, lq, lk, c, heads, .. } = *g;
    let d = g.head_dim();
    let (bias_n, bias_q) = g.bias.unwrap_or((0, 0));
    // per (batch, head) b = (i, h): scores_b (block, Lk) = q_b · k_bᵀ, the softmax, then o_b = scores_b · v_b,
    // every operand read in place through strides: q_b[r, e] = q[i, q0 + r, h·d + e], the same for k, v, o
    let out = q.output(&g.dims())?;
    let block = (MAX_SCORES / (n * heads * lk).max(1)).clamp(1, lq.max(1));
    let (nh, scale) = (n * heads, 1.0 / (d as f32).sqrt());
    let u = |v: usize| v as u32;
    for q0 in (0..lq).step_by(block) {
        let bq = block.min(lq - q0);
        let scores = q.output(&[nh, bq, lk])?;
        let batches = GemmParams { m: u(bq), batch: u(nh), inner: u(heads), ..Zeroable::zeroed() };
        let qk = GemmParams {
            n: u(lk),
            k: u(d),
            a_base: u(q0 * c),
            a_rs: u(c),
            a_so: u(lq * c),
            a_si: u(d),
            b_ks: 1,
            b_ns: u(c),
            b_so: u(lk * c),
            b_si: u(d),
            c_rs: u(lk),
            c_so: u(heads * bq * lk),
            c_si: u(bq * lk),
            ..batches
        };
        product(q, k, qk, &scores)?;
        let p = SoftmaxParams {
            rows: u(nh * bq),
            lk: u(lk),
            block: u(bq),
            heads: u(heads),
            q0: u(q0),
            bias_n: u(bias_n),
            bias_q: u(bias_q),
            scale,
        };
        // without a bias, q is bound in its place (never read)
        let bias = bias.map_or(q.buffer(), |b| b.buffer());
        let groups = (nh * bq).div_ceil(ROWS_PER_WORKGROUP);
        q.launch(Kernel::new(&SHADER, "softmax_rows"), &p, &[scores.buffer(), bias], groups)?;
        let pv = GemmParams {
            n: u(d),
            k: u(lk),
            a_rs: u(lk),
            a_so: u(heads * bq * lk),
            a_si: u(bq * lk),
            b_ks: u(c),
            b_ns: 1,
            b_so: u(lk * c),
            b_si: u(d),
            c_base: u(q0 * c),
            c_rs: u(c),
            c_so: u(lq * c),
            c_si: u(d),
            ..batches
        };
        product(&scores, v, pv, &out)?;
    }
    Ok(out)
}
