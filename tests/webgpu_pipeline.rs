//! The whole tiny unCLIP pipeline on WebGPU equals the CPU result: through the library (f32 and q8_0
//! weights, both samplers) and through `unclip generate --backend webgpu`.

mod common;

use std::process::Command;

use common::*;
use unclip::backend::webgpu::WebGpu;
use unclip::convert::open_model_dir;
use unclip::gguf::GgmlType;
use unclip::pipeline::{GenerateParams, Sampler, Silent};
use unclip::UnCLIPPipeline;

/// Largest |cpu − gpu| over the final image in [0, 1] with f32 weights. The backends sum in different
/// orders (tiled GEMM, online softmax, f32 norms): model outputs differ by ~1e-6 (measured 4e-6 on the image).
const TOLERANCE: f32 = 1e-4;
/// The same with q8_0 weights. The tiny random network's quantized weights make larger activations
/// (model outputs differ by 2e-5), and the first super-res step at t = 999 divides ε̂ by √ᾱ ≈ 0.006 when
/// it predicts x̂0, so the image differs by up to 5e-3 (measured: 4.5e-3 DDIM, 5.2e-3 DDPM).
const TOLERANCE_Q8: f32 = 2e-2;

fn params(sampler: Sampler) -> GenerateParams {
    GenerateParams {
        prompt: "a horse".into(),
        seed: 3,
        prior_steps: 3,
        decoder_steps: 3,
        sr_steps: 3,
        sampler,
        ..GenerateParams::default()
    }
}

#[test]
fn pipeline_on_webgpu_equals_cpu() {
    let gpu = pollster::block_on(WebGpu::new()).expect("a WebGPU adapter (apt-get install mesa-vulkan-drivers)");
    for (dtype, sampler, tol) in
        [(GgmlType::F32, Sampler::Ddpm, TOLERANCE), (GgmlType::Q8_0, Sampler::Ddim, TOLERANCE_Q8)]
    {
        let cpu = tiny_pipeline(dtype);
        let (manifest, open) = open_model_dir(&tiny_model(dtype)).unwrap();
        let on_gpu = UnCLIPPipeline::load(&gpu, manifest, open).unwrap();
        let p = params(sampler);
        let a = pollster::block_on(cpu.generate(&p, &mut Silent)).unwrap();
        let b = pollster::block_on(on_gpu.generate(&p, &mut Silent)).unwrap();
        let emb = max_abs_diff(&a.image_embedding, &b.image_embedding);
        let img = max_abs_diff(&a.image, &b.image);
        eprintln!("{dtype:?} {sampler:?}: image embedding {emb:.2e}, image {img:.2e}");
        assert!(emb < tol && img < tol, "{dtype:?} {sampler:?}: embedding {emb}, image {img}");
        // the comparison can fail: another seed gives another image
        let other = pollster::block_on(on_gpu.generate(&GenerateParams { seed: 4, ..p }, &mut Silent)).unwrap();
        assert!(max_abs_diff(&other.image, &b.image) > 0.05);
    }
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
            .args(["generate", "--model", model.to_str().unwrap(), "--prompt", "a horse", "--seed", "3"])
            .args(["--prior-steps", "3", "--decoder-steps", "3", "--sr-steps", "3", "--backend", backend])
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
    let d = max_abs_diff(&images[0], &images[1]);
    assert!(d < TOLERANCE, "CLI image cpu vs webgpu: {d}");
}
