//! One diffusers component folder (config.json + safetensors) → one GGUF file, with `unclip convert`'s
//! storage rules (src/convert.rs). For benchmarks that need a single component, e.g. the decoder UNet of
//! bench/onnx/export_unet.py (bench/browser_unet_step.mjs runs this):
//!     cargo run --release --example convert_component -- <DIR> <OUT.gguf> [--name decoder] [--dtype f32]
use std::path::PathBuf;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut pos, mut name, mut dtype) = (Vec::new(), "decoder".to_string(), "f32".to_string());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--name" => name = args.next().ok_or("--name needs a value")?,
            "--dtype" => dtype = args.next().ok_or("--dtype needs a value")?,
            _ => pos.push(PathBuf::from(a)),
        }
    }
    let [dir, out] = <[PathBuf; 2]>::try_from(pos)
        .map_err(|_| "usage: convert_component <DIR> <OUT.gguf> [--name decoder] [--dtype f32|f16|q8_0|q4_0]")?;
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json"))?)?;
    let class = config["_class_name"].as_str().ok_or("config.json has no _class_name")?.to_string();
    let bytes =
        unclip::convert::convert_component(&dir, &name, &class, &config, unclip::convert::parse_dtype(&dtype)?)?;
    std::fs::write(&out, &bytes)?;
    println!("{}: {name} ({class}, {dtype}), {} bytes", out.display(), bytes.len());
    Ok(())
}
