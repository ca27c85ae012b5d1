//! The settings a PNG carries (docs/formats.md, "Pictures"), on real files the CLI writes with the tiny model:
//! both chunks are there and say what the run was; `generate --from-png` writes the same file byte for byte (flags
//! override it); `info` prints the settings; an edit, a remix and a step picture say what they were; hostile chunks
//! (megabytes long, lying about their length, invalid UTF-8, compressed, NaN, absurd values, unknown keys) and a
//! PNG without them each get one sentence, quickly, from both `generate --from-png` and `info`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::*;
use serde_json::Value;
use unclip::gguf::GgmlType;
use unclip::manifest::sha256_hex;

const STEPS: [&str; 6] = ["--prior-steps", "2", "--decoder-steps", "2", "--sr-steps", "2"];

fn unclip(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_unclip")).args(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

fn ok(args: &[&str]) -> String {
    let (code, out, err) = unclip(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("unclip-png-settings-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The iTXt chunks of a PNG (keyword → text), read with the png crate's own decoder.
fn text_chunks(path: &Path) -> Vec<(String, String)> {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap())).read_info().unwrap();
    dec.info().utf8_text.iter().map(|t| (t.keyword.clone(), t.get_text().unwrap())).collect()
}

fn record(path: &Path) -> Value {
    let chunks = text_chunks(path);
    let json = &chunks.iter().find(|(k, _)| k == "unclip").expect("an unclip chunk").1;
    serde_json::from_str(json).unwrap()
}

/// A generation of "horse" (negative prompt "a dog", seed 5) at 2/2/2 steps on the tiny model, and the model.
fn horse(d: &Path) -> (PathBuf, String) {
    let model = s(&tiny_model(GgmlType::F32));
    let out = d.join("horse.png");
    let mut args =
        vec!["generate", "--model", &model, "--prompt", "horse", "--negative-prompt", "a dog", "--seed", "5"];
    let o = s(&out);
    args.extend(STEPS);
    args.extend(["--out", &o]);
    ok(&args);
    (out, model)
}

#[test]
fn a_generated_png_carries_its_settings_and_from_png_redraws_it_byte_for_byte() {
    let d = dir("generate");
    let (png, model) = horse(&d);
    let chunks = text_chunks(&png);
    assert_eq!(chunks.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["parameters", "unclip"]);
    let parameters: Vec<&str> = chunks[0].1.lines().collect();
    assert_eq!(parameters[0], "horse");
    assert_eq!(parameters[1], "Negative prompt: a dog");
    for pair in [
        "Prior steps: 2",
        "Decoder steps: 2",
        "Super-res steps: 2",
        "Prior guidance: 4",
        "Decoder guidance: 8",
        "Prior best of: 1",
        "Sampler: DDPM",
        "Seed: 5",
        "Size: 64x64",
        "Model: tiny-unclip",
        "Version: unclip ",
    ] {
        assert!(parameters[2].contains(pair), "{pair} in {}", parameters[2]);
    }
    let r = record(&png);
    let model_json = std::fs::read(Path::new(&model).join("model.json")).unwrap();
    assert_eq!(r["model"]["sha256"], sha256_hex(&model_json));
    assert_eq!(
        (r["seed"].as_u64(), r["prompt"].as_str(), r["decoder_steps"].as_u64()),
        (Some(5), Some("horse"), Some(2))
    );
    assert!(r.get("edit").is_none() && r.get("remix").is_none());

    let again = d.join("again.png");
    let (code, _, err) = unclip(&["generate", "--from-png", &s(&png), "--model", &model, "--out", &s(&again)]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("recommends"), "a picture's settings replace the model's recommended ones: {err}");
    assert!(
        std::fs::read(&png).unwrap() == std::fs::read(&again).unwrap(),
        "--from-png redraws the file byte for byte"
    );

    let other = d.join("seed6.png");
    ok(&["generate", "--from-png", &s(&png), "--model", &model, "--seed", "6", "--out", &s(&other)]);
    let r6 = record(&other);
    assert_eq!(r6["seed"], 6, "a flag overrides the picture's setting");
    assert_eq!(
        (r6["prompt"].clone(), r6["negative_prompt"].clone(), r6["sr_steps"].clone()),
        (r["prompt"].clone(), r["negative_prompt"].clone(), r["sr_steps"].clone())
    );
    assert_ne!(std::fs::read(&png).unwrap(), std::fs::read(&other).unwrap());

    let info = ok(&["info", &s(&png)]);
    assert!(
        info.contains("a generation by unclip")
            && info.contains("\nhorse\nNegative prompt: a dog\n")
            && info.contains("\"seed\": 5"),
        "{info}"
    );
}

#[test]
fn edits_remix_frames_and_steps_say_what_they_were() {
    let d = dir("kinds");
    let model = s(&tiny_model(GgmlType::F32));
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("www/gallery/cat-face.png");
    let source_pixels = image::open(&source).unwrap().to_rgba8().into_raw();
    let edited = d.join("edited.png");
    let mut args = vec![
        "img2img",
        "--model",
        &model,
        "--image",
        source.to_str().unwrap(),
        "--prompt",
        "a cat",
        "--strength",
        "0.5",
    ];
    let (e, steps) = (s(&edited), s(&d.join("steps")));
    args.extend(STEPS);
    args.extend(["--out", &e, "--steps-dir", &steps]);
    ok(&args);
    let r = record(&edited);
    assert_eq!(r["edit"]["strength"], 0.5);
    assert_eq!(r["edit"]["source_sha256"], sha256_hex(&source_pixels));
    assert!(r["edit"].get("mask_sha256").is_none(), "an img2img has no mask");
    assert!(text_chunks(&edited)[0].1.contains("Edit: img2img, Denoising strength: 0.5"));

    let (code, _, err) = unclip(&["generate", "--from-png", &e, "--model", &model, "--out", &s(&d.join("x.png"))]);
    assert_eq!(code, 1);
    assert!(
        err.trim().lines().count() == 1
            && err.contains("is an img2img at strength 0.5")
            && err.contains("unclip img2img --from-png"),
        "{err}"
    );
    let again = d.join("edited-again.png");
    ok(&["img2img", "--from-png", &e, "--model", &model, "--image", source.to_str().unwrap(), "--out", &s(&again)]);
    assert!(std::fs::read(&edited).unwrap() == std::fs::read(&again).unwrap(), "an edit redraws byte for byte");

    let step = d.join("steps/decoder_000_t000_x0.png"); // strength 0.5 of 2 steps: the last one, t = 0
    let r = record(&step);
    let width = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&step).unwrap()))
        .read_info()
        .unwrap()
        .info()
        .width;
    assert_eq!(
        (r["step"]["stage"].as_str(), r["step"]["image"].as_str(), r["width"].as_u64()),
        (Some("decoder"), Some("x0"), Some(width as u64))
    );
    assert!(width < 64, "the decoder's step is at the decoder's size");

    let (frames, anim) = (s(&d.join("frames")), s(&d.join("anim.png")));
    let mut args = vec![
        "variations",
        "--model",
        &model,
        "--image",
        source.to_str().unwrap(),
        "--count",
        "2",
        "--frames-dir",
        &frames,
        "--animation",
        &anim,
    ];
    args.extend(STEPS);
    ok(&args);
    let r = record(&d.join("frames/frame_01.png"));
    assert_eq!(
        (r["remix"]["op"].as_str(), r["remix"]["frame"].as_u64(), r["seed"].as_u64()),
        (Some("variations"), Some(1), Some(1))
    );
    assert_eq!(r["remix"]["inputs"][0]["image_sha256"], sha256_hex(&source_pixels));
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&anim).unwrap())).read_info().unwrap();
    assert_eq!(
        dec.info().animation_control().map(|a| a.num_frames),
        Some(2),
        "the animation is an APNG of both frames"
    );
    assert!(record(Path::new(&anim))["remix"].get("frame").is_none(), "the animation is all the frames");
    let (code, _, err) = unclip(&[
        "generate",
        "--from-png",
        &s(&d.join("frames/frame_01.png")),
        "--model",
        &model,
        "--out",
        &s(&d.join("refused.png")),
    ]);
    assert!(code == 1 && err.contains("is a remix (variations)"), "{err}");
    assert!(!d.join("refused.png").exists(), "a refused run writes nothing");
}

