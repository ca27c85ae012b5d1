//! A re-implementation of PyTorch's CPU random generator, so that a seed gives the same starting
//! noise (and the same per-step noise) as `diffusers`' `UnCLIPPipeline` run with
//! `generator=torch.Generator("cpu").manual_seed(seed)` (docs/math.md §13, `tests/fixtures/reference/torch_randn_ref.py`).
//!
//! Three layers have to match torch, not just the bit generator:
//! 1. the engine: MT19937 with `init_genrand(seed & 0xffff_ffff)` (ATen `MT19937RNGEngine.h`);
//! 2. the uniform transform: `(u32 & 0xff_ffff) · 2⁻²⁴` for `f32`, `(u64 & (2⁵³−1)) · 2⁻⁵³` for `f64`
//!    (`TransformationHelper.h`, `uniform_real`);
//! 3. the kernel's blocking (`normal_kernel` in `ATen/native/cpu/DistributionTemplates.h`): tensors of
//!    16 or more elements use the 16-wide in-place Box–Muller `normal_fill`, smaller ones the scalar
//!    `f64` Box–Muller of `at::normal_distribution<double>` with its cached second sample.
//!
//! Torch's AVX2 kernel evaluates `log`/`sin`/`cos` with `avx_mathfun` approximations; this module uses
//! Rust's `f32` `ln`/`sin`/`cos` instead, so about 86% of values are bit-identical and the rest differ by a
//! few ulp (≤ 4.8e-7 absolute, docs/math.md §13; the golden latents here agree to ≤ 4.8e-7).

use std::fmt;

/// Number of 32-bit words in the MT19937 state.
const STATE_LEN: usize = 624;
/// The middle word offset of the MT19937 twist.
const SHIFT: usize = 397;
/// Bit mask of the `f32` mantissa (24 bits, implicit one included) used by `uniform_real<float>`.
const F32_MANTISSA_MASK: u32 = (1 << 24) - 1;
/// Bit mask of the `f64` mantissa (53 bits) used by `uniform_real<double>`.
const F64_MANTISSA_MASK: u64 = (1 << 53) - 1;
/// Below this many elements torch uses the scalar `f64` Box–Muller path instead of `normal_fill`.
const NORMAL_FILL_BLOCK: usize = 16;

/// Torch's CPU generator (`CPUGeneratorImpl`): an MT19937 engine plus the cached second sample of the
/// scalar `f64` Box–Muller transform.
///
/// `TorchGenerator::new(seed)` is `torch.Generator("cpu").manual_seed(seed)`; every [`randn`](Self::randn)
/// call advances the stream exactly as `torch.randn(shape, generator=g)` for a contiguous `float32` tensor
/// of that many elements.
#[derive(Clone)]
pub struct TorchGenerator {
    state: [u32; STATE_LEN],
    /// Index of the next state word to temper; `STATE_LEN` means "twist before the next draw".
    next: usize,
    /// `next_double_normal_sample` of `CPUGeneratorImpl`: the sine half of the last scalar Box–Muller pair.
    next_double_normal: Option<f64>,
}

impl fmt::Debug for TorchGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TorchGenerator")
            .field("next", &self.next)
            .field("next_double_normal", &self.next_double_normal)
            .finish_non_exhaustive()
    }
}

impl TorchGenerator {
    /// `torch.Generator("cpu").manual_seed(seed)`: `init_genrand` with the low 32 bits of `seed`
    /// (torch keeps the full 64-bit value only for `initial_seed()`), and no cached normal sample.
    pub fn new(seed: u64) -> Self {
        let mut state = [0u32; STATE_LEN];
        state[0] = (seed & 0xffff_ffff) as u32;
        for i in 1..STATE_LEN {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32.wrapping_mul(prev ^ (prev >> 30)).wrapping_add(i as u32);
        }
        Self { state, next: STATE_LEN, next_double_normal: None }
    }

