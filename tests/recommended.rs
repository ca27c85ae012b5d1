//! A model's recommended settings (model.json `recommended`): the CLI uses each one where no flag is
//! given, says which it used, and a flag overrides it; a recommendation outside the settings' limits is refused
//! when the model is opened, with one sentence.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{copy_dir, fixtures, tiny_model};
use unclip::gguf::GgmlType;

/// A copy of the converted tiny model whose model.json recommends `recommended` (a JSON object).
fn model_recommending(tag: &str, recommended: serde_json::Value) -> PathBuf {
    let src = tiny_model(GgmlType::F32);
    let dst = std::env::temp_dir().join(format!("unclip-recommended-{}-{tag}", std::process::id()));
    copy_dir(&src, &dst);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dst.join("model.json")).unwrap()).unwrap();
    manifest["recommended"] = recommended;
    std::fs::write(dst.join("model.json"), serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    dst
}

/// `unclip generate` of "horse" into an .npy; returns (exit code, stderr, the image's bytes).
fn generate(model: &Path, flags: &[&str]) -> (i32, String, Vec<u8>) {
    let npy = model.join(format!("out-{}.npy", flags.join("_")));
    let out = Command::new(env!("CARGO_BIN_EXE_unclip"))
        .args(["generate", "--model", &model.display().to_string(), "--prompt", "horse", "--out-npy"])
        .arg(&npy)
        .args(flags)
        .output()
        .unwrap();
    let image = std::fs::read(&npy).unwrap_or_default();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned(), image)
}

#[test]
fn the_cli_uses_a_models_recommended_settings_where_no_flag_is_given() {
    let rec = serde_json::json!({"prior_steps": 2, "decoder_steps": 3, "sr_steps": 2, "decoder_guidance": 3.0});
    let model = model_recommending("used", rec);

    let (code, err, recommended) = generate(&model, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("recommends prior steps 2, decoder steps 3, sr steps 2, decoder guidance 3"),
        "the CLI says which recommended settings it used: {err}"
    );
    let explicit = ["--prior-steps", "2", "--decoder-steps", "3", "--sr-steps", "2", "--decoder-guidance", "3"];
    let (code, err, flags) = generate(&model, &explicit);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("recommends"), "every setting was given, none recommended: {err}");
    assert_eq!(recommended, flags, "the recommended settings are the ones the flags give");

    // a flag overrides its recommendation, and only that one
    let (code, err, overridden) = generate(&model, &["--decoder-steps", "2"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("recommends prior steps 2, sr steps 2, decoder guidance 3:"), "{err}");
    assert_ne!(overridden, recommended, "2 decoder steps draw another picture than 3");
    std::fs::remove_dir_all(&model).unwrap();
}

#[test]
fn a_recommendation_outside_the_limits_is_refused() {
    let model = model_recommending("bad", serde_json::json!({"decoder_steps": 1}));
    let (code, err, _) = generate(&model, &[]);
    assert_eq!(code, 1, "{err}");
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.contains("model.json's recommended settings: decoder steps must be between 2 and 1000 (got 1)"),
        "{last}"
    );
    std::fs::remove_dir_all(&model).unwrap();

    let model = model_recommending("unknown", serde_json::json!({"decoder_stepz": 3}));
    let (code, err, _) = generate(&model, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("unknown field `decoder_stepz`"), "{err}");
    std::fs::remove_dir_all(&model).unwrap();
}

/// A copy of the tiny diffusers checkpoint with an `unclip.json` recommending `recommended`.
fn checkpoint_recommending(tag: &str, recommended: serde_json::Value) -> PathBuf {
    let dst = std::env::temp_dir().join(format!("unclip-recommended-src-{}-{tag}", std::process::id()));
    copy_dir(&fixtures().join("tiny-unclip"), &dst);
    let info = serde_json::json!({"name": "tiny", "recommended": recommended});
    std::fs::write(dst.join("unclip.json"), serde_json::to_vec(&info).unwrap()).unwrap();
    dst
}

#[test]
fn convert_carries_unclip_json_recommendations_into_model_json() {
    let src = checkpoint_recommending("ok", serde_json::json!({"decoder_guidance": 3.0, "prior_best_of": 2}));
    let out = src.with_extension("out");
    let run = |src: &Path, out: &Path| {
        Command::new(env!("CARGO_BIN_EXE_unclip")).arg("convert").arg(src).arg(out).output().unwrap()
    };
    let done = run(&src, &out);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("model.json")).unwrap()).unwrap();
    assert_eq!(manifest["recommended"], serde_json::json!({"decoder_guidance": 3.0, "prior_best_of": 2}));
    std::fs::remove_dir_all(&src).unwrap();
    std::fs::remove_dir_all(&out).unwrap();

    // a recommendation outside the limits stops the conversion before anything is written
    let src = checkpoint_recommending("bad", serde_json::json!({"prior_guidance": -1.0}));
    let out = src.with_extension("out");
    let failed = run(&src, &out);
    assert_eq!(failed.status.code(), Some(1));
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(err.contains("unclip.json's recommended settings: prior guidance must be a number from 0 to 100"), "{err}");
    assert!(!out.exists(), "nothing was written");
    std::fs::remove_dir_all(&src).unwrap();
}