#[test]
fn from_png_refuses_a_grid_and_a_run_s_slides_with_a_sentence() {
    let d = dir("grid");
    let (png, model) = horse(&d);
    let (w, h) = {
        let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap())).read_info().unwrap();
        (dec.info().width as usize, dec.info().height as usize)
    };
    let grid = serde_json::json!({"x": {"setting": "seed", "values": [5]}, "y": {"setting": "sr_steps", "values": [2]},
        "left": 0, "top": 0, "cell_width": w, "cell_height": h});
    let frames =
        serde_json::json!({"stage": "decoder", "image": "x0", "t": [999], "frame_width": w, "frame_height": h});
    for (key, value, kind) in [("grid", grid, "an X/Y grid"), ("step_frames", frames, "x0 of 1 decoder steps")] {
        let mut r = record(&png);
        r[key] = value;
        let file = d.join(format!("{key}.png"));
        with_chunk(&png, &file, &itxt(r.to_string().as_bytes(), false));
        let (code, _, err) = unclip(&["info", &s(&file)]);
        assert_eq!(code, 0, "{key}: the record is valid and `info` reads it: {err}");
        let (code, _, err) =
            unclip(&["generate", "--from-png", &s(&file), "--model", &model, "--out", &s(&d.join("refused.png"))]);
        assert!(
            code == 1 && err.contains(kind) && err.contains("--from-png redraws generations and edits"),
            "{key}: {err}"
        );
    }
    assert!(!d.join("refused.png").exists(), "a refused run writes nothing");
}

