//! The CPU backend's k×k convolution (stride 1) read straight from the zero-padded image: no im2col buffer and
//! no packing (the `gemm` crate's path copied each 3 × 3 input nine times and packed it again).
//!
//! With the image padded to P (C, HP, WP) = (C, H + 2·pad, W + 2·pad), output pixel (oy, ox) of tap (c, ky, kx)
//! reads P[c·HP·WP + ky·WP + kx + oy·WP + ox]: every tap is one offset into P, and a run of output pixels along
//! a row reads a run of P. The microkernel keeps an MR × NV tile of the output in SIMD registers — MR output
//! channels by NV vectors of LANES pixels along output rows — and for each of the C·kh·kw taps loads NV vectors
//! of P and broadcasts MR weights straight from the kernel's (O, C·kh·kw) rows: MR·NV fused multiply-adds per
//! MR + NV loads. Rows whose output width is not a multiple of LANES take the im2col path (`conv.rs`).
//!
//! Each output is one sum over the taps in the kernel's order whatever the tiling and the number of threads, so
//! the result does not depend on the thread count.

use super::{SharedOut, THREADED};
use crate::backend::shape::Conv2d;

/// What the microkernel needs of an instruction set: LANES f32 per vector.
trait Simd {
    const LANES: usize;
    type V: Copy;
    unsafe fn splat(v: f32) -> Self::V;
    unsafe fn load(p: *const f32) -> Self::V;
    /// a·b + c
    unsafe fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    unsafe fn store(p: *mut f32, v: Self::V);
}

/// The instruction sets this module has a kernel for, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Isa {
    /// x86-64 AVX-512F: 16 lanes, 32 registers (6 × 4 accumulators).
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// wasm simd128 (every wasm module this crate builds): 4 lanes, no fused multiply-add; V8 gives it the
    /// host's 16 vector registers (3 × 3 accumulators).
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    Simd128,
    /// Tests only: plain arrays of 4 lanes in simd128's 3 × 3 tiles, so that tiling is checked natively too.
    #[cfg(test)]
    Arrays4,
}

impl Isa {
    /// The best instruction set this CPU has, if any (detected at run time).
    pub(super) fn detect() -> Option<Isa> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Some(Isa::Avx512);
            }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return Some(Isa::Simd128);
        #[allow(unreachable_code)]
        None
    }

    fn lanes(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => 16,
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128 => 4,
            #[cfg(test)]
            Isa::Arrays4 => 4,
        }
    }
}

/// Whether `conv2d` takes this convolution: a kernel larger than 1 × 1 (a 1 × 1 one is a plain GEMM) over rows
/// whose output width is a whole number of vectors, with something to compute (an empty batch or an image smaller
/// than the kernel is left to the im2col path, which returns the empty answer).
pub(super) fn applies(isa: Isa, g: &Conv2d) -> bool {
    let nothing = g.n == 0 || g.c == 0 || g.o == 0 || g.oh == 0 || g.ow == 0;
    g.kh * g.kw > 1 && g.ow.is_multiple_of(isa.lanes()) && !nothing
}

