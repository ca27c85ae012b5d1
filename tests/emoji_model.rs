//! The bundled unclip-emoji model (q8_0, models/unclip-emoji) against diffusers' own UnCLIPPipeline run on
//! the f32 export it was converted from (train/generate_reference.py, "a happy dog", seed 0, 3/3/3 steps):
//! the same tokens, text embedding and image embedding, and the same picture up to the q8_0 weights.

mod common;

use std::path::Path;

use common::*;
use unclip::backend::cpu::Cpu;
use unclip::manifest::open_model_dir;
use unclip::pipeline::{GenerateParams, Silent};
use unclip::UnCLIPPipeline;

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    dot(a, b) / (dot(a, a) * dot(b, b)).sqrt()
}

#[test]
fn bundled_model_matches_diffusers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let golden =
        Golden::open_at(&root.join("tests/fixtures/unclip-emoji/reference_a-happy-dog_seed0_3-3-3.safetensors"));
    let (manifest, open) = open_model_dir(&root.join("models/unclip-emoji")).unwrap();
    let pipeline = UnCLIPPipeline::load(&Cpu, manifest, open).unwrap();

    let tokens = pipeline.tokenizer.encode("a happy dog").unwrap();
    assert_eq!(tokens.ids, golden.get("tokens.prompt.input_ids").ids(), "MiniLM tokens");

    let text = pollster::block_on(pipeline.text_embedding("a happy dog")).unwrap();
    let want_text = &golden.get("text_proj.0.in.prompt_embeds").data[384..]; // [uncond; cond]
    let text_cos = cosine(&text, want_text);

    let p = GenerateParams {
        prompt: "a happy dog".into(),
        seed: 0,
        prior_steps: 3,
        decoder_steps: 3,
        sr_steps: 3,
        ..Default::default()
    };
    let out = pollster::block_on(pipeline.generate(&p, &mut Silent)).unwrap();
    let emb_cos = cosine(&out.image_embedding, &golden.get("text_proj.0.in.image_embeddings").data);
    let want = &golden.get("image").data;
    let mean = out.image.iter().zip(want).map(|(a, b)| (a - b).abs()).sum::<f32>() / want.len() as f32;
    eprintln!("text cos {text_cos:.6}, image-embedding cos {emb_cos:.6}, image mean |Δ| {mean:.4}");
    // measured: text 0.99990, image embedding 0.99990, image mean 0.035 (q8_0 against f32; the f32
    // conversion of the same export gives a mean of 1.7e-4)
    assert!(text_cos > 0.999, "text embedding cosine {text_cos}");
    assert!(emb_cos > 0.99, "image embedding cosine {emb_cos}");
    assert!(mean < 0.08, "image mean abs difference {mean}");
}
