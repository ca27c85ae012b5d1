//! The encoders outside the tiny UnCLIP fixture against transformers: a BertModel used as a
//! sentence-transformers encoder (mean pooling + L2 norm, with a padded prompt) and a
//! CLIPVisionModelWithProjection. Goldens: tests/fixtures/make_encoder_goldens.py.

mod common;

use common::*;
use unclip::backend::cpu::Cpu;
use unclip::convert::{convert_component, GgufModel};
use unclip::gguf::{GgmlType, GgufFile};
use unclip::models::{BertModel, ClipVisionModelWithProjection};
use unclip::nn::Weights;

fn load(name: &str, class: &str) -> (GgufFile, serde_json::Value, Golden) {
    let dir = fixtures().join("encoders").join(name);
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let model = GgufModel { name: "encoder fixtures", license: "Apache-2.0" };
    let bytes = convert_component(&dir, model, name, class, &config, GgmlType::F32).unwrap();
    (GgufFile::from_bytes(bytes).unwrap(), config, Golden::open_at(&dir.join("io.safetensors")))
}

#[test]
fn bert_sentence_embedding_matches_transformers() {
    let (file, config, g) = load("bert", "BertModel");
    let bert = BertModel::new(&Weights::new(&file, &Cpu, "bert"), serde_json::from_value(config).unwrap()).unwrap();
    let out = bert.forward(&g.get("input_ids").ids(), &g.get("attention_mask").bools(), 2).unwrap();
    let pooled = max_abs_diff(&host(&out.text_embeds), &g.get("pooled").data);
    // hidden states at padded positions are garbage in both; compare the real tokens only
    let h = host(&out.last_hidden_state);
    let mask = g.get("attention_mask").bools();
    let hidden = h
        .chunks(32)
        .zip(g.get("last_hidden_state").data.chunks(32))
        .zip(&mask)
        .filter(|(_, &m)| m)
        .map(|((a, b), _)| max_abs_diff(a, b))
        .fold(0.0, f32::max);
    assert!(pooled < 1e-5 && hidden < 1e-4, "pooled {pooled}, hidden {hidden}");
}

#[test]
fn clip_vision_matches_transformers() {
    let (file, config, g) = load("clip_vision", "CLIPVisionModelWithProjection");
    let m = ClipVisionModelWithProjection::new(
        &Weights::new(&file, &Cpu, "clip_vision"),
        serde_json::from_value(config).unwrap(),
    )
    .unwrap();
    let out = m.forward(&g.get("pixel_values").cpu()).unwrap();
    let e = max_abs_diff(&host(&out), &g.get("image_embeds").data);
    assert!(e < 1e-5, "image_embeds {e}");
}