/// A copy of `png` whose `unclip` chunk is replaced by an iTXt chunk of `data` (written by the png crate, so with a
/// correct CRC).
fn with_chunk(png: &Path, out: &Path, data: &[u8]) {
    let mut dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap())).read_info().unwrap();
    let mut pixels = vec![0; dec.output_buffer_size().unwrap()];
    let (w, h) = (dec.info().width, dec.info().height);
    dec.next_frame(&mut pixels).unwrap();
    let mut bytes = Vec::new();
    let mut enc = png::Encoder::new(&mut bytes, w, h);
    enc.set_color(png::ColorType::Rgba);
    let mut writer = enc.write_header().unwrap();
    writer.write_chunk(png::chunk::ChunkType(*b"iTXt"), data).unwrap();
    writer.write_image_data(&pixels).unwrap();
    writer.finish().unwrap();
    std::fs::write(out, bytes).unwrap();
}

fn itxt(text: &[u8], compressed: bool) -> Vec<u8> {
    [b"unclip\0".as_slice(), &[compressed as u8, 0], b"\0\0", text].concat()
}

#[test]
fn hostile_chunks_and_plain_pngs_get_one_sentence_quickly() {
    let d = dir("hostile");
    let (png, model) = horse(&d);
    let json = String::from_utf8(record(&png).to_string().into_bytes()).unwrap();
    let good: Value = serde_json::from_str(&json).unwrap();
    let with = |key: &str, v: &str| {
        let mut r = good.clone();
        r[key] = serde_json::from_str(v).unwrap();
        r.to_string()
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("huge", itxt(&vec![b' '; 3 << 20], false), "more than the 1048576 unclip writes"),
        ("utf8", itxt(b"{\"prompt\":\"\xff\xfe\"}", false), "not UTF-8"),
        ("compressed", itxt(b"x\x9c", true), "compressed"),
        (
            "nan",
            itxt(json.replace("\"prior_guidance\":4.0", "\"prior_guidance\":NaN").as_bytes(), false),
            "not the record unclip writes",
        ),
        (
            "absurd",
            itxt(with("decoder_steps", "1000000000000").as_bytes(), false),
            "decoder steps must be between 2 and 1000",
        ),
        (
            "guidance",
            itxt(with("decoder_guidance", "1e300").as_bytes(), false),
            "decoder guidance must be a number from 0 to 100",
        ),
        (
            "size",
            itxt(with("width", "4000000000").as_bytes(), false),
            "the picture is 4000000000×64 pixels, and unclip takes from 1 to 67108864",
        ),
        ("unknown", itxt(with("lora", "\"x\"").as_bytes(), false), "unknown field `lora`"),
        ("prompt", itxt(with("prompt", &format!("\"{}\"", "a".repeat(100_001))).as_bytes(), false), "at most 100000"),
    ];
    let mut files: Vec<(PathBuf, &str)> = cases
        .into_iter()
        .map(|(tag, data, needle)| {
            let f = d.join(format!("{tag}.png"));
            with_chunk(&png, &f, &data);
            (f, needle)
        })
        .collect();
    // a chunk that claims 4 GB in a file of a few hundred bytes: refused by its length, never read
    let liar = d.join("liar.png");
    let bytes = std::fs::read(&png).unwrap();
    std::fs::write(&liar, [&bytes[..33], &[0xff, 0xff, 0xff, 0x00], b"iTXtunclip\0\0\0\0\0{"].concat()).unwrap();
    files.push((liar, "4294967040 bytes"));
    let plain = Path::new(env!("CARGO_MANIFEST_DIR")).join("www/gallery/dog-face.png");
    files.push((plain, "carries no unclip settings"));

    for (file, needle) in &files {
        for args in [
            vec![
                "generate",
                "--from-png",
                file.to_str().unwrap(),
                "--model",
                &model,
                "--out",
                &s(&d.join("refused.png")),
            ],
            vec!["info", file.to_str().unwrap()],
        ] {
            let start = Instant::now();
            let (code, _, err) = unclip(&args);
            let took = start.elapsed();
            assert_eq!(code, 1, "{args:?}: {err}");
            let line = err.trim();
            assert!(
                line.lines().count() == 1 && line.starts_with("error: ") && line.contains(needle),
                "{args:?}: expected `{needle}` in {line:?}"
            );
            assert!(!line.contains("panicked"), "{line}");
            assert!(took.as_secs_f64() < 5.0, "{args:?} took {took:?}");
        }
    }
    let toml = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let (code, _, err) =
        unclip(&["generate", "--from-png", toml, "--model", &model, "--out", &s(&d.join("refused.png"))]);
    assert!(code == 1 && err.trim().lines().count() == 1 && err.contains("is not a PNG file"), "{err}");
    assert!(!d.join("refused.png").exists(), "a refused run writes nothing");
}
