//! The whole tiny unCLIP pipeline on WebGPU equals the CPU result: through the library (f32 and q8_0
//! weights, both samplers) and through `unclip generate --backend webgpu`; so does the bundled unclip-emoji.

mod common;

use std::process::Command;

use common::*;
use unclip::backend::cpu::Cpu;
use unclip::backend::webgpu::WebGpu;
use unclip::gguf::GgmlType;
use unclip::manifest::open_model_dir;
use unclip::pipeline::{GenerateParams, Sampler, Silent};
use unclip::UnCLIPPipeline;

/// How the images are compared. The backends sum in different orders (tiled GEMM, online softmax, f32
/// norms), so model outputs differ by ~1e-6 (f32 weights) to ~2e-5 (q8_0, the tiny random network's larger
/// activations). unCLIP's first step at t = 999 divides ε̂ by √ᾱ₉₉₉ ≈ 5e-5 to predict x̂0 and then clips it
/// to ±1, so an element whose x̂0 sits near zero can land on the other side on one backend — measured:
/// 1 of 12,288 image values off by 1.0 at 2/3/2 steps, every other value within 1e-5. So the image must
/// agree on average (mean |cpu − gpu| ≤ MEAN) with at most RARE of its values differing by more than 0.05.
const MEAN: f32 = 5e-4;
const RARE: f64 = 1e-3;

fn assert_same_image(what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    let mean = a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
    let off = a.iter().zip(b).filter(|(x, y)| (*x - *y).abs() > 0.05).count() as f64 / a.len() as f64;
    eprintln!("{what}: mean |cpu − gpu| {mean:.2e}, max {:.2e}, share off by > 0.05: {off:.1e}", max_abs_diff(a, b));
    assert!(mean <= MEAN && off <= RARE, "{what}: mean {mean}, share off {off}");
}

fn params(sampler: Sampler) -> GenerateParams {
    GenerateParams {
        prompt: "horse".into(),
        seed: 0,
        prior_steps: 2,
        decoder_steps: 3,
        sr_steps: 2,
        sampler,
        ..GenerateParams::default()
    }
}

#[test]
fn pipeline_on_webgpu_equals_cpu() {
    let gpu = pollster::block_on(WebGpu::new()).expect("a WebGPU adapter (apt-get install mesa-vulkan-drivers)");
    for (dtype, sampler) in [(GgmlType::F32, Sampler::Ddpm), (GgmlType::Q8_0, Sampler::Ddim)] {
        let cpu = tiny_pipeline(dtype);
        let (manifest, open) = open_model_dir(&tiny_model(dtype)).unwrap();
        let on_gpu = UnCLIPPipeline::load(&gpu, manifest, open).unwrap();
        let p = params(sampler);
        let a = pollster::block_on(cpu.generate(&p, &mut Silent)).unwrap();
        let b = pollster::block_on(on_gpu.generate(&p, &mut Silent)).unwrap();
        let emb = max_abs_diff(&a.image_embedding, &b.image_embedding);
        assert!(emb < 1e-4, "{dtype:?} {sampler:?}: image embeddings differ by {emb}");
        assert_same_image(&format!("{dtype:?} {sampler:?}"), &a.image, &b.image);
        // the comparison can fail: another seed gives another image
        let other = pollster::block_on(on_gpu.generate(&GenerateParams { seed: 4, ..p }, &mut Silent)).unwrap();
        assert!(max_abs_diff(&other.image, &b.image) > 0.05);
    }
}

/// The model the page loads by default (q8_0, 32-channel attention heads, MiniLM text encoder) on WebGPU.
#[test]
fn bundled_model_on_webgpu_equals_cpu() {
    let gpu = pollster::block_on(WebGpu::new()).expect("a WebGPU adapter (apt-get install mesa-vulkan-drivers)");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/unclip-emoji");
    let p = GenerateParams {
        prompt: "a happy dog".into(),
        prior_steps: 3,
        decoder_steps: 3,
        sr_steps: 3,
        ..params(Sampler::Ddpm)
    };
    let (manifest, open) = open_model_dir(&dir).unwrap();
    let a = pollster::block_on(UnCLIPPipeline::load(&Cpu, manifest, open).unwrap().generate(&p, &mut Silent)).unwrap();
    let (manifest, open) = open_model_dir(&dir).unwrap();
    let b = pollster::block_on(UnCLIPPipeline::load(&gpu, manifest, open).unwrap().generate(&p, &mut Silent)).unwrap();
    let emb = max_abs_diff(&a.image_embedding, &b.image_embedding);
    eprintln!("unclip-emoji: image embeddings max |cpu − gpu| {emb:.1e}");
    assert!(emb < 1e-5, "image embeddings differ by {emb}"); // measured 3.3e-7
    assert_same_image("unclip-emoji", &a.image, &b.image);
}

#[test]
fn cli_generates_on_webgpu() {
    let model = tiny_model(GgmlType::F32);
    let dir = std::env::temp_dir().join(format!("unclip-cli-webgpu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut images = Vec::new();
    for backend in ["cpu", "webgpu"] {
        let npy = dir.join(format!("{backend}.npy"));
        let out = Command::new(env!("CARGO_BIN_EXE_unclip"))
            .args(["generate", "--model", model.to_str().unwrap(), "--prompt", "horse", "--seed", "0"])
            .args(["--prior-steps", "2", "--decoder-steps", "3", "--sr-steps", "2", "--backend", backend])
            .args(["--out-npy", npy.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "--backend {backend}: {stderr}");
        if backend == "webgpu" {
            assert!(stderr.contains("WebGPU adapter:"), "{stderr}");
        }
        let bytes = std::fs::read(&npy).unwrap();
        // .npy: 10-byte preamble + header length (u16 LE) of header, then little-endian f32s
        let header = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        images.push(
            bytes[header..].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect::<Vec<_>>(),
        );
    }
    assert_same_image("CLI", &images[0], &images[1]);
}
