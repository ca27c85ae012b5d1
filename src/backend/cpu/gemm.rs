//! The CPU backend's matrix products: one bounds-checked GEMM (the `gemm` crate's kernel, split over rayon's pool
//! one part per thread), and the products of `linear`.

use super::{SharedOut, THREADED};
use crate::error::{Error, Result};

/// C (m×n, row stride c_rs) = scale · A (m×k) · B (k×n), or C += … when `accumulate` (C holds a bias),
/// operands given by slices and strides.
pub(super) struct Gemm<'a> {
    pub(super) m: usize,
    pub(super) n: usize,
    pub(super) k: usize,
    pub(super) a: &'a [f32],
    pub(super) a_rs: usize,
    pub(super) a_cs: usize,
    pub(super) b: &'a [f32],
    pub(super) b_rs: usize,
    pub(super) b_cs: usize,
    pub(super) c_rs: usize,
    pub(super) scale: f32,
    pub(super) accumulate: bool,
    /// Let the kernel split the product across threads (one big product); false inside tasks that
    /// already run in parallel.
    pub(super) parallel: bool,
}

/// Multiply-adds (m·n·k) below which a product is one kernel call on the calling thread: waking the pool costs
/// more than it saves (tens of µs in a browser, where a worker sleeps in `Atomics.wait`).
const PARALLEL_MIN_WORK: usize = 1 << 19;
/// Columns (or rows) per part are a multiple of this, so each part keeps whole microkernel tiles.
const PART_ALIGN: usize = 16;

/// A bounds-checked GEMM. With `parallel` (and threads, and enough work) the product is cut into one part per
/// thread along its longer side of C — columns when n ≥ m, else rows — and each part is one single-threaded call
/// of the `gemm` crate's kernel: one fork-join per product (the crate's own threading joins once per k-block,
/// which in a browser cost more than it gained). Parts of fixed size, the same on any number of threads, were
/// measured too: 8% slower on one thread natively, 2.5× slower in the single-threaded wasm module on the `full`
/// UNet step. The price of one part per thread: the crate's cache blocking depends on the shape it is given, so
/// a different number of threads sums some products in different k-blocks (the threaded and single-threaded
/// wasm modules' images differ by a few 1/255 at a few pixels; `tests/browser/threads.test.mjs` bounds it).
pub(super) fn sgemm(g: Gemm<'_>, c: &mut [f32]) -> Result<()> {
    let last = |rows: usize, rs: usize, cols: usize, cs: usize| (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs;
    if g.m == 0 || g.n == 0 || g.k == 0 {
        return Ok(());
    }
    if last(g.m, g.a_rs, g.k, g.a_cs) >= g.a.len()
        || last(g.k, g.b_rs, g.n, g.b_cs) >= g.b.len()
        || last(g.m, g.c_rs, g.n, 1) >= c.len()
    {
        return Err(Error::Model("an internal matrix product was given operands that are too small".into()));
    }
    let threads = if g.parallel && THREADED { rayon::current_num_threads() } else { 1 };
    let (long, along_n) = if g.n >= g.m { (g.n, true) } else { (g.m, false) };
    let parts = threads.min(long / PART_ALIGN).max(1);
    if parts == 1 || g.m * g.n * g.k < PARALLEL_MIN_WORK {
        // SAFETY: checked above: every element of A, B and C the kernel touches is inside its slice.
        unsafe { gemm_part(&g, c.as_mut_ptr(), 0..g.m, 0..g.n) };
        return Ok(());
    }
    let step = long.div_ceil(parts).next_multiple_of(PART_ALIGN);
    let out = SharedOut(c.as_mut_ptr());
    use rayon::prelude::*;
    (0..long.div_ceil(step)).into_par_iter().for_each(|p| {
        let range = p * step..((p + 1) * step).min(long);
        let (rows, cols) = if along_n { (0..g.m, range) } else { (range, 0..g.n) };
        // SAFETY: as above for the whole product; the parts write disjoint blocks of C (disjoint column ranges, or
        // disjoint row ranges), so no two threads touch one element, and `c` stays borrowed until all have joined.
        unsafe { gemm_part(&g, out.get(), rows, cols) };
    });
    Ok(())
}

/// The block C[rows, cols] of `g`'s product, by one single-threaded call of the `gemm` crate.
///
/// # Safety
/// `g`'s operands must hold every element the whole m×n×k product reads, `c` must point at C's first element
/// with room for the whole product, and no other thread may touch C[rows, cols] meanwhile.
unsafe fn gemm_part(g: &Gemm<'_>, c: *mut f32, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>) {
    let (i0, j0) = (rows.start, cols.start);
    gemm::gemm(
        rows.len(),
        cols.len(),
        g.k,
        c.add(i0 * g.c_rs + j0),
        1,
        g.c_rs as isize,
        g.accumulate,
        g.a.as_ptr().add(i0 * g.a_rs),
        g.a_cs as isize,
        g.a_rs as isize,
        g.b.as_ptr().add(j0 * g.b_cs),
        g.b_cs as isize,
        g.b_rs as isize,
        if g.accumulate { 1.0 } else { 0.0 },
        g.scale,
        false,
        false,
        false,
        gemm::Parallelism::None,
    );
}

/// Y (m, out) = X (m, k) · Wᵀ + b, with W stored (out, k): one GEMM spread over the threads.
pub(super) fn linear_rows(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    m: usize,
    k: usize,
    out: usize,
) -> Result<Vec<f32>> {
    // the GEMM adds onto the bias
    let mut y = vec![0f32; m * out];
    if let Some(bias) = bias {
        y.chunks_mut(out).for_each(|r| r.copy_from_slice(bias));
    }
    let (a, b) = (x, w);
    let accumulate = bias.is_some();
    let gemm = Gemm {
        m,
        n: out,
        k,
        a,
        a_rs: k,
        a_cs: 1,
        b,
        b_rs: 1,
        b_cs: k,
        c_rs: out,
        scale: 1.0,
        accumulate,
        parallel: true,
    };
    sgemm(gemm, &mut y)?;
    Ok(y)
}
