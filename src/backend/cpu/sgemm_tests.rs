//! Tests of the CPU backend's f32 GEMM (`sgemm`, the `gemm` crate's strided kernel: AVX2+FMA on x86_64,
//! simd128 in wasm) against a naive f64 triple loop, over every operand layout its callers use.

use super::{sgemm, Gemm};

/// The backend's `sgemm` as the tests call it: the operands always fit here.
fn sgemm_ok(g: &Gemm<'_>, c: &mut [f32]) {
    let g = Gemm { ..*g };
    sgemm(g, c).expect("operands fit");
}

/// A small deterministic generator (xorshift, from a nonzero state), values in [−1, 1); the convolution tests
/// use it too.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub(super) fn values(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0).collect()
    }
}

/// How the callers lay operands out (see `conv_block`, `linear_rows`, `fused_attention`), plus the
/// remaining combinations of row/column-major A and B and a fully strided pair.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// A row-major, B row-major (convolutions, P·V).
    RowRow,
    /// A row-major, B column-major (linear layers' Wᵀ, Q·Kᵀ).
    RowCol,
    /// A column-major, B row-major.
    ColRow,
    /// A column-major, B column-major.
    ColCol,
    /// Both with padded strides in both directions.
    Strided,
}

const LAYOUTS: [Layout; 5] = [Layout::RowRow, Layout::RowCol, Layout::ColRow, Layout::ColCol, Layout::Strided];

struct Case {
    m: usize,
    n: usize,
    k: usize,
    a: Vec<f32>,
    a_rs: usize,
    a_cs: usize,
    b: Vec<f32>,
    b_rs: usize,
    b_cs: usize,
    c: Vec<f32>,
    c_rs: usize,
    scale: f32,
    accumulate: bool,
    parallel: bool,
}

impl Case {
    fn new(
        rng: &mut Rng,
        (m, n, k): (usize, usize, usize),
        layout: Layout,
        scale: f32,
        accumulate: bool,
        parallel: bool,
    ) -> Self {
        let ((a_rs, a_cs), (b_rs, b_cs)) = match layout {
            Layout::RowRow => ((k, 1), (n, 1)),
            Layout::RowCol => ((k, 1), (1, k)),
            Layout::ColRow => ((1, m), (n, 1)),
            Layout::ColCol => ((1, m), (1, k)),
            Layout::Strided => ((2 * k + 3, 2), (3, 3 * k + 1)),
        };
        let len = |rows: usize, rs: usize, cols: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs + 1;
        let c_rs = n + rng.below(3);
        let a = rng.values(len(m, a_rs, k, a_cs));
        let b = rng.values(len(k, b_rs, n, b_cs));
        // a C that is not accumulated into must not be read: fill it with NaN
        let c = if accumulate { rng.values(len(m, c_rs, n, 1)) } else { vec![f32::NAN; len(m, c_rs, n, 1)] };
        Case { m, n, k, a, a_rs, a_cs, b, b_rs, b_cs, c, c_rs, scale, accumulate, parallel }
    }

    fn gemm(&self) -> Gemm<'_> {
        Gemm {
            m: self.m,
            n: self.n,
            k: self.k,
            a: &self.a,
            a_rs: self.a_rs,
            a_cs: self.a_cs,
            b: &self.b,
            b_rs: self.b_rs,
            b_cs: self.b_cs,
            c_rs: self.c_rs,
            scale: self.scale,
            accumulate: self.accumulate,
            parallel: self.parallel,
        }
    }

    /// Runs `kernel` and compares C with the f64 triple loop: every element of the m×n block within
    /// a relative tolerance, and every element outside it (C's row padding) untouched.
    fn check(&self, name: &str, kernel: impl Fn(&Gemm<'_>, &mut [f32])) {
        let mut c = self.c.clone();
        kernel(&self.gemm(), &mut c);
        for i in 0..self.m {
            for j in 0..self.n {
                let (mut sum, mut mag) = (0f64, 0f64);
                for p in 0..self.k {
                    let prod =
                        self.a[i * self.a_rs + p * self.a_cs] as f64 * self.b[p * self.b_rs + j * self.b_cs] as f64;
                    sum += prod;
                    mag += prod.abs();
                }
                let old = if self.accumulate { self.c[i * self.c_rs + j] as f64 } else { 0.0 };
                let want = self.scale as f64 * sum + old;
                let got = c[i * self.c_rs + j] as f64;
                let tol = 1e-5 * (self.scale.abs() as f64 * mag + old.abs()) + 1e-6;
                assert!(
                    (got - want).abs() <= tol,
                    "{name}: C[{i}, {j}] = {got}, want {want} (m {} n {} k {}, A strides ({}, {}), B strides ({}, {}), c_rs {}, scale {}, accumulate {}, parallel {})",
                    self.m, self.n, self.k, self.a_rs, self.a_cs, self.b_rs, self.b_cs, self.c_rs, self.scale,
                    self.accumulate, self.parallel
                );
            }
            for j in self.n..self.c_rs {
                let at = i * self.c_rs + j;
                if at < c.len() {
                    assert!(c[at].to_bits() == self.c[at].to_bits(), "{name}: wrote C[{i}, {j}] outside the product");
                }
            }
        }
    }
}

