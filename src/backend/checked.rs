//! The model-facing [`Tensor`], implemented once for every backend's [`Ops`]: each op checks its operands'
//! shapes in [`shape`] and hands the checked geometry to the backend. (Both traits name their ops alike, so
//! the backend's are called as `Ops::op(…)`.)

use super::ops::{Affine, BinaryOp, Ops, StepCoefficients, StepOperands, UnaryOp};
use super::{shape, Activation, Tensor};
use crate::error::Result;

impl<T: Ops> Tensor for T {
    type Matrix = T::Matrix;

    fn dims(&self) -> &[usize] {
        Ops::dims(self)
    }

    async fn to_vec(&self) -> Result<Vec<f32>> {
        Ops::to_vec(self).await
    }

    fn reshape(&self, shape: &[usize]) -> Result<Self> {
        shape::reshape(Ops::dims(self), shape)?;
        Ops::reshape(self, shape)
    }

    fn transpose(&self, d0: usize, d1: usize) -> Result<Self> {
        Ops::transpose(self, &shape::transpose(Ops::dims(self), d0, d1)?)
    }

    fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Self> {
        Ops::narrow(self, &shape::narrow(Ops::dims(self), dim, start, len)?)
    }

    fn cat(parts: &[&Self], dim: usize) -> Result<Self> {
        let dims: Vec<&[usize]> = parts.iter().map(|p| Ops::dims(*p)).collect();
        Ops::cat(parts, &shape::cat(&dims, dim)?)
    }

    fn gather_rows(&self, ids: &[u32]) -> Result<Self> {
        Ops::gather_rows(self, ids, &shape::gather_rows(Ops::dims(self), ids)?)
    }

    fn add(&self, rhs: &Self) -> Result<Self> {
        binary(self, rhs, BinaryOp::Add)
    }

    fn sub(&self, rhs: &Self) -> Result<Self> {
        binary(self, rhs, BinaryOp::Sub)
    }

    fn mul(&self, rhs: &Self) -> Result<Self> {
        binary(self, rhs, BinaryOp::Mul)
    }

    fn affine(&self, mul: f32, add: f32) -> Result<Self> {
        Ops::unary(self, UnaryOp::Affine { mul, add })
    }

    fn clamp(&self, min: f32, max: f32) -> Result<Self> {
        Ops::unary(self, UnaryOp::Clamp { min, max })
    }

    fn activation(&self, act: Activation) -> Result<Self> {
        Ops::unary(self, UnaryOp::Activation(act))
    }

    fn l2_normalize(&self) -> Result<Self> {
        Ops::l2_normalize(self, &shape::rows("l2_normalize", Ops::dims(self))?)
    }

    fn linear(&self, w: &T::Matrix, b: Option<&Self>) -> Result<Self> {
        let g = shape::linear(Ops::dims(self), T::matrix_dims(w), b.map(Ops::dims))?;
        Ops::linear(self, w, b, &g)
    }

    fn matmul(&self, rhs: &Self) -> Result<Self> {
        Ops::matmul(self, rhs, &shape::matmul(Ops::dims(self), Ops::dims(rhs))?)
    }

    fn conv2d(&self, w: &T::Matrix, b: Option<&Self>, padding: usize) -> Result<Self> {
        let g = shape::conv2d(Ops::dims(self), T::matrix_dims(w), b.map(Ops::dims), padding)?;
        Ops::conv2d(self, w, b, &g)
    }

    fn group_norm(&self, groups: usize, affine: Affine<'_, Self>, act: Option<Activation>) -> Result<Self> {
        let modulation_dims = affine.modulation.map(|(scale, shift)| (Ops::dims(scale), Ops::dims(shift)));
        let g = shape::group_norm(Ops::dims(self), groups, modulation_dims, act)?;
        Ops::group_norm(self, affine, &g)
    }

    fn layer_norm(&self, gamma: &Self, beta: &Self, eps: f32) -> Result<Self> {
        let g = shape::layer_norm(Ops::dims(self), Ops::dims(gamma), Ops::dims(beta))?;
        Ops::layer_norm(self, Affine { gamma, beta, eps, modulation: None }, &g)
    }

    fn attention(q: &Self, k: &Self, v: &Self, heads: usize, bias: Option<&Self>) -> Result<Self> {
        let g = shape::attention(Ops::dims(q), Ops::dims(k), Ops::dims(v), heads, bias.map(Ops::dims))?;
        Ops::attention(q, k, v, bias, &g)
    }

    fn avg_pool2x2(&self) -> Result<Self> {
        Ops::avg_pool2x2(self, &shape::nchw("avg_pool2x2", Ops::dims(self))?)
    }

    fn upsample_nearest2x(&self) -> Result<Self> {
        Ops::upsample_nearest2x(self, &shape::nchw("upsample_nearest2x", Ops::dims(self))?)
    }

    fn scheduler_step(x: StepOperands<'_, Self>, c: &StepCoefficients) -> Result<(Self, Self)> {
        let (v, z) = (x.log_variance_frac.map(Ops::dims), x.noise.map(Ops::dims));
        let n = shape::denoising_step(Ops::dims(x.model), v, Ops::dims(x.sample), z, c)?;
        Ops::denoising_step(x, c, n)
    }
}

fn binary<T: Ops>(lhs: &T, rhs: &T, op: BinaryOp) -> Result<T> {
    Ops::binary(lhs, rhs, op, &shape::broadcast(Ops::dims(lhs), Ops::dims(rhs))?)
}