/// y (N, O, OH, OW) = conv(x (N, C, H, W), kernel (O, C, kh, kw)) + bias, on `isa` (which this CPU must have:
/// `Isa::detect`) for a convolution that `applies`.
pub(super) fn conv2d(isa: Isa, x: &[f32], kernel: &[f32], bias: Option<&[f32]>, g: &Conv2d) -> Vec<f32> {
    assert!(applies(isa, g) && (Isa::detect() == Some(isa) || cfg!(test)));
    let Conv2d { n, c, h, w, o, kh, kw, pad, oh, ow } = *g;
    let (hp, wp) = (h + 2 * pad, w + 2 * pad);
    // every tap's offset into one padded image, in the kernel's (c, ky, kx) order
    let taps: Vec<usize> =
        (0..c).flat_map(|ch| (0..kh).flat_map(move |ky| (0..kw).map(move |kx| ch * hp * wp + ky * wp + kx))).collect();
    let mut y = vec![0f32; n * o * oh * ow];
    let plan = Plan { taps: &taps, kernel, bias, o, oh, ow, wp, vectors: oh * ow / isa.lanes() };
    let threads = if THREADED { rayon::current_num_threads() } else { 1 };
    // parts of each image's vectors: one image per thread when the batch has enough of them
    let parts = threads.div_ceil(n).max(1).min(plan.vectors);
    let per_part = plan.vectors.div_ceil(parts);
    // an image split into parts is padded once, before them; a whole image inside its task (no second
    // fork-join per layer, and the padded copy is still in cache when the tiles read it)
    let shared = (pad > 0 && parts > 1).then(|| {
        let mut padded = vec![0f32; n * c * hp * wp];
        super::par_chunks(&mut padded, hp * wp, |plane, out| pad_plane(&x[plane * h * w..][..h * w], out, g));
        padded
    });
    let out = SharedOut(y.as_mut_ptr());
    let task = |t: usize| {
        let (img, part) = (t / parts, t % parts);
        let vecs = part * per_part..((part + 1) * per_part).min(plan.vectors);
        let own;
        let image = match &shared {
            Some(padded) => &padded[img * c * hp * wp..][..c * hp * wp],
            None if pad == 0 => &x[img * c * h * w..][..c * h * w],
            None => {
                own = pad_image(&x[img * c * h * w..][..c * h * w], g);
                &own[..]
            }
        };
        // SAFETY: `y` holds n·O·OH·OW floats and this task writes only image `img`'s vectors `vecs` of every
        // output channel, disjoint from every other task's; `isa` is available (asserted above).
        unsafe { plan.run(isa, image, out.get().add(img * o * oh * ow), vecs) };
    };
    if THREADED && n * parts > 1 {
        use rayon::prelude::*;
        (0..n * parts).into_par_iter().for_each(task);
    } else {
        (0..n * parts).for_each(task);
    }
    y
}

/// One image (C, H, W) zero-padded by `pad` on every side: (C, H + 2·pad, W + 2·pad).
fn pad_image(x: &[f32], g: &Conv2d) -> Vec<f32> {
    let (h, w, hp, wp) = (g.h, g.w, g.h + 2 * g.pad, g.w + 2 * g.pad);
    let mut p = vec![0f32; g.c * hp * wp];
    for (plane, out) in p.chunks_mut(hp * wp).enumerate() {
        pad_plane(&x[plane * h * w..][..h * w], out, g);
    }
    p
}

/// One plane (H, W) into a zeroed (H + 2·pad, W + 2·pad) one.
fn pad_plane(src: &[f32], out: &mut [f32], g: &Conv2d) {
    let (w, pad, wp) = (g.w, g.pad, g.w + 2 * g.pad);
    for (row, dst) in src.chunks(w).zip(out[pad * wp..].chunks_mut(wp)) {
        dst[pad..pad + w].copy_from_slice(row);
    }
}

/// One convolution's operands, shared by its tasks.
struct Plan<'a> {
    /// Offset of each tap (c, ky, kx) into a padded image.
    taps: &'a [usize],
    /// (O, taps)
    kernel: &'a [f32],
    bias: Option<&'a [f32]>,
    o: usize,
    oh: usize,
    ow: usize,
    /// Padded row length.
    wp: usize,
    /// Vectors of output pixels per output channel: OH·OW / LANES.
    vectors: usize,
}

impl Plan<'_> {
    /// Output vectors `vecs` of every channel of one image (`y` at its channel 0).
    ///
    /// # Safety
    /// `y` must have room for O·OH·OW floats, no other thread may write those vectors meanwhile, and this CPU
    /// must have `isa`.
    unsafe fn run(&self, isa: Isa, image: &[f32], y: *mut f32, vecs: std::ops::Range<usize>) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::avx512(self, image, y, vecs),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128 => wasm::simd128(self, image, y, vecs),
            #[cfg(test)]
            Isa::Arrays4 => self.tiles::<Arrays4, 3, 3>(image, y, vecs),
        }
    }

    /// The tiles: for each block of MR output channels, NV vectors at a time.
    #[inline(always)]
    unsafe fn tiles<S: Simd, const MR: usize, const NV: usize>(
        &self,
        image: &[f32],
        y: *mut f32,
        vecs: std::ops::Range<usize>,
    ) {
        let per_row = self.ow / S::LANES;
        let (k, plane) = (self.taps.len(), self.oh * self.ow);
        for o0 in (0..self.o).step_by(MR) {
            // a last block of fewer than MR channels repeats its last channel (computed, not stored twice)
            let rows: [usize; MR] = std::array::from_fn(|r| (o0 + r).min(self.o - 1));
            let weights: [*const f32; MR] = rows.map(|row| self.kernel.as_ptr().add(row * k));
            let bias: [f32; MR] = rows.map(|row| self.bias.map_or(0.0, |b| b[row]));
            let stored = (self.o - o0).min(MR);
            for v0 in vecs.clone().step_by(NV) {
                // the tile's vectors; past the end of the range the last one repeats
                let at: [(usize, usize); NV] = std::array::from_fn(|i| {
                    let v = (v0 + i).min(vecs.end - 1);
                    let (oy, ox) = (v / per_row, (v % per_row) * S::LANES);
                    (oy * self.wp + ox, oy * self.ow + ox)
                });
                let acc = tile::<S, MR, NV>(self.taps, &weights, bias, image.as_ptr(), at.map(|a| a.0));
                for (r, acc) in acc.iter().enumerate().take(stored) {
                    for (i, &(_, dst)) in at.iter().enumerate() {
                        S::store(y.add((o0 + r) * plane + dst), acc[i]);
                    }
                }
            }
        }
    }
}