    /// The next 32-bit output of the engine (`CPUGeneratorImpl::random()`).
    pub fn next_u32(&mut self) -> u32 {
        if self.next >= STATE_LEN {
            self.twist();
        }
        let mut y = self.state[self.next];
        self.next += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// `CPUGeneratorImpl::random64()`: two draws, the first one is the high word.
    fn next_u64(&mut self) -> u64 {
        let hi = u64::from(self.next_u32());
        let lo = u64::from(self.next_u32());
        (hi << 32) | lo
    }

    /// Regenerates all 624 state words (the standard MT19937 recurrence).
    fn twist(&mut self) {
        for i in 0..STATE_LEN {
            let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % STATE_LEN] & 0x7fff_ffff);
            let mut v = self.state[(i + SHIFT) % STATE_LEN] ^ (y >> 1);
            if y & 1 != 0 {
                v ^= 0x9908_b0df;
            }
            self.state[i] = v;
        }
        self.next = 0;
    }

    /// `uniform_real_distribution<float>(0, 1)`: a multiple of 2⁻²⁴ in `[0, 1)`, exact in `f32`.
    fn uniform_f32(&mut self) -> f32 {
        (self.next_u32() & F32_MANTISSA_MASK) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// `uniform_real_distribution<double>(0, 1)`: a multiple of 2⁻⁵³ in `[0, 1)` from two draws.
    fn uniform_f64(&mut self) -> f64 {
        (self.next_u64() & F64_MANTISSA_MASK) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `torch.randn(shape, generator=self)` for a contiguous `float32` tensor of `n` elements, in
    /// row-major order (the shape itself does not matter, only its element count).
    ///
    /// * `n ≥ 16` — `normal_fill` (docs/math.md §13): `n` uniforms, a 16-wide Box–Muller on every full block of 16,
    ///   and when `n % 16 != 0` the last 16 values are redrawn (16 new uniforms) and transformed again,
    ///   overwriting values the last full block already produced.
    /// * `n < 16` — one scalar `f64` Box–Muller pair per two values (`at::normal_distribution<double>`,
    ///   cast to `f32`); an odd count leaves the sine half cached in the generator for the next small draw,
    ///   exactly as torch does. (`normal_fill` neither reads nor clears that cache.)
    pub fn randn(&mut self, n: usize) -> Vec<f32> {
        if n < NORMAL_FILL_BLOCK {
            return (0..n).map(|_| self.normal_f64() as f32).collect();
        }
        let mut data: Vec<f32> = (0..n).map(|_| self.uniform_f32()).collect();
        for block in data.chunks_exact_mut(NORMAL_FILL_BLOCK) {
            box_muller_16(block);
        }
        if !n.is_multiple_of(NORMAL_FILL_BLOCK) {
            let tail = &mut data[n - NORMAL_FILL_BLOCK..];
            for value in tail.iter_mut() {
                *value = self.uniform_f32();
            }
            box_muller_16(tail);
        }
        data
    }

    /// `at::normal_distribution<double>(0, 1)` (`DistributionsHelper.h`): returns the cached sample if
    /// there is one, otherwise draws `u1, u2`, caches `r·sin θ` and returns `r·cos θ`.
    fn normal_f64(&mut self) -> f64 {
        if let Some(cached) = self.next_double_normal.take() {
            return cached;
        }
        let u1 = self.uniform_f64();
        let u2 = self.uniform_f64();
        let r = (-2.0 * (-u2).ln_1p()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u1;
        self.next_double_normal = Some(r * theta.sin());
        r * theta.cos()
    }
}

/// `normal_fill_16` (docs/math.md §13): Box–Muller in place on 16 uniforms, pairing `d[j]` with `d[j + 8]`.
/// All arithmetic is `f32`, and `θ = f32(2π)·u2` is rounded in `f32` like torch's AVX2 kernel.
fn box_muller_16(d: &mut [f32]) {
    let two_pi = std::f32::consts::TAU;
    for j in 0..NORMAL_FILL_BLOCK / 2 {
        let u1 = 1.0 - d[j];
        let u2 = d[j + NORMAL_FILL_BLOCK / 2];
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = two_pi * u2;
        d[j] = r * theta.cos();
        d[j + NORMAL_FILL_BLOCK / 2] = r * theta.sin();
    }
}

#[cfg(test)]
// Expected values are written with the 9 significant digits that round-trip an f32.
#[allow(clippy::excessive_precision)]
mod tests {
    use super::*;

    fn assert_close(got: &[f32], want: &[f32], tol: f32) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol, "index {i}: got {g}, want {w}");
        }
    }

    #[test]
    fn mt19937_reference_outputs_for_default_seed() {
        // std::mt19937 with the default seed 5489: the C++ standard fixes the 10000th output too.
        let mut g = TorchGenerator::new(5489);
        let first: Vec<u32> = (0..5).map(|_| g.next_u32()).collect();
        assert_eq!(first, [3499211612, 581869302, 3890346734, 3586334585, 545404204]);
        let mut g = TorchGenerator::new(5489);
        let ten_thousandth = (0..10_000).map(|_| g.next_u32()).last();
        assert_eq!(ten_thousandth, Some(4123659995));
    }

    #[test]
    fn seed_uses_low_32_bits() {
        let mut a = TorchGenerator::new(7);
        let mut b = TorchGenerator::new((1 << 32) + 7);
        assert_eq!(a.randn(40), b.randn(40));
    }

    // Values printed by torch: `torch.manual_seed(0); torch.randn(n)` (4 decimals).
    #[test]
    fn randn_matches_torch_printouts_at_block_boundaries() {
        assert_close(&TorchGenerator::new(0).randn(16)[..5], &[-1.1258, -1.1524, -0.2506, -0.4339, 0.8487], 1e-4);
        assert_close(&TorchGenerator::new(0).randn(17)[..5], &[-1.1258, -1.6959, 0.5667, 0.7935, 0.5988], 1e-4);
        assert_close(&TorchGenerator::new(0).randn(20)[..5], &[-1.1258, -1.1524, -0.2506, -0.4339, 0.5988], 1e-4);
        assert_close(
            &TorchGenerator::new(0).randn(16),
            &[
                -1.1258, -1.1524, -0.2506, -0.4339, 0.8487, 0.6920, -0.3160, -2.1152, 0.3223, -1.2633, 0.3500, 0.3081,
                0.1198, 1.2377, 1.1168, -0.2473,
            ],
            1e-4,
        );
    }

    #[test]
    fn randn_small_tensors_use_the_cached_f64_box_muller() {
        // torch.manual_seed(0); torch.randn(2, 3)
        let want = [1.5410, -0.2934, -2.1788, 0.5684, -1.0845, -1.3986];
        assert_close(&TorchGenerator::new(0).randn(6), &want, 1e-4);
        // An odd count leaves the sine half cached for the next small draw: 1 + 5 draws == one draw of 6.
        let mut g = TorchGenerator::new(0);
        let mut split = g.randn(1);
        split.extend(g.randn(5));
        assert_close(&split, &want, 1e-4);
    }

    /// `tests/fixtures/reference/torch_randn_ref.py` (numpy, libm `log`/`cos`/`sin` on `f32`), seed 0, shape
    /// (1, 3, 10, 7): 210 = 13·16 + 2, so the last 16 values are redrawn. Printed with `%.9g`.
    #[test]
    fn randn_tail_redraw_matches_python_reference() {
        let mut g = TorchGenerator::new(0);
        let got = g.randn(210);
        let want_head = [-1.12583983f32, -1.15236020, -0.250578582, -0.433878839];
        // Values 192..194 come from the last full block; 194..210 from the 16 redrawn uniforms.
        let want_tail = [
            -0.559630096f32,
            0.533471823,
            0.963374555,
            0.84032321,
            -1.25365472,
            0.986836135,
            -0.494655043,
            -1.28304303,
            0.438649207,
            -0.010704048,
            -0.66586113,
            0.565133691,
            0.287703395,
            -0.0333747864,
            -1.06188846,
            -0.114426173,
            0.195392907,
            -0.737109423,
        ];
        assert_close(&got[..4], &want_head, 1e-6);
        assert_close(&got[210 - 18..], &want_tail, 1e-6);
    }
}
