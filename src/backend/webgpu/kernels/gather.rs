//! Embedding rows (gather.wgsl).

use super::super::context::Kernel;
use super::super::shader::{shader, wgsl_params};
use super::super::tensor::GpuTensor;
use super::WORKGROUP;
use crate::backend::shape::Gather;
use crate::error::Result;

shader!("Gather", "gather.wgsl", GatherParams::wgsl, [read table, read_words ids, write rows]);

wgsl_params! {
    struct GatherParams {
        /// rows out · d; the row length
        n: u32, d: u32,
        _pad0: u32, _pad1: u32,
    }
}

pub(in super::super) fn gather_rows(table: &GpuTensor, ids: &[u32], g: &Gather) -> Result<GpuTensor> {
    let out = table.output(&[ids.len(), g.d])?;
    let ids_buffer = table.ctx().upload(bytemuck::cast_slice(ids), false);
    let n = ids.len() * g.d;
    let p = GatherParams { n: n as u32, d: g.d as u32, _pad0: 0, _pad1: 0 };
    let buffers = [table.buffer(), &ids_buffer, out.buffer()];
    table.launch(Kernel::new(&SHADER, "gather_rows"), &p, &buffers, n.div_ceil(WORKGROUP))?;
    Ok(out)
}
