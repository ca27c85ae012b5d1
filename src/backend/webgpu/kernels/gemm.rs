//! Matrix products (gemm.wgsl): `linear` (weights decoded from their stored type), batched `matmul`, and
//! `conv2d` as an implicit GEMM; attention's two products go through [`product`] too.

use bytemuck::Zeroable;

use super::super::context::Kernel;
use super::super::shader::{op_code_constants, shader, wgsl_params};
use super::super::tensor::{GpuMatrix, GpuTensor};
use super::copy;
use crate::backend::op_code::{op_code, OpCode};
use crate::backend::shape::{broadcast_strides, Conv2d, Linear, Matmul, StridedView};
use crate::error::Result;
use crate::gguf::GgmlType;

shader!("Gemm", "gemm.wgsl", declarations, [read a, read_words w, read bias, write out]);

op_code! {
    /// The kernel's `MODE`: what A and B are.
    enum GemmMode as "MODE" {
        Linear,
        Matmul,
        Conv2d,
    }
}

op_code! {
    /// The kernel's `WTYPE`: the stored type of a weight operand.
    #[allow(non_camel_case_types)]
    enum WeightType as "WTYPE" {
        F32,
        F16,
        Q8_0,
        Q4_0,
    }
}

wgsl_params! {
    /// Sizes and strides of a batch of products; see gemm.wgsl.
    pub(super) struct GemmParams {
        pub(super) m: u32, pub(super) n: u32, pub(super) k: u32, pub(super) batch: u32,
        pub(super) has_bias: u32, pub(super) scales_offset: u32, pub(super) inner: u32,
        pub(super) a_base: u32, pub(super) a_rs: u32, pub(super) a_so: u32, pub(super) a_si: u32,
        pub(super) c_base: u32, pub(super) c_rs: u32, pub(super) c_so: u32, pub(super) c_si: u32,
        pub(super) b_ks: u32, pub(super) b_ns: u32, pub(super) b_so: u32, pub(super) b_si: u32,
        pub(super) channels: u32, pub(super) height: u32, pub(super) width: u32,
        pub(super) kh: u32, pub(super) kw: u32, pub(super) pad: u32, pub(super) out_width: u32,
        pub(super) _pad0: u32,
    }
}

fn declarations() -> String {
    [GemmParams::wgsl(), op_code_constants::<GemmMode>(), op_code_constants::<WeightType>()].concat()
}

/// gemm.wgsl's tile: TM rows, TN columns (64, or 32 for narrow products).
const TM: usize = 64;

impl GpuMatrix {
    fn weight_type(&self) -> WeightType {
        match self.dtype {
            GgmlType::F32 => WeightType::F32,
            GgmlType::F16 => WeightType::F16,
            GgmlType::Q8_0 => WeightType::Q8_0,
            GgmlType::Q4_0 => WeightType::Q4_0,
        }
    }
}

/// Records the kernel in `mode` into `out`, with `a` as its `a` and `w` (a weight of stored type `wtype`, or a
/// tensor's f32 bits) as its `w`.
fn gemm(
    a: &GpuTensor,
    w: &wgpu::Buffer,
    wtype: WeightType,
    mode: GemmMode,
    bias: Option<&GpuTensor>,
    p: GemmParams,
    out: &GpuTensor,
) -> Result<()> {
    let tn = if p.n <= 32 { 32 } else { 64 };
    let groups = (p.m as usize).div_ceil(TM) * (p.n as usize).div_ceil(tn) * p.batch as usize;
    let constants = [("MODE", mode.code()), ("WTYPE", wtype.code()), ("TN", tn as u32)];
    // without a bias, the input is bound in its place (read-only aliasing is allowed; it is never read)
    let bias = bias.map_or(a.buffer(), |b| b.buffer());
    a.launch(Kernel::with(&SHADER, "main", constants), &p, &[a.buffer(), w, bias, out.buffer()], groups)
}

/// A product of f32 tensors (`matmul`, attention's): `a` · `b` batched as `p` says.
pub(super) fn product(a: &GpuTensor, b: &GpuTensor, p: GemmParams, out: &GpuTensor) -> Result<()> {
    gemm(a, b.buffer(), WeightType::F32, GemmMode::Matmul, None, p, out)
}

pub(in super::super) fn linear(x: &GpuTensor, w: &GpuMatrix, b: Option<&GpuTensor>, g: &Linear) -> Result<GpuTensor> {
    let p = GemmParams {
        m: g.m as u32,
        n: g.n as u32,
        k: g.k as u32,
        batch: 1,
        has_bias: b.is_some() as u32,
        scales_offset: w.scales_offset,
        inner: 1,
        a_rs: g.k as u32,
        c_rs: g.n as u32,
        ..Zeroable::zeroed()
    };
    let out = x.output(&g.dims)?;
    gemm(x, &w.buffer, w.weight_type(), GemmMode::Linear, b, p, &out)?;
    Ok(out)
}

pub(in super::super) fn matmul(x: &GpuTensor, rhs: &GpuTensor, g: &Matmul) -> Result<GpuTensor> {
    let Matmul { m, k, n, batch, .. } = *g;
    // an operand either covers the whole batch, or is shared by all of it, or is expanded first
    let operand = |t: &GpuTensor, rows: usize, cols: usize| -> Result<(GpuTensor, usize)> {
        let lead = &t.dims[..t.dims.len() - 2];
        if lead.iter().product::<usize>() == batch && lead == &g.batch_dims[g.batch_dims.len() - lead.len()..] {
            Ok((t.clone(), rows * cols))
        } else if lead.iter().product::<usize>() == 1 {
            Ok((t.clone(), 0))
        } else {
            let dims: Vec<usize> = g.batch_dims.iter().copied().chain([rows, cols]).collect();
            let view = StridedView { strides: broadcast_strides(&t.dims, &dims), dims, offset: 0 };
            Ok((copy::strided_view(t, &view)?, rows * cols))
        }
    };
    let (a, a_stride) = operand(x, m, k)?;
    let (b, b_stride) = operand(rhs, k, n)?;
    let p = GemmParams {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        batch: batch as u32,
        inner: 1,
        a_rs: k as u32,
        a_so: a_stride as u32,
        c_rs: n as u32,
        c_so: (m * n) as u32,
        b_ks: n as u32,
        b_ns: 1,
        b_so: b_stride as u32,
        ..Zeroable::zeroed()
    };
    let out = a.output(&g.dims)?;
    product(&a, &b, p, &out)?;
    Ok(out)
}

pub(in super::super) fn conv2d(x: &GpuTensor, w: &GpuMatrix, b: Option<&GpuTensor>, g: &Conv2d) -> Result<GpuTensor> {
    let Conv2d { n, c, h, w: wid, o, kh, kw, pad, oh, ow } = *g;
    let p = GemmParams {
        m: o as u32,
        n: (oh * ow) as u32,
        k: (c * kh * kw) as u32,
        batch: n as u32,
        has_bias: b.is_some() as u32,
        scales_offset: w.scales_offset,
        inner: 1,
        c_rs: (oh * ow) as u32,
        c_so: (o * oh * ow) as u32,
        channels: c as u32,
        height: h as u32,
        width: wid as u32,
        kh: kh as u32,
        kw: kw as u32,
        pad: pad as u32,
        out_width: ow as u32,
        ..Zeroable::zeroed()
    };
    let out = x.output(&g.dims())?;
    gemm(x, &w.buffer, w.weight_type(), GemmMode::Conv2d, b, p, &out)?;
    Ok(out)
}
