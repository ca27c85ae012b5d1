//! The CPU backend's convolution: implicit GEMM over im2col bands.

use super::gemm::{sgemm, Gemm};
use super::{par_chunks, THREADED};
use crate::backend::shape::Conv2d;
use crate::error::Result;

/// Implicit GEMM: a k×k kernel unrolls bands of output rows into (C·k·k, rows·W') columns (im2col, bounded
/// to 16 MB however large the image), and (O, C·k·k) · columns fills those output columns of the NCHW result
/// (n, o, oh, ow); a 1×1 kernel needs no unrolling. `kernel` (O, C·kh·kw), `bias` (O).
///
/// A batch of at least as many images as threads (the CFG pair on two threads) runs one image per task, each
/// unrolled and multiplied on its thread: one fork-join per layer instead of one per im2col and per GEMM of
/// every image, which on the small feature maps of the emoji models cost more than the split GEMMs saved.
pub(super) fn conv2d(x: &[f32], kernel: &[f32], bias: Option<&[f32]>, g: &Conv2d) -> Result<Vec<f32>> {
    let Conv2d { n, c, h, w, o, oh, ow, .. } = *g;
    // the GEMMs add onto the bias
    let mut y = vec![0f32; n * o * oh * ow];
    if let Some(bias) = bias {
        for (row, v) in y.chunks_mut(oh * ow).enumerate() {
            v.fill(bias[row % o]);
        }
    }
    let threads = if THREADED { rayon::current_num_threads() } else { 1 };
    let image = |img: usize| &x[img * c * h * w..][..c * h * w];
    if threads > 1 && n >= threads {
        use rayon::prelude::*;
        y.par_chunks_mut(o * oh * ow).enumerate().try_for_each(|(img, out)| conv_image(image(img), kernel, out, g, false))
    } else {
        y.chunks_mut(o * oh * ow).enumerate().try_for_each(|(img, out)| conv_image(image(img), kernel, out, g, true))?;
        Ok(())
    }
    .map(|()| y)
}

/// One CHW image's convolution added onto `out` (O, oh·ow); `parallel`: spread each step over the threads.
fn conv_image(image: &[f32], kernel: &[f32], out: &mut [f32], g: &Conv2d, parallel: bool) -> Result<()> {
    let Conv2d { c, kh, kw, pad, oh, ow, .. } = *g;
    let ck = c * kh * kw;
    if kh == 1 && kw == 1 && pad == 0 {
        return conv_block(kernel, image, out, ck, 0, oh * ow, oh * ow, parallel);
    }
    let band = (IM2COL_MAX_ELEMS / (ck * ow).max(1)).clamp(1, oh.max(1));
    for y0 in (0..oh).step_by(band) {
        let y1 = (y0 + band).min(oh);
        let cols = im2col(image, g, y0, y1, parallel);
        conv_block(kernel, &cols, out, ck, y0 * ow, (y1 - y0) * ow, oh * ow, parallel)?;
    }
    Ok(())
}

/// Most im2col floats held at once (16 MB): large images are unrolled in bands of output rows.
const IM2COL_MAX_ELEMS: usize = 4 << 20;

/// Unrolls output rows y0..y1 of one CHW image into (C·kh·kw, (y1−y0)·ow) columns, zero-padded.
fn im2col(x: &[f32], g: &Conv2d, y0: usize, y1: usize, parallel: bool) -> Vec<f32> {
    let Conv2d { c, h, w, kh, kw, pad, ow, .. } = *g;
    let n_cols = (y1 - y0) * ow;
    let mut cols = vec![0f32; c * kh * kw * n_cols];
    let unroll_row = |row: usize, out: &mut [f32]| {
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
    };
    if parallel {
        par_chunks(&mut cols, n_cols, unroll_row);
    } else {
        cols.chunks_mut(n_cols.max(1)).enumerate().for_each(|(row, out)| unroll_row(row, out));
    }
    cols
}

/// out[:, col0..col0+n] (O rows of length hw) += kernel (O, ck) · cols (ck, n), as one GEMM (spread over the
/// threads when `parallel`).
#[allow(clippy::too_many_arguments)]
fn conv_block(
    kernel: &[f32],
    cols: &[f32],
    out: &mut [f32],
    ck: usize,
    col0: usize,
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
    sgemm(gemm, &mut out[col0..])
}