/// Shapes: 1×1, edges of common register tiles (14/16 rows, 32 columns: one less, equal, one more),
/// depths around a 256 packing block, and a few products like the model's (small channel counts,
/// attention blocks), plus random ones.
fn shapes(rng: &mut Rng) -> Vec<(usize, usize, usize)> {
    let mut s = vec![
        (1, 1, 1),
        (1, 1, 7),
        (1, 37, 5),
        (13, 1, 9),
        (13, 31, 17),
        (14, 32, 8),
        (15, 33, 255),
        (28, 64, 256),
        (29, 65, 257),
        (3, 100, 513),
        (6, 200, 72),
        (64, 77, 64),
        (120, 130, 40),
        (113, 600, 20),
    ];
    for _ in 0..12 {
        s.push((1 + rng.below(60), 1 + rng.below(140), 1 + rng.below(300)));
    }
    s
}

fn run_all(name: &str, kernel: impl Fn(&Gemm<'_>, &mut [f32]) + Copy) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut cases = 0;
    for shape in shapes(&mut rng) {
        for layout in LAYOUTS {
            for (scale, accumulate) in [(1.0, false), (1.0, true), (0.125, false), (-1.5, true)] {
                for parallel in [false, true] {
                    Case::new(&mut rng, shape, layout, scale, accumulate, parallel).check(name, kernel);
                    cases += 1;
                }
            }
        }
    }
    println!("{name}: {cases} products matched the f64 reference");
}

#[test]
fn sgemm_matches_f64_reference() {
    run_all("sgemm", sgemm_ok);
}

/// Large enough that the kernel splits the product across threads and blocks its depth.
#[test]
fn sgemm_large_parallel_product() {
    let mut rng = Rng(7);
    for (layout, accumulate) in [(Layout::RowRow, true), (Layout::RowCol, false)] {
        let case = Case::new(&mut rng, (130, 4100, 600), layout, 0.5, accumulate, true);
        case.check("sgemm large", sgemm_ok);
    }
}

/// `sgemm` rejects operands that are too small instead of reading past them.
#[test]
fn sgemm_rejects_short_operands() {
    let a = vec![0f32; 5];
    let b = vec![0f32; 6];
    let mut c = vec![0f32; 4];
    let g = Gemm {
        m: 2,
        n: 2,
        k: 3,
        a: &a,
        a_rs: 3,
        a_cs: 1,
        b: &b,
        b_rs: 2,
        b_cs: 1,
        c_rs: 2,
        scale: 1.0,
        accumulate: false,
        parallel: false,
    };
    assert!(super::sgemm(g, &mut c).is_err());
}

/// A product cut into one part per thread (by columns when n ≥ m, by rows otherwise, an uneven last part) is right
/// on 1, 2 and 3 threads.
#[test]
fn sgemm_parts_on_any_number_of_threads() {
    let mut rng = Rng(11);
    let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().expect("a rayon pool");
    for (mnk, layout, accumulate) in [
        ((70, 3001, 300), Layout::RowRow, true),
        ((2999, 45, 257), Layout::RowCol, false),
        ((513, 517, 129), Layout::ColRow, true),
    ] {
        let case = Case::new(&mut rng, mnk, layout, 0.75, accumulate, true);
        for threads in [1, 2, 3] {
            pool(threads).install(|| case.check(&format!("sgemm on {threads} threads"), sgemm_ok));
        }
    }
}
