//! Every WebGPU kernel against the CPU backend on fresh random data, at awkward shapes: odd sizes, 1×1,
//! sizes that cross the 64-wide GEMM tiles and the 8-key attention tiles, and (with a lowered limit)
//! launches split over the 2-D dispatch grid. Natively this runs on whatever adapter wgpu finds — Mesa
//! lavapipe in CI (`apt-get install mesa-vulkan-drivers`). No adapter is a failure, not a skip.

mod common;

use std::sync::OnceLock;

use common::host;
use unclip::backend::cpu::Cpu;
use unclip::backend::webgpu::WebGpu;
use unclip::backend::{Activation, Affine, Backend, StepOperands, Tensor};
use unclip::gguf::{quantize, GgmlType, TensorInfo, TensorView};
use unclip::rng::TorchGenerator;
use unclip::schedulers::{NoiseScale, StepCoefficients};

fn gpu() -> WebGpu {
    static GPU: OnceLock<WebGpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let gpu = pollster::block_on(WebGpu::new()).unwrap_or_else(|e| {
            panic!("{e}\n(the WebGPU kernel tests need an adapter: apt-get install mesa-vulkan-drivers)")
        });
        eprintln!("WebGPU adapter: {:?}", gpu.adapter());
        gpu
    })
    .clone()
}

/// Host data for one input: values and shape.
struct Data(Vec<f32>, Vec<usize>);

fn randn(seed: u64, shape: &[usize]) -> Data {
    Data(TorchGenerator::new(seed).randn(shape.iter().product()), shape.to_vec())
}

fn on<B: Backend>(be: &B, d: &Data) -> B::Tensor {
    be.tensor(d.0.clone(), &d.1).unwrap()
}

/// A weight as the GGUF reader would hand it over: `shape`, stored as `dtype`.
struct Stored {
    info: TensorInfo,
    bytes: Vec<u8>,
}

fn stored(seed: u64, shape: &[usize], dtype: GgmlType) -> Stored {
    let values = TorchGenerator::new(seed).randn(shape.iter().product());
    let bytes = quantize(dtype, &values).unwrap();
    let info = TensorInfo { name: "w".into(), shape: shape.to_vec(), dtype, offset: 0, n_bytes: bytes.len() as u64 };
    Stored { info, bytes }
}

impl Stored {
    fn view(&self) -> TensorView<'_> {
        TensorView { info: &self.info, data: &self.bytes }
    }
}

/// max |cpu − gpu| ≤ tol · (1 + max |cpu|), with equal shapes.
fn assert_close(what: &str, cpu: &impl Tensor, gpu: &impl Tensor, tol: f32) {
    assert_eq!(cpu.dims(), gpu.dims(), "{what}: shapes differ");
    let (a, b) = (host(cpu), host(gpu));
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = common::max_abs_diff(&a, &b);
    assert!(diff <= tol * (1.0 + scale), "{what}: max |cpu − gpu| = {diff} (max |cpu| = {scale}, tol {tol})");
}

/// Runs `$body` once on each backend (`$be` bound to it, each `$x` to that backend's copy of `$data`)
/// and compares the results.
macro_rules! same {
    ($what:expr, $tol:expr, $be:ident $(; $x:ident = $data:expr)* => $body:expr) => {{
        let cpu = {
            let $be = Cpu;
            $(let $x = on(&$be, &$data);)*
            $body
        };
        let gpu = {
            let $be = gpu();
            $(let $x = on(&$be, &$data);)*
            $body
        };
        assert_close($what, &cpu, &gpu, $tol);
    }};
}

#[test]
fn binary_ops_broadcast() {
    let shapes: [(&[usize], &[usize]); 5] = [
        (&[3, 1, 5], &[4, 1]),
        (&[2, 3, 4, 5], &[3, 1, 1]),
        (&[1], &[7, 3]),
        (&[1000], &[1000]),
        (&[2, 1, 1, 1, 1, 1, 3], &[5, 1]),
    ];
    for (i, (sa, sb)) in shapes.iter().enumerate() {
        let (a, b) = (randn(i as u64, sa), randn(100 + i as u64, sb));
        same!(&format!("add {sa:?} {sb:?}"), 1e-6, be; x = a; y = b => x.add(&y).unwrap());
        same!(&format!("sub {sa:?} {sb:?}"), 1e-6, be; x = a; y = b => y.sub(&x).unwrap());
        same!(&format!("mul {sa:?} {sb:?}"), 1e-6, be; x = a; y = b => x.mul(&y).unwrap());
    }
}

