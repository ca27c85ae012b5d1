//! NCHW resampling by 2 (resample.wgsl).

use super::super::context::Kernel;
use super::super::shader::{shader, wgsl_params};
use super::super::tensor::GpuTensor;
use super::WORKGROUP;
use crate::backend::shape::Planes;
use crate::error::Result;

shader!("Resample", "resample.wgsl", ResampleParams::wgsl, [read x, write out]);

wgsl_params! {
    struct ResampleParams {
        /// output elements; the input's height and width
        n: u32, h: u32, w: u32,
        _pad0: u32,
    }
}

pub(in super::super) fn avg_pool2x2(x: &GpuTensor, g: &Planes) -> Result<GpuTensor> {
    resample(x, "avg_pool2x2", &[g.n, g.c, g.h / 2, g.w / 2], g)
}

pub(in super::super) fn upsample_nearest2x(x: &GpuTensor, g: &Planes) -> Result<GpuTensor> {
    resample(x, "upsample_nearest2x", &[g.n, g.c, 2 * g.h, 2 * g.w], g)
}

fn resample(x: &GpuTensor, entry: &'static str, dims: &[usize], g: &Planes) -> Result<GpuTensor> {
    let out = x.output(dims)?;
    let n = out.elem_count();
    let p = ResampleParams { n: n as u32, h: g.h as u32, w: g.w as u32, _pad0: 0 };
    x.launch(Kernel::new(&SHADER, entry), &p, &[x.buffer(), out.buffer()], n.div_ceil(WORKGROUP))?;
    Ok(out)
}
