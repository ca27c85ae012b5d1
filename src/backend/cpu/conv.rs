//! The CPU backend's convolution: read straight from the padded image where this CPU has a kernel for it
//! (`direct_conv.rs`), else a GEMM over im2col bands.

use super::direct_conv::{self, Isa};
use super::gemm::{sgemm, Gemm};
use super::{par_chunks, THREADED};
use crate::backend::shape::Conv2d;
use crate::error::Result;

/// y (N, O, OH, OW) = conv(x (N, C, H, W), kernel (O, C, kh, kw)) + bias.
pub(super) fn conv2d(x: &[f32], kernel: &[f32], bias: Option<&[f32]>, g: &Conv2d) -> Result<Vec<f32>> {
    match Isa::detect() {
        Some(isa) if direct_conv::applies(isa, g) => Ok(direct_conv::conv2d(isa, x, kernel, bias, g)),
        _ => im2col_conv2d(x, kernel, bias, g),
    }
}

/// Implicit GEMM: a k×k kernel unrolls bands of output rows into (C·k·k, rows·W') columns (im2col, bounded
/// to 16 MB however large the image), and (O, C·k·k) · columns fills those output columns of the NCHW result
/// (n, o, oh, ow); a 1×1 kernel needs no unrolling. `kernel` (O, C·kh·kw), `bias` (O).
///
/// A batch of at least as many images as threads (the CFG pair on two threads) runs one image per thread
/// (`one_image_per_thread`); otherwise each image's im2col and GEMM are spread over the threads.
pub(super) fn im2col_conv2d(x: &[f32], kernel: &[f32], bias: Option<&[f32]>, g: &Conv2d) -> Result<Vec<f32>> {
    let Conv2d { n, c, h, w, o, kh, kw, pad, oh, ow } = *g;
    let ck = c * kh * kw;
    // the GEMMs add onto the bias
    let mut y = vec![0f32; n * o * oh * ow];
    if y.is_empty() {
        return Ok(y); // an empty batch, no output channels, or an image smaller than the kernel
    }
    if let Some(bias) = bias {
        for (row, v) in y.chunks_mut(oh * ow).enumerate() {
            v.fill(bias[row % o]);
        }
    }
    if THREADED && rayon::current_num_threads() > 1 && n >= rayon::current_num_threads() {
        one_image_per_thread(x, kernel, &mut y, g)?;
        return Ok(y);
    }
    // This loop and `one_image_per_thread`'s differ only in the GEMM's threading, and stay written out twice:
    // with both calling one per-image function (a runtime or a const flag), the single-threaded wasm module's
    // `full` UNet step took 1.3-2.2x as long in Chromium until V8 had run it for seconds (its baseline tier:
    // `--js-flags=--no-liftoff` ran every layout at the same speed); bisected with bench/browser_unet_step.mjs.
    for (img, out) in y.chunks_mut(o * oh * ow).enumerate() {
        let image = &x[img * c * h * w..][..c * h * w];
        if kh == 1 && kw == 1 && pad == 0 {
            conv_block(kernel, image, out, ck, oh * ow, oh * ow, true)?;
            continue;
        }
        let band = (IM2COL_MAX_ELEMS / (ck * ow).max(1)).clamp(1, oh.max(1));
        for y0 in (0..oh).step_by(band) {
            let y1 = (y0 + band).min(oh);
            let cols = im2col(image, g, y0, y1);
            conv_block(kernel, &cols, &mut out[y0 * ow..], ck, (y1 - y0) * ow, oh * ow, true)?;
        }
    }
    Ok(y)
}

/// Each image of the batch on a thread of its own, its im2col and GEMM unsplit: one fork-join per layer instead
/// of one per im2col and per GEMM of every image, which on the emoji models' small feature maps cost more than
/// the split GEMMs saved (docs/benchmarks.md, browser threads).
fn one_image_per_thread(x: &[f32], kernel: &[f32], y: &mut [f32], g: &Conv2d) -> Result<()> {
    use rayon::prelude::*;
    let Conv2d { c, h, w, o, kh, kw, pad, oh, ow, .. } = *g;
    let ck = c * kh * kw;
    y.par_chunks_mut(o * oh * ow).enumerate().try_for_each(|(img, out)| {
        let image = &x[img * c * h * w..][..c * h * w];
        if kh == 1 && kw == 1 && pad == 0 {
            return conv_block(kernel, image, out, ck, oh * ow, oh * ow, false);
        }
        let band = (IM2COL_MAX_ELEMS / (ck * ow).max(1)).clamp(1, oh.max(1));
        for y0 in (0..oh).step_by(band) {
            let y1 = (y0 + band).min(oh);
            let cols = im2col(image, g, y0, y1);
            conv_block(kernel, &cols, &mut out[y0 * ow..], ck, (y1 - y0) * ow, oh * ow, false)?;
        }
        Ok(())
    })
}

/// Most im2col floats held at once (16 MB): large images are unrolled in bands of output rows.
const IM2COL_MAX_ELEMS: usize = 4 << 20;

/// Unrolls output rows y0..y1 of one CHW image into (C·kh·kw, (y1−y0)·ow) columns, zero-padded.
fn im2col(x: &[f32], g: &Conv2d, y0: usize, y1: usize) -> Vec<f32> {
    let Conv2d { c, h, w, kh, kw, pad, ow, .. } = *g;
    let n_cols = (y1 - y0) * ow;
    let mut cols = vec![0f32; c * kh * kw * n_cols];
    par_chunks(&mut cols, n_cols, |row, out| {
        let (ch, ky, kx) = (row / (kh * kw), (row / kw) % kh, row % kw);
        let plane = &x[ch * h * w..][..h * w];
        // output column ox reads input column ox + kx − pad; keep the in-range span
        let x0 = pad.saturating_sub(kx);
        let x1 = (w + pad).saturating_sub(kx).min(ow);
        for oy in y0..y1 {
            let iy = oy + ky;
            if iy < pad || iy - pad >= h || x0 >= x1 {
                continue; // a padding row stays zero
            }
            let src = &plane[(iy - pad) * w..][..w];
            let dst = (oy - y0) * ow;
            out[dst + x0..dst + x1].copy_from_slice(&src[x0 + kx - pad..x1 + kx - pad]);
        }
    });
    cols
}

/// out[:, ..n] (O rows, `hw` apart) += kernel (O, ck) · cols (ck, n), as one GEMM that `sgemm` spreads over
/// the threads if `parallel` (else on this thread, inside a task that already runs in parallel).
fn conv_block(
    kernel: &[f32],
    cols: &[f32],
    out: &mut [f32],
    ck: usize,
    n: usize,
    hw: usize,
    parallel: bool,
) -> Result<()> {
    let o = kernel.len() / ck.max(1);
    let gemm = Gemm {
        m: o,
        n,
        k: ck,
        a: kernel,
        a_rs: ck,
        a_cs: 1,
        b: cols,
        b_rs: n,
        b_cs: 1,
        c_rs: hw,
        scale: 1.0,
        accumulate: true,
        parallel,
    };
    sgemm(gemm, out)
}