#[test]
fn unary_ops() {
    let mut d = randn(1, &[3, 1001]);
    d.0.iter_mut().for_each(|v| *v *= 4.0);
    same!("affine", 1e-6, be; x = d => x.affine(-1.5, 0.25).unwrap());
    same!("clamp", 0.0, be; x = d => x.clamp(-1.0, 0.5).unwrap());
    for act in [Activation::Silu, Activation::Gelu, Activation::QuickGelu] {
        same!(&format!("{act:?}"), 2e-6, be; x = d => x.activation(act).unwrap());
    }
    same!("l2_normalize", 1e-6, be; x = d => x.l2_normalize().unwrap());
    same!("l2_normalize 384", 1e-6, be; x = randn(2, &[5, 384]) => x.l2_normalize().unwrap());
}

#[test]
fn layout_ops() {
    let d = randn(3, &[2, 3, 5, 7]);
    same!("transpose 1 3", 0.0, be; x = d => x.transpose(1, 3).unwrap());
    same!("transpose 0 1", 0.0, be; x = d => x.transpose(0, 1).unwrap());
    same!("narrow", 0.0, be; x = d => x.narrow(2, 1, 3).unwrap());
    same!("narrow last", 0.0, be; x = d => x.narrow(3, 6, 1).unwrap());
    same!("reshape", 0.0, be; x = d => x.reshape(&[6, 35]).unwrap().transpose(0, 1).unwrap());
    let (a, b) = (randn(4, &[2, 1, 5, 7]), randn(5, &[2, 4, 5, 7]));
    same!("cat dim 1", 0.0, be; x = d; y = a; z = b => Tensor::cat(&[&y, &x, &z], 1).unwrap());
    same!("cat dim 0", 0.0, be; x = d => Tensor::cat(&[&x, &x], 0).unwrap());
    let table = randn(6, &[50, 13]);
    same!("gather_rows", 0.0, be; t = table => t.gather_rows(&[49, 0, 7, 7, 12]).unwrap());
}

#[test]
fn gather_rows_rejects_ids_outside_the_table() {
    let t = on(&gpu(), &randn(6, &[5, 3]));
    let err = t.gather_rows(&[1, 5]).err().expect("id 5 of 5 rows").to_string();
    assert!(err.contains("token id 5") && err.contains("5 rows"), "{err}");
}

#[test]
fn linear_in_every_stored_type() {
    // (rows, in, out): in crosses the 32-deep K tile; out crosses the 32- and 64-wide tiles, rows the 64-high one
    for (i, &(rows, k, n)) in [(3, 37, 65), (1, 1, 1), (130, 20, 7), (5, 40, 32), (5, 40, 33)].iter().enumerate() {
        let w = stored(10 + i as u64, &[n, k], GgmlType::F32);
        let bias = randn(20 + i as u64, &[n]);
        same!(&format!("linear f32 {rows}x{k}x{n}"), 1e-5, be; x = randn(i as u64, &[rows, k]); b = bias => {
            x.linear(&be.matrix(&w.view(), &[n, k]).unwrap(), Some(&b)).unwrap()
        });
    }
    for dtype in [GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0] {
        let w = stored(30, &[67, 96], dtype);
        same!(&format!("linear {dtype:?}"), 1e-5, be; x = randn(31, &[2, 5, 96]) => {
            x.linear(&be.matrix(&w.view(), &[67, 96]).unwrap(), None).unwrap()
        });
    }
}

#[test]
fn matmul_broadcasts_batches() {
    let cases: [(&[usize], &[usize]); 4] = [
        (&[2, 3, 17, 33], &[33, 19]),
        (&[5, 7], &[2, 7, 9]),
        (&[4, 1, 12], &[4, 12, 70]),
        (&[3, 1, 2, 5], &[1, 4, 5, 3]),
    ];
    for (i, (sa, sb)) in cases.iter().enumerate() {
        same!(&format!("matmul {sa:?} {sb:?}"), 1e-5, be; x = randn(40 + i as u64, sa); y = randn(50 + i as u64, sb) => {
            x.matmul(&y).unwrap()
        });
    }
}

#[test]
fn conv2d_3x3_and_1x1() {
    let w = stored(60, &[7, 5, 3, 3], GgmlType::F32);
    let b = randn(61, &[7]);
    same!("conv 3x3 pad 1", 1e-5, be; x = randn(62, &[2, 5, 9, 11]); b = b => {
        x.conv2d(&be.matrix(&w.view(), &[7, 5, 3, 3]).unwrap(), Some(&b), 1).unwrap()
    });
    same!("conv 3x3 pad 0", 1e-5, be; x = randn(63, &[1, 5, 4, 3]) => {
        x.conv2d(&be.matrix(&w.view(), &[7, 5, 3, 3]).unwrap(), None, 0).unwrap()
    });
    let w1 = stored(64, &[65, 64, 1, 1], GgmlType::F32);
    same!("conv 1x1", 1e-5, be; x = randn(65, &[1, 64, 1, 1]) => {
        x.conv2d(&be.matrix(&w1.view(), &[65, 64, 1, 1]).unwrap(), None, 0).unwrap()
    });
    // a quantized kernel stored as its (out, in·kh·kw) matrix, as the converter writes it
    for dtype in [GgmlType::Q8_0, GgmlType::Q4_0] {
        let wq = stored(66, &[7, 32 * 9], dtype);
        same!(&format!("conv {dtype:?}"), 1e-5, be; x = randn(67, &[2, 32, 6, 5]); b = b => {
            x.conv2d(&be.matrix(&wq.view(), &[7, 32, 3, 3]).unwrap(), Some(&b), 1).unwrap()
        });
    }
}

