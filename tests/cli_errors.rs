//! Bad input to the CLI gets one clear sentence and exit status 1 — never a panic: wrong or
//! truncated weight files, hash mismatches, broken configs, absurdly long prompts, NaN settings.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use unclip::gguf::GgmlType;

/// Runs the CLI; returns (exit code, stderr).
fn unclip(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_unclip")).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn expect_error(args: &[&str], needle: &str) {
    let (code, err) = unclip(args);
    assert_eq!(code, 1, "{args:?} should fail with status 1; stderr: {err}");
    let last = err.lines().last().unwrap_or("");
    assert!(last.starts_with("error: ") && last.contains(needle), "{args:?}: expected `{needle}` in {last:?}");
    assert!(!err.contains("panicked") && !err.contains("internal error"), "{args:?} panicked: {err}");
}

/// A fresh copy of the converted tiny model to damage.
fn model_copy(tag: &str) -> std::path::PathBuf {
    let src = tiny_model(GgmlType::F32);
    let dst = std::env::temp_dir().join(format!("unclip-damaged-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dst).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let e = entry.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    dst
}

fn gen_args<'a>(model: &'a Path, prompt: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut v: Vec<String> =
        ["generate", "--model", &model.display().to_string(), "--prompt", prompt, "--out-npy", "/dev/null"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn run_gen(model: &Path, prompt: &str, extra: &[&str], needle: &str) {
    let args = gen_args(model, prompt, extra);
    expect_error(&args.iter().map(String::as_str).collect::<Vec<_>>(), needle);
}

#[test]
fn bad_settings_are_refused() {
    let model = tiny_model(GgmlType::F32);
    run_gen(&model, &"a ".repeat(60_000), &[], "120000 characters");
    run_gen(&model, "horse", &["--decoder-guidance", "NaN"], "decoder guidance");
    run_gen(&model, "horse", &["--prior-guidance", "inf"], "prior guidance");
    run_gen(&model, "horse", &["--decoder-steps", "1"], "decoder steps");
    run_gen(&model, "horse", &["--sr-steps", "5000"], "super-res steps");
}

#[test]
fn damaged_model_directories_are_refused() {
    run_gen(Path::new("/nonexistent"), "horse", &[], "has no model.json");

    let truncated = model_copy("truncated");
    let f = truncated.join("decoder.gguf");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    run_gen(&truncated, "horse", &[], "truncated or replaced");

    let flipped = model_copy("flipped");
    let f = flipped.join("prior.gguf");
    let mut bytes = std::fs::read(&f).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&f, bytes).unwrap();
    run_gen(&flipped, "horse", &[], "sha256");

    let broken = model_copy("config");
    let m = broken.join("model.json");
    let text = std::fs::read_to_string(&m)
        .unwrap()
        .replace("\"block_out_channels\": [\n        32,\n        64\n      ]", "\"block_out_channels\": []");
    assert!(text.contains("\"block_out_channels\": []"), "the test edits the decoder config");
    std::fs::write(&m, text).unwrap();
    run_gen(&broken, "horse", &[], "block_out_channels");

    let not_json = model_copy("json");
    std::fs::write(not_json.join("model.json"), "<html>404</html>").unwrap();
    run_gen(&not_json, "horse", &[], "model.json is not a valid");
}

#[test]
fn info_and_convert_refuse_bad_inputs() {
    let junk = std::env::temp_dir().join(format!("unclip-junk-{}.gguf", std::process::id()));
    std::fs::write(&junk, b"<!doctype html><p>not found").unwrap();
    expect_error(&["info", junk.to_str().unwrap()], "not a GGUF file");
    expect_error(&["convert", "/nonexistent", "/tmp/x"], "model_index.json");
    expect_error(&["convert", "/nonexistent", "/tmp/x", "--dtype", "q5_k"], "--dtype");
}

/// What used to be refused and diffusers accepts: an empty or blank prompt (an unconditional sample) and a
/// prompt past the tokenizer's 77 tokens (truncated, with a warning naming the dropped words).
#[test]
fn empty_and_over_long_prompts_generate_as_in_diffusers() {
    let model = tiny_model(GgmlType::F32);
    let steps = ["--prior-steps", "2", "--decoder-steps", "2", "--sr-steps", "2"];
    for prompt in ["", "   "] {
        let args = gen_args(&model, prompt, &steps);
        let (code, err) = unclip(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(code, 0, "{prompt:?}: {err}");
        assert!(!err.contains("warning"), "{prompt:?}: {err}");
    }
    let long = "a horse riding an astronaut on the moon ".repeat(12);
    let args = gen_args(&model, &long, &steps);
    let (code, err) = unclip(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{err}");
    let warning = err.lines().find(|l| l.starts_with("warning: ")).unwrap_or_else(|| panic!("no warning: {err}"));
    assert!(warning.contains("77 tokens") && warning.contains("on the moon a horse riding an astronaut"), "{warning}");
}
