//! Pointwise ops (elementwise.wgsl): `unary`, and `binary` with NumPy broadcasting through the checked strides.

use bytemuck::Zeroable;

use super::super::context::Kernel;
use super::super::shader::{op_code_constants, shader, wgsl_params};
use super::super::tensor::GpuTensor;
use super::{check_rank, pack, WORKGROUP};
use crate::backend::op_code::{op_code, OpCode};
use crate::backend::ops::{BinaryOp, UnaryOp};
use crate::backend::shape::Broadcast;
use crate::backend::Activation;
use crate::error::Result;

shader!("Elementwise", "elementwise.wgsl", declarations, [read x, write out, read y]);

op_code! {
    /// `unary`'s op (`BinaryOp` is `binary`'s).
    enum UnaryCode as "UNARY" {
        Affine,
        Clamp,
        Silu,
        Gelu,
        QuickGelu,
    }
}

wgsl_params! {
    struct ElementwiseParams {
        /// output elements; a `UnaryCode` or `BinaryOp`
        n: u32, op: u32,
        /// affine: mul and add; clamp: min and max
        a: f32, b: f32,
        rank: u32, _pad0: u32, _pad1: u32, _pad2: u32,
        shape: [[u32; 4]; 2],
        stride_x: [[u32; 4]; 2],
        stride_y: [[u32; 4]; 2],
    }
}

fn declarations() -> String {
    [ElementwiseParams::wgsl(), op_code_constants::<UnaryCode>(), op_code_constants::<BinaryOp>()].concat()
}

pub(in super::super) fn unary(x: &GpuTensor, op: UnaryOp) -> Result<GpuTensor> {
    let (code, a, b) = match op {
        UnaryOp::Affine { mul, add } => (UnaryCode::Affine, mul, add),
        UnaryOp::Clamp { min, max } => (UnaryCode::Clamp, min, max),
        UnaryOp::Activation(Activation::Silu) => (UnaryCode::Silu, 0.0, 0.0),
        UnaryOp::Activation(Activation::Gelu) => (UnaryCode::Gelu, 0.0, 0.0),
        UnaryOp::Activation(Activation::QuickGelu) => (UnaryCode::QuickGelu, 0.0, 0.0),
    };
    let out = x.output(&x.dims)?;
    let n = x.elem_count();
    let p = ElementwiseParams { n: n as u32, op: code.code(), a, b, ..Zeroable::zeroed() };
    x.launch(Kernel::new(&SHADER, "unary"), &p, &[x.buffer(), out.buffer()], n.div_ceil(WORKGROUP))?;
    Ok(out)
}

pub(in super::super) fn binary(x: &GpuTensor, y: &GpuTensor, op: BinaryOp, g: &Broadcast) -> Result<GpuTensor> {
    check_rank(&g.dims)?;
    let out = x.output(&g.dims)?;
    let n = out.elem_count();
    let p = ElementwiseParams {
        n: n as u32,
        op: op.code(),
        rank: g.dims.len() as u32,
        shape: pack(&g.dims),
        stride_x: pack(&g.lhs_strides),
        stride_y: pack(&g.rhs_strides),
        ..Zeroable::zeroed()
    };
    let buffers = [x.buffer(), out.buffer(), y.buffer()];
    x.launch(Kernel::new(&SHADER, "binary"), &p, &buffers, n.div_ceil(WORKGROUP))?;
    Ok(out)
}