#[test]
fn norms() {
    let (g, b) = (randn(70, &[64]), randn(71, &[64]));
    for act in [None, Some(Activation::Silu)] {
        same!(&format!("group_norm {act:?}"), 1e-5, be; x = randn(72, &[2, 64, 5, 7]); g = g; b = b => {
            x.group_norm(32, Affine { gamma: &g, beta: &b, eps: 1e-5, modulation: None }, act).unwrap()
        });
    }
    same!("group_norm 1 group", 1e-5, be; x = randn(73, &[1, 64, 33, 33]); g = g; b = b => {
        x.group_norm(1, Affine { gamma: &g, beta: &b, eps: 1e-6, modulation: None }, None).unwrap()
    });
    // the time scale_shift of a ResNet: per-(sample, channel) scale and shift, then SiLU, in the same pass;
    // on each backend it equals the unfused ops (norm, ·scale, +shift, SiLU)
    let (x, s, t) = (randn(77, &[2, 64, 5, 7]), randn(78, &[2, 64]), randn(79, &[2, 64]));
    same!("group_norm modulated", 1e-5, be; x = x; g = g; b = b; s = s; t = t => {
        let fused = x.group_norm(32, Affine { gamma: &g, beta: &b, eps: 1e-5, modulation: Some((&s, &t)) }, Some(Activation::Silu)).unwrap();
        let (s4, t4) = (s.reshape(&[2, 64, 1, 1]).unwrap(), t.reshape(&[2, 64, 1, 1]).unwrap());
        let unfused = x.group_norm(32, Affine { gamma: &g, beta: &b, eps: 1e-5, modulation: None }, None).unwrap();
        let unfused = unfused.mul(&s4).unwrap().add(&t4).unwrap().activation(Activation::Silu).unwrap();
        assert_close("group_norm modulated = unfused ops", &unfused, &fused, 1e-5);
        fused
    });
    let (g, b) = (randn(74, &[129]), randn(75, &[129]));
    same!("layer_norm", 1e-5, be; x = randn(76, &[3, 7, 129]); g = g; b = b => x.layer_norm(&g, &b, 1e-5).unwrap());
}

#[test]
fn attention_with_and_without_bias() {
    // (n, lq, lk, c, heads); heads of 160 channels; 9 M scores, over the 8 M the GPU holds at once, so
    // queries go in two blocks
    let shapes = [
        (2, 70, 77, 64, 2),
        (1, 1, 1, 8, 1),
        (1, 9, 3, 256, 2),
        (2, 65, 17, 24, 3),
        (1, 9, 5, 320, 2),
        (2, 1500, 1500, 16, 2),
    ];
    for (i, &(n, lq, lk, c, heads)) in shapes.iter().enumerate() {
        let s = 80 + 10 * i as u64;
        let (q, k, v) = (randn(s, &[n, lq, c]), randn(s + 1, &[n, lk, c]), randn(s + 2, &[n, lk, c]));
        same!(&format!("attention {n} {lq} {lk} {c}/{heads}"), 1e-5, be; q = q; k = k; v = v => {
            Tensor::attention(&q, &k, &v, heads, None).unwrap()
        });
        // a key-padding mask as the text encoders make it (0 or −10000), and a per-query bias
        let mut mask = randn(s + 3, &[n, 1, lk]);
        mask.0.iter_mut().enumerate().for_each(|(j, m)| *m = if j % 3 == 2 { -10000.0 } else { 0.0 });
        same!(&format!("attention+mask {n} {lq} {lk}"), 1e-5, be; q = q; k = k; v = v; m = mask => {
            Tensor::attention(&q, &k, &v, heads, Some(&m)).unwrap()
        });
        same!(&format!("attention+bias {n} {lq} {lk}"), 1e-5, be; q = q; k = k; v = v; m = randn(s + 4, &[1, lq, lk]) => {
            Tensor::attention(&q, &k, &v, heads, Some(&m)).unwrap()
        });
    }
}

