//! `unclip variations | interpolate | text-diff | embed` end to end on the tiny model: outputs,
//! determinism, frames that must coincide across commands (an interpolation's ends and a text diff at
//! θ = 0 are plain decodes of the end embeddings, which `variations` also makes), and the errors.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use unclip::gguf::GgmlType;

const STEPS: [&str; 6] = ["--decoder-steps", "2", "--sr-steps", "2", "--prior-steps", "2"];

fn gallery(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("www/gallery").join(name).display().to_string()
}

fn unclip(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_unclip")).args(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

/// Runs a remix command on the tiny model with 2/2/2 steps, writing frames to a fresh directory.
fn frames(tag: &str, args: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("unclip-remix-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let model = tiny_model(GgmlType::F32).display().to_string();
    let dir_s = dir.display().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--model", &model, "--frames-dir", &dir_s]);
    all.extend(STEPS);
    let (code, _, err) = unclip(&all);
    assert_eq!(code, 0, "{args:?}: {err}");
    dir
}

fn frame(dir: &Path, k: usize) -> Vec<u8> {
    image::open(dir.join(format!("frame_{k:02}.png"))).unwrap().to_rgba8().into_raw()
}

fn expect_error(args: &[&str], needle: &str) {
    let (code, _, err) = unclip(args);
    let last = err.lines().last().unwrap_or("");
    assert_eq!(code, 1, "{args:?}: {err}");
    assert!(last.starts_with("error: ") && last.contains(needle), "{args:?}: expected `{needle}` in {last:?}");
}

#[test]
fn interpolation_ends_and_text_diff_start_are_the_variations_of_their_images() {
    let (dog, pizza) = (gallery("dog-face.png"), gallery("pizza.png"));
    let interp =
        frames("interp", &["interpolate", "--from-image", &dog, "--to-image", &pizza, "--frames", "3", "--seed", "4"]);
    let dog_var = frames("dog", &["variations", "--image", &dog, "--count", "2", "--seed", "4"]);
    let pizza_var = frames("pizza", &["variations", "--image", &pizza, "--count", "1", "--seed", "4"]);
    assert_eq!(frame(&interp, 0), frame(&dog_var, 0));
    assert_eq!(frame(&interp, 2), frame(&pizza_var, 0));
    assert_ne!(frame(&interp, 1), frame(&interp, 0));
    assert_ne!(frame(&dog_var, 0), frame(&dog_var, 1), "variation 1 has the next seed");

    let diff = frames(
        "diff",
        &["text-diff", "--image", &dog, "--from", "a dog", "--to", "a cat", "--frames", "3", "--seed", "4"],
    );
    assert_eq!(frame(&diff, 0), frame(&dog_var, 0), "θ = 0 decodes the image's own embedding");
    assert_ne!(frame(&diff, 2), frame(&diff, 0));
    let again = frames(
        "diff-again",
        &["text-diff", "--image", &dog, "--from", "a dog", "--to", "a cat", "--frames", "3", "--seed", "4"],
    );
    assert_eq!(frame(&again, 2), frame(&diff, 2), "deterministic");
}

#[test]
fn strips_animations_and_inverted_variations_are_written() {
    let model = tiny_model(GgmlType::F32).display().to_string();
    let dir = std::env::temp_dir().join(format!("unclip-remix-cli-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (strip, anim) = (dir.join("strip.png").display().to_string(), dir.join("anim.png").display().to_string());
    let mut args = vec!["interpolate", "--model", &model, "--from-image", "x", "--to-image", "y", "--frames", "4"];
    let (a, b) = (gallery("ghost.png"), gallery("rocket.png"));
    args[4] = &a;
    args[6] = &b;
    args.extend(["--out", &strip, "--animation", &anim]);
    args.extend(STEPS);
    let (code, _, err) = unclip(&args);
    assert_eq!(code, 0, "{err}");
    let s = image::open(&strip).unwrap();
    assert_eq!((s.width(), s.height()), (4 * 64, 64), "four 64×64 frames side by side");
    let bytes = std::fs::read(&anim).unwrap();
    assert_eq!(bytes.windows(4).filter(|w| w == b"fcTL").count(), 6, "4 frames forwards, 2 back");

    let inv = frames("inverted", &["variations", "--image", &a, "--count", "2", "--invert", "--eta", "0"]);
    let plain = frames("not-inverted", &["variations", "--image", &a, "--count", "1"]);
    assert_ne!(frame(&inv, 0), frame(&plain, 0), "inversion changes the decoder's start");
}

#[test]
fn embed_prints_the_embeddings_as_json() {
    let model = tiny_model(GgmlType::F32).display().to_string();
    let (code, out, err) = unclip(&["embed", "--model", &model, "--image", &gallery("sun-with-face.png")]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["image_embedding"].as_array().unwrap().len(), 32);
    let (code, out, err) = unclip(&["embed", "--model", &model, "--text", "horse", "--prior-steps", "2"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["text_embedding"].as_array().unwrap().len(), 32);
    assert_eq!(v["image_embedding"].as_array().unwrap().len(), 32);
}

#[test]
fn remix_mistakes_get_one_sentence() {
    let model = tiny_model(GgmlType::F32).display().to_string();
    let m = model.as_str();
    let dog = gallery("dog-face.png");
    expect_error(&["variations", "--model", m, "--image", &dog], "nothing to write");
    expect_error(
        &["variations", "--model", m, "--image", "/nonexistent.png", "--out", "/tmp/x.png"],
        "could not read the image",
    );
    expect_error(&["variations", "--model", m, "--image", &dog, "--count", "0", "--out", "/tmp/x.png"], "--count");
    expect_error(&["variations", "--model", m, "--image", &dog, "--eta", "2", "--invert", "--out", "/tmp/x.png"], "η");
    expect_error(
        &["variations", "--model", m, "--image", &dog, "--eta", "0.3", "--out", "/tmp/x.png"],
        "together with --invert",
    );
    expect_error(
        &["interpolate", "--model", m, "--to-text", "b", "--out", "/tmp/x.png"],
        "give the start as --from-image",
    );
    expect_error(
        &[
            "interpolate",
            "--model",
            m,
            "--from-image",
            &dog,
            "--to-image",
            &dog,
            "--frames",
            "1",
            "--out",
            "/tmp/x.png",
        ],
        "at least 2 frames",
    );
    expect_error(
        &["text-diff", "--model", m, "--image", &dog, "--from", "a cat", "--to", "a cat", "--out", "/tmp/x.png"],
        "same text embedding",
    );
    expect_error(&["embed", "--model", m], "exactly one of the two");
}
