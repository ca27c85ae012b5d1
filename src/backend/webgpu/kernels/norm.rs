//! Normalisations (norm.wgsl), one workgroup per normalised row: GroupNorm (with the modulation and SiLU
//! fused), LayerNorm (a case of it), and l2 normalisation.

use bytemuck::Zeroable;

use super::super::context::Kernel;
use super::super::shader::{shader, wgsl_params};
use super::super::tensor::GpuTensor;
use crate::backend::ops::Affine;
use crate::backend::shape::{GroupNorm, Rows};
use crate::error::Result;

shader!("Norm", "norm.wgsl", NormParams::wgsl, [
    read x, write out, read gamma, read beta, read mod_scale, read mod_shift,
]);

wgsl_params! {
    struct NormParams {
        /// group_norm: N·G rows (l2_normalize: rows of the last dim) of `count` elements
        rows: u32, count: u32,
        /// group_norm: H·W, C/G, G
        plane: u32, channels_per_group: u32, groups: u32,
        silu: u32, eps: f32, modulated: u32,
    }
}

pub(in super::super) fn group_norm(x: &GpuTensor, a: Affine<'_, GpuTensor>, g: &GroupNorm) -> Result<GpuTensor> {
    let p = NormParams {
        rows: (g.n * g.groups) as u32,
        count: (g.channels_per_group() * g.plane) as u32,
        plane: g.plane as u32,
        channels_per_group: g.channels_per_group() as u32,
        groups: g.groups as u32,
        silu: g.silu as u32,
        eps: a.eps,
        modulated: a.modulation.is_some() as u32,
    };
    // without a modulation, γ and β are bound in its place (never read)
    let (scale, shift) = a.modulation.unwrap_or((a.gamma, a.beta));
    norm(x, "group_norm", p, &[a.gamma, a.beta, scale, shift])
}

/// A LayerNorm is `group_norm` with one group of `len` one-value planes per row.
pub(in super::super) fn layer_norm(x: &GpuTensor, a: Affine<'_, GpuTensor>, g: &Rows) -> Result<GpuTensor> {
    let (rows, len) = (g.rows as u32, g.len as u32);
    let p =
        NormParams { rows, count: len, plane: 1, channels_per_group: len, groups: 1, eps: a.eps, ..Zeroable::zeroed() };
    norm(x, "group_norm", p, &[a.gamma, a.beta, a.gamma, a.beta])
}

pub(in super::super) fn l2_normalize(x: &GpuTensor, g: &Rows) -> Result<GpuTensor> {
    let p = NormParams { rows: g.rows as u32, count: g.len as u32, ..Zeroable::zeroed() };
    norm(x, "l2_normalize", p, &[])
}

/// One workgroup per row; `extra` are the buffers bound after x and out (γ, β, and for a group norm the
/// modulation's scale and shift).
fn norm(x: &GpuTensor, entry: &'static str, p: NormParams, extra: &[&GpuTensor]) -> Result<GpuTensor> {
    let out = x.output(&x.dims)?;
    let mut buffers = vec![x.buffer(), out.buffer()];
    buffers.extend(extra.iter().map(|t| t.buffer()));
    x.launch(Kernel::new(&SHADER, entry), &p, &buffers, p.rows as usize)?;
    Ok(out)
}