#[test]
fn resampling() {
    same!("avg_pool2x2 odd", 1e-6, be; x = randn(120, &[1, 3, 7, 9]) => x.avg_pool2x2().unwrap());
    same!("avg_pool2x2", 1e-6, be; x = randn(121, &[2, 4, 8, 6]) => x.avg_pool2x2().unwrap());
    same!("upsample_nearest2x", 0.0, be; x = randn(122, &[2, 3, 4, 5]) => x.upsample_nearest2x().unwrap());
}

#[test]
fn scheduler_step_every_noise_kind() {
    let base = StepCoefficients {
        x0_sample: 1.3,
        x0_model: -0.7,
        x0_denominator: 0.9,
        clip: None,
        mean_x0: 0.4,
        mean_sample: 0.6,
        noise: None,
    };
    let kinds = [
        base,
        StepCoefficients { clip: Some(1.0), noise: Some(NoiseScale::Fixed { sigma: 0.3 }), ..base },
        StepCoefficients { noise: Some(NoiseScale::LearnedRange { log_min: -7.0, log_max: -2.0 }), ..base },
    ];
    let shape = [2, 3, 5, 7];
    for (i, c) in kinds.iter().enumerate() {
        for part in 0..2 {
            same!(&format!("scheduler_step {i} part {part}"), 1e-5, be; m = randn(130, &shape); v = randn(131, &shape); s = randn(132, &shape); z = randn(133, &shape) => {
                let (prev, x0) = Tensor::scheduler_step(StepOperands { model: &m, log_variance_frac: Some(&v), sample: &s, noise: Some(&z) }, c).unwrap();
                [prev, x0][part].clone()
            });
        }
    }
}

#[test]
fn launches_split_across_the_dispatch_grid() {
    // 8 workgroups per dimension at most: every op below needs more (12 to 20), so each is spread over x and y
    let small = pollster::block_on(WebGpu::new()).unwrap().with_max_groups_per_dim(8).unwrap();
    let a = randn(140, &[5000]);
    let w = stored(141, &[130, 40], GgmlType::F32);
    let (q, k) = (randn(142, &[1, 600, 16]), randn(143, &[1, 20, 16]));
    let check = |what: &str, cpu: <Cpu as Backend>::Tensor, gpu: <WebGpu as Backend>::Tensor| {
        assert_close(what, &cpu, &gpu, 1e-5)
    };
    check("split add", on(&Cpu, &a).add(&on(&Cpu, &a)).unwrap(), on(&small, &a).add(&on(&small, &a)).unwrap());
    let x = randn(144, &[200, 40]);
    check(
        "split linear",
        on(&Cpu, &x).linear(&Cpu.matrix(&w.view(), &[130, 40]).unwrap(), None).unwrap(),
        on(&small, &x).linear(&small.matrix(&w.view(), &[130, 40]).unwrap(), None).unwrap(),
    );
    check(
        "split attention",
        Tensor::attention(&on(&Cpu, &q), &on(&Cpu, &k), &on(&Cpu, &k), 2, None).unwrap(),
        Tensor::attention(&on(&small, &q), &on(&small, &k), &on(&small, &k), 2, None).unwrap(),
    );
    let g = randn(145, &[16]);
    let x = randn(146, &[1, 16, 10, 10]);
    check(
        "split group_norm",
        on(&Cpu, &x)
            .group_norm(16, Affine { gamma: &on(&Cpu, &g), beta: &on(&Cpu, &g), eps: 1e-5, modulation: None }, None)
            .unwrap(),
        on(&small, &x)
            .group_norm(16, Affine { gamma: &on(&small, &g), beta: &on(&small, &g), eps: 1e-5, modulation: None }, None)
            .unwrap(),
    );
}

#[test]
fn profiling_times_each_kernel_and_changes_no_result() {
    let profiled = pollster::block_on(WebGpu::new()).unwrap().with_profiling().unwrap();
    let (x, w) = (randn(150, &[2, 5, 9, 11]), stored(151, &[7, 5, 3, 3], GgmlType::F32));
    let conv = |be: &WebGpu| on(be, &x).conv2d(&be.matrix(&w.view(), &[7, 5, 3, 3]).unwrap(), None, 1).unwrap();
    assert_close("profiled conv", &conv(&gpu()), &conv(&profiled), 0.0);
    let profile = profiled.profile();
    assert_eq!(profile.len(), 1, "{profile:?}");
    let (kernel, dispatches, ms) = &profile[0];
    assert_eq!((kernel.as_str(), *dispatches), ("Gemm main MODE=2 WTYPE=0 TN=64", 1));
    assert!(*ms > 0.0);
    assert!(gpu().profile().is_empty(), "a device made without profiling keeps no profile");
}
