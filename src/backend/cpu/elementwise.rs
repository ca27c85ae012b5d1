//! The CPU backend's elementwise ops on rayon's pool, the one pool the whole backend uses: same-shape binary ops,
//! affine, clamp and the activations. candle's own versions run natively on a second, spinning thread pool of
//! candle's (beside rayon's: two pools on the same cores; measured 16% of `unclip generate` on 2 cores), and on
//! one thread in the browser's threaded module, which has no such pool.

use super::{par_chunks, CpuTensor};
use crate::backend::{Activation, Tensor};
use crate::error::Result;

/// Elements per parallel task: a pass over fewer runs on the calling thread (waking the pool costs more). In the
/// browser a pool worker sleeps in `Atomics.wait` and wakes far slower than a native thread: there the bundled
/// model's activations (~10⁵ values) ran slower split than on one thread (measured: the `full` UNet step at 2
/// threads took 604 ms split at 16 Ki, 457 ms unsplit), so only passes of 2²⁰ values and more are split.
const CHUNK: usize = if cfg!(target_arch = "wasm32") { 1 << 20 } else { 1 << 14 };

/// f(x) elementwise, as a new tensor of x's shape.
pub(super) fn unary(x: &CpuTensor, f: impl Fn(f32) -> f32 + Sync + Send) -> Result<CpuTensor> {
    let out = x.with_data(|src| {
        let mut out = vec![0f32; src.len()];
        par_chunks(&mut out, CHUNK, |i, dst| {
            dst.iter_mut().zip(&src[i * CHUNK..]).for_each(|(d, &v)| *d = f(v));
        });
        Ok(out)
    })?;
    CpuTensor::from_host(out, x.dims())
}

/// f(a, b) elementwise over two tensors of one shape.
pub(super) fn binary(a: &CpuTensor, b: &CpuTensor, f: impl Fn(f32, f32) -> f32 + Sync + Send) -> Result<CpuTensor> {
    debug_assert_eq!(a.dims(), b.dims());
    let out = a.with_data(|x| {
        b.with_data(|y| {
            let mut out = vec![0f32; x.len()];
            par_chunks(&mut out, CHUNK, |i, dst| {
                let (x, y) = (&x[i * CHUNK..], &y[i * CHUNK..]);
                dst.iter_mut().zip(x.iter().zip(y)).for_each(|(d, (&u, &v))| *d = f(u, v));
            });
            Ok(out)
        })
    })?;
    CpuTensor::from_host(out, a.dims())
}

/// The activation of one value, in candle's scalar forms (so results match what these ops gave before, bit for bit
/// where the compiler keeps the order): SiLU x·σ(x), GELU with erf (torch's default), QuickGELU x·σ(1.702x).
/// std's `exp`, not the backend's fast one: unCLIP's first step divides ε̂ by √ᾱ ≈ 5e-5, and 2-ulp differences
/// through 25 steps moved the tiny model's image by 2.4e-3 (its conformance bound is 2e-3).
#[inline(always)]
pub(super) fn activate(act: Activation, v: f32) -> f32 {
    match act {
        Activation::Silu => v / (1.0 + (-v).exp()),
        Activation::Gelu => (candle_core::cpu::erf::erf_f32(v * std::f32::consts::FRAC_1_SQRT_2) + 1.0) * 0.5 * v,
        Activation::QuickGelu => v * ((-(v * 1.702)).exp() + 1.0).recip(),
    }
}
