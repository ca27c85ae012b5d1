//! The README's figures that the repository itself can check (the conformance bound is
//! `final_image_matches_diffusers_within_1e_4` in tests/conformance.rs; speed figures come from docs/benchmarks.md,
//! the model's quality from docs/model-card.md).

use unclip::manifest::open_model_dir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn the_bundled_models_size_is_the_readmes() {
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let (manifest, _) = open_model_dir(format!("{ROOT}/models/unclip-emoji").as_ref()).unwrap();
    let size = format!("{:.1} MB at q8_0", manifest.total_bytes() as f64 / 1e6);
    assert!(readme.contains(&size), "README.md should give the bundled model's size as {size}");
}