/// One tile: for MR output channels and NV vectors of pixels (each at offset `at` of the padded image), the
/// sum over every tap of weight × input, plus the bias.
#[inline(always)]
unsafe fn tile<S: Simd, const MR: usize, const NV: usize>(
    taps: &[usize],
    weights: &[*const f32; MR],
    bias: [f32; MR],
    image: *const f32,
    at: [usize; NV],
) -> [[S::V; NV]; MR] {
    let mut acc = [[S::splat(0.0); NV]; MR];
    for r in 0..MR {
        acc[r] = [S::splat(bias[r]); NV];
    }
    for (t, &tap) in taps.iter().enumerate() {
        let src = image.add(tap);
        let x: [S::V; NV] = std::array::from_fn(|i| S::load(src.add(at[i])));
        for r in 0..MR {
            let wv = S::splat(*weights[r].add(t));
            for i in 0..NV {
                acc[r][i] = S::mul_add(wv, x[i], acc[r][i]);
            }
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Plan, Simd};
    use std::arch::x86_64::*;
    use std::ops::Range;

    struct Avx512;
    impl Simd for Avx512 {
        const LANES: usize = 16;
        type V = __m512;
        #[inline(always)]
        unsafe fn splat(v: f32) -> __m512 {
            _mm512_set1_ps(v)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m512 {
            _mm512_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn mul_add(a: __m512, b: __m512, c: __m512) -> __m512 {
            _mm512_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m512) {
            _mm512_storeu_ps(p, v)
        }
    }

    /// 6 channels × 4 vectors: 24 of the 32 zmm registers accumulate.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn avx512(plan: &Plan<'_>, image: &[f32], y: *mut f32, vecs: Range<usize>) {
        plan.tiles::<Avx512, 6, 4>(image, y, vecs)
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use super::{Plan, Simd};
    use std::arch::wasm32::*;
    use std::ops::Range;

    struct Simd128;
    impl Simd for Simd128 {
        const LANES: usize = 4;
        type V = v128;
        #[inline(always)]
        unsafe fn splat(v: f32) -> v128 {
            f32x4_splat(v)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> v128 {
            v128_load(p.cast())
        }
        #[inline(always)]
        unsafe fn mul_add(a: v128, b: v128, c: v128) -> v128 {
            f32x4_add(f32x4_mul(a, b), c)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: v128) {
            v128_store(p.cast(), v)
        }
    }

    /// 3 channels × 3 vectors: 9 accumulators, 3 inputs, a weight and a product in V8's 16 registers.
    pub(super) unsafe fn simd128(plan: &Plan<'_>, image: &[f32], y: *mut f32, vecs: Range<usize>) {
        plan.tiles::<Simd128, 3, 3>(image, y, vecs)
    }
}

/// `Isa::Arrays4`'s vectors.
#[cfg(test)]
struct Arrays4;
#[cfg(test)]
impl Simd for Arrays4 {
    const LANES: usize = 4;
    type V = [f32; 4];
    unsafe fn splat(v: f32) -> [f32; 4] {
        [v; 4]
    }
    unsafe fn load(p: *const f32) -> [f32; 4] {
        p.cast::<[f32; 4]>().read_unaligned()
    }
    unsafe fn mul_add(a: [f32; 4], b: [f32; 4], c: [f32; 4]) -> [f32; 4] {
        std::array::from_fn(|i| a[i] * b[i] + c[i])
    }
    unsafe fn store(p: *mut f32, v: [f32; 4]) {
        p.cast::<[f32; 4]>().write_unaligned(v)
    }
}
