//! Tests of the CPU backend's two convolutions against an f64 sum over the taps: the direct one (`direct_conv.rs`,
//! on the instruction set this CPU has, and in wasm simd128's tiles on plain arrays) and the im2col one
//! (`conv.rs`), which the convolutions the direct one does not take, and CPUs without AVX-512, still run.

use super::conv::im2col_conv2d;
use super::direct_conv::{applies, conv2d, Isa};
use super::sgemm_tests::Rng;
use crate::backend::shape::Conv2d;

/// `n` values in [−1, 1) from `seed` (`sgemm_tests`' generator).
fn values(seed: u64, n: usize) -> Vec<f32> {
    Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1).values(n)
}

fn shape(n: usize, c: usize, h: usize, w: usize, o: usize, k: usize, pad: usize) -> Conv2d {
    Conv2d { n, c, h, w, o, kh: k, kw: k, pad, oh: h + 2 * pad + 1 - k, ow: w + 2 * pad + 1 - k }
}

/// The convolution as an f64 sum, the padding tested by bounds.
fn reference(x: &[f32], kernel: &[f32], bias: Option<&[f32]>, g: &Conv2d) -> Vec<f32> {
    let Conv2d { n, c, h, w, o, kh, kw, pad, oh, ow } = *g;
    let mut y = vec![0f32; n * o * oh * ow];
    for img in 0..n {
        for oc in 0..o {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = bias.map_or(0.0, |b| b[oc] as f64);
                    for ch in 0..c {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let (iy, ix) = ((oy + ky) as isize - pad as isize, (ox + kx) as isize - pad as isize);
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let xv = x[((img * c + ch) * h + iy as usize) * w + ix as usize] as f64;
                                s += xv * kernel[((oc * c + ch) * kh + ky) * kw + kx] as f64;
                            }
                        }
                    }
                    y[((img * o + oc) * oh + oy) * ow + ox] = s as f32;
                }
            }
        }
    }
    y
}

fn worst(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max)
}

#[test]
fn both_convolutions_match_an_f64_sum() {
    // channel counts off the tile's 6 and 4, vector counts off its 4 and 3, batches below, at and above the
    // thread count, no padding and a 5 × 5 kernel
    let cases = [
        shape(1, 3, 16, 16, 7, 3, 1),
        shape(2, 5, 8, 32, 13, 3, 1),
        shape(3, 4, 5, 16, 1, 3, 1),
        shape(1, 2, 18, 18, 6, 3, 0),
        shape(2, 3, 9, 20, 5, 5, 2),
        shape(1, 16, 32, 32, 24, 3, 1),
        shape(2, 5, 8, 12, 13, 3, 1),
    ];
    let isa = Isa::detect();
    if isa.is_none() {
        eprintln!("this CPU has no AVX-512: only the im2col convolution is tested");
    }
    for (i, g) in cases.iter().enumerate() {
        let x = values(i as u64 + 1, g.n * g.c * g.h * g.w);
        let kernel = values(i as u64 + 100, g.o * g.c * g.kh * g.kw);
        let bias = values(i as u64 + 200, g.o);
        for bias in [None, Some(&bias[..])] {
            let want = reference(&x, &kernel, bias, g);
            let off = worst(&im2col_conv2d(&x, &kernel, bias, g).unwrap(), &want);
            assert!(off < 1e-4, "im2col {g:?} bias {}: off by {off}", bias.is_some());
            for isa in isa.into_iter().chain([Isa::Arrays4]).filter(|isa| applies(*isa, g)) {
                let off = worst(&conv2d(isa, &x, &kernel, bias, g), &want);
                assert!(off < 1e-4, "direct {isa:?} {g:?} bias {}: off by {off}", bias.is_some());
            }
        }
    }
}

/// Shapes with nothing to compute (an empty batch, no output channels, an image narrower or shorter than the
/// kernel) give the empty or zero-sized answer on every path, not a division by zero.
#[test]
fn empty_shapes_give_empty_outputs() {
    let narrow = Conv2d { n: 1, c: 2, h: 8, w: 1, o: 3, kh: 3, kw: 3, pad: 0, oh: 6, ow: 0 };
    let short = Conv2d { n: 1, c: 2, h: 1, w: 8, o: 3, kh: 3, kw: 3, pad: 0, oh: 0, ow: 6 };
    for g in [shape(0, 3, 16, 16, 7, 3, 1), shape(1, 3, 16, 16, 0, 3, 1), narrow, short] {
        let x = values(1, g.n * g.c * g.h * g.w);
        let kernel = values(2, g.o * g.c * g.kh * g.kw);
        let bias = values(3, g.o);
        let want = g.n * g.o * g.oh * g.ow;
        assert_eq!(super::conv::conv2d(&x, &kernel, Some(&bias), &g).unwrap().len(), want, "{g:?}");
        assert_eq!(im2col_conv2d(&x, &kernel, Some(&bias), &g).unwrap().len(), want, "{g:?}");
        for isa in Isa::detect().into_iter().chain([Isa::Arrays4]).filter(|isa| applies(*isa, &g)) {
            assert_eq!(conv2d(isa, &x, &kernel, Some(&bias), &g).len(), want, "direct {isa:?} {g:?}");
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn direct_conv_takes_only_what_it_has_a_kernel_for() {
    assert!(applies(Isa::Avx512, &shape(1, 3, 16, 16, 7, 3, 1)));
    assert!(!applies(Isa::Avx512, &shape(1, 3, 8, 8, 7, 3, 1)), "8 pixels wide is half an AVX-512 vector");
    assert!(!applies(Isa::Avx512, &shape(1, 3, 16, 16, 7, 1, 0)), "a 1 × 1 kernel is a plain GEMM");
}

/// The direct path against the im2col path it replaces, on the midsize benchmark model's convolutions:
/// `cargo test --release --lib direct_conv_speed -- --ignored --nocapture` (not a timed test: it prints).
#[test]
#[ignore]
fn direct_conv_speed() {
    for (n, c, h, o) in [
        (2, 512, 16, 512),
        (2, 128, 64, 128),
        (1, 128, 128, 128),
        (2, 256, 64, 256),
        (2, 512, 32, 512),
        (1, 256, 32, 256),
        (1, 64, 128, 64),
        (2, 256, 64, 128),
        (1, 192, 128, 64),
        (2, 128, 32, 128),
        (2, 256, 8, 256),
    ] {
        let g = shape(n, c, h, h, o, 3, 1);
        let x = values(1, n * c * h * h);
        let kernel = values(2, o * c * 9);
        let bias = values(3, o);
        let flop = 2.0 * (n * o * c * 9 * h * h) as f64;
        let time = |f: &dyn Fn() -> Vec<f32>| {
            f();
            let t = std::time::Instant::now();
            for _ in 0..5 {
                f();
            }
            t.elapsed().as_secs_f64() / 5.0
        };
        let im2col = time(&|| im2col_conv2d(&x, &kernel, Some(&bias), &g).unwrap());
        print!("n{n} c{c} {h}x{h} o{o}: im2col {:.2} ms {:.0} GFLOP/s", im2col * 1e3, flop / im2col / 1e9);
        if let Some(isa) = Isa::detect().filter(|isa| applies(*isa, &g)) {
            let direct = time(&|| conv2d(isa, &x, &kernel, Some(&bias), &g));
            print!(", direct {isa:?} {:.2} ms {:.0} GFLOP/s", direct * 1e3, flop / direct / 1e9);
        }
        println!();
    }
}
