//! Data movement (copy.wgsl): strided copies for `transpose`, `narrow`, `cat` and a matmul operand's broadcast.

use super::super::context::Kernel;
use super::super::shader::{shader, wgsl_params};
use super::super::tensor::GpuTensor;
use super::{check_rank, pack, WORKGROUP};
use crate::backend::shape::{strides, Cat, StridedView};
use crate::error::Result;

shader!("Copy", "copy.wgsl", CopyParams::wgsl, [read src, write dst]);

wgsl_params! {
    struct CopyParams {
        n: u32, rank: u32, src_offset: u32, dst_offset: u32,
        shape: [[u32; 4]; 2],
        src_stride: [[u32; 4]; 2],
        dst_stride: [[u32; 4]; 2],
    }
}

/// Records dst[to.0 + Σ c·to.1] = src[from.0 + Σ c·from.1] over every index c of `shape`.
fn copy_into(
    src: &GpuTensor,
    dst: &GpuTensor,
    shape: &[usize],
    from: (usize, &[usize]),
    to: (usize, &[usize]),
) -> Result<()> {
    check_rank(shape)?;
    let n: usize = shape.iter().product();
    let p = CopyParams {
        n: n as u32,
        rank: shape.len() as u32,
        src_offset: from.0 as u32,
        dst_offset: to.0 as u32,
        shape: pack(shape),
        src_stride: pack(from.1),
        dst_stride: pack(to.1),
    };
    src.launch(Kernel::new(&SHADER, "strided_copy"), &p, &[src.buffer(), dst.buffer()], n.div_ceil(WORKGROUP))
}

/// A contiguous copy of the view of `x`.
pub(in super::super) fn strided_view(x: &GpuTensor, view: &StridedView) -> Result<GpuTensor> {
    let out = x.output(&view.dims)?;
    copy_into(x, &out, &view.dims, (view.offset, &view.strides), (0, &strides(&view.dims)))?;
    Ok(out)
}

/// `parts` copied one after another along `g.dim`.
pub(in super::super) fn cat(parts: &[&GpuTensor], g: &Cat) -> Result<GpuTensor> {
    let out = parts[0].output(&g.dims)?;
    let dst = strides(&g.dims);
    for (p, offset) in parts.iter().zip(&g.offsets) {
        copy_into(p, &out, &p.dims, (0, &strides(&p.dims)), (offset * dst[g.dim], &dst))?;
    }
    Ok(out)
}
