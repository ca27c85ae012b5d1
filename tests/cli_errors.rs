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
    copy_dir(&src, &dst);
    dst
}

fn gen_args<'a>(model: &'a Path, prompt: &'a str, extra: &[&'a str]) -> Vec<String> {
    // not /dev/null: the runs that succeed write here, and the CLI's rename once put a file in place of the device
    // (as root, breaking every later `2>/dev/null` on the machine); it writes a device in place now (files.rs)
    let out = std::env::temp_dir().join(format!("unclip-cli-errors-{}.npy", std::process::id())).display().to_string();
    let mut v: Vec<String> =
        ["generate", "--model", &model.display().to_string(), "--prompt", prompt, "--out-npy", &out]
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
    // an output folder that does not exist (a fixed name such as /tmp/x may be somebody's folder)
    let out = std::env::temp_dir().join(format!("unclip-convert-out-{}", std::process::id()));
    let out = out.to_str().unwrap();
    expect_error(&["convert", "/nonexistent", out], "model_index.json");
    expect_error(&["convert", "/nonexistent", out, "--dtype", "q5_k"], "--dtype");
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
        assert!(!err.contains("dropped"), "{prompt:?}: nothing is truncated: {err}");
    }
    let long = "a horse riding an astronaut on the moon ".repeat(12);
    let args = gen_args(&model, &long, &steps);
    let (code, err) = unclip(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{err}");
    let warning =
        err.lines().find(|l| l.starts_with("warning: the text encoder")).unwrap_or_else(|| panic!("no warning: {err}"));
    assert!(warning.contains("77 tokens") && warning.contains("on the moon a horse riding an astronaut"), "{warning}");
}

/// A copy of the tiny model whose model.json has `edit` applied.
fn model_with(tag: &str, edit: impl FnOnce(&mut serde_json::Value)) -> std::path::PathBuf {
    let dir = model_copy(tag);
    let path = dir.join("model.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut m);
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    dir
}

/// Sizes that no weight fixes are checked at load, in a blink, before any memory is taken for them.
#[test]
fn configs_that_would_size_memory_absurdly_are_refused_at_once() {
    let start = std::time::Instant::now();
    let steps =
        model_with("timesteps", |m| m["decoder_scheduler"]["config"]["num_train_timesteps"] = 1_000_000_000.into());
    run_gen(
        &steps,
        "horse",
        &[],
        "num_train_timesteps must be between 2 and 100000 in the scheduler config (got 1000000000)",
    );
    let size = model_with("sample-size", |m| m["decoder"]["config"]["sample_size"] = 4096.into());
    run_gen(&size, "horse", &[], "sample_size 4096 with 32 channels would make activations of 2048 MiB per image");
    assert!(start.elapsed().as_secs() < 10, "refusals took {:?}", start.elapsed());
}

/// The start of a PNG file (CRCs computed here) claiming `width`×`height` RGBA pixels, without the pixels.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 == 1 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 6, 0, 0, 0]); // 8-bit RGBA, no interlace
    let idat = b"IDAT\x78\x01".to_vec(); // the start of a zlib stream: decoders read the header up to here
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for chunk in [ihdr, idat] {
        png.extend((chunk.len() as u32 - 4).to_be_bytes());
        png.extend(&chunk);
        png.extend(crc32(&chunk).to_be_bytes());
    }
    png
}

/// A 1×4000 PNG fitted to the image tower used to build a 64×256000 image first (45 s, 1.2 GB); now only the
/// kept window is resampled. A PNG claiming 100000×100000 pixels is refused from its header.
#[test]
fn tall_and_huge_images_cost_little() {
    let model = tiny_model(GgmlType::F32);
    let dir = std::env::temp_dir().join(format!("unclip-images-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tall = dir.join("tall.png");
    let pixels: Vec<u8> = (0..4000u32).flat_map(|y| [(y % 256) as u8, 80, 200, 255]).collect();
    image::RgbaImage::from_raw(1, 4000, pixels).unwrap().save(&tall).unwrap();
    let start = std::time::Instant::now();
    // under an 800 MB address-space limit (the bound), which the dense resize overran
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 800000; exec '{}' embed --model '{}' --image '{}'",
            env!("CARGO_BIN_EXE_unclip"),
            model.display(),
            tall.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(start.elapsed().as_secs() < 10, "the tall image took {:?}", start.elapsed());

    let huge = dir.join("huge.png");
    std::fs::write(&huge, png_header_only(100_000, 100_000)).unwrap();
    expect_error(
        &["embed", "--model", model.to_str().unwrap(), "--image", huge.to_str().unwrap()],
        "is 100000×100000 pixels; at most 67108864 pixels (8192×8192) are accepted",
    );
}

/// `convert` into an existing model swaps the new one in only when it is complete: a checkpoint whose last
/// component is truncated leaves the old model generating; a folder that is not a model is never replaced.
#[test]
fn a_failed_convert_leaves_the_old_model_working() {
    let tmp = std::env::temp_dir().join(format!("unclip-convert-{}", std::process::id()));
    let (model, broken) = (tmp.join("model"), tmp.join("broken"));
    let model_s = model.to_str().unwrap();
    let (code, err) = unclip(&["convert", fixtures().join("tiny-unclip").to_str().unwrap(), model_s]);
    assert_eq!(code, 0, "{err}");
    let before = std::fs::read(model.join("model.json")).unwrap();

    copy_dir(&fixtures().join("tiny-unclip"), &broken);
    let weights = broken.join("super_res_last/diffusion_pytorch_model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    expect_error(&["convert", broken.to_str().unwrap(), model_s], "super_res_last");
    assert_eq!(std::fs::read(model.join("model.json")).unwrap(), before, "model.json untouched");
    let args = gen_args(&model, "horse", &["--prior-steps", "2", "--decoder-steps", "2", "--sr-steps", "2"]);
    let (code, err) = unclip(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "the old model still generates: {err}");
    let leftovers: Vec<_> = std::fs::read_dir(&tmp).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "no staging folder is left behind: {leftovers:?}");

    let notes = tmp.join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("todo.txt"), "keep me").unwrap();
    expect_error(
        &["convert", fixtures().join("tiny-unclip").to_str().unwrap(), notes.to_str().unwrap()],
        "is not a model directory",
    );
    assert_eq!(std::fs::read_to_string(notes.join("todo.txt")).unwrap(), "keep me");
}
