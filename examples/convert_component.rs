//! One diffusers component folder (config.json + safetensors) → one GGUF file, with `unclip convert`'s
//! storage rules (src/convert.rs). For benchmarks that need a single component, e.g. the decoder UNet of
//! bench/onnx/export_unet.py (bench/browser_unet_step.mjs runs this):
//!     cargo run --release --example convert_component -- <DIR> <OUT.gguf> [--name decoder] [--dtype f32]
//!         [--model NAME] [--license LICENCE]   (the file's general.name and general.license)
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
    let (mut model, mut license) = ("unclip-component".to_string(), unclip::convert::UNKNOWN_LICENSE.to_string());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--name" => name = args.next().ok_or("--name needs a value")?,
            "--dtype" => dtype = args.next().ok_or("--dtype needs a value")?,
            "--model" => model = args.next().ok_or("--model needs a value")?,
            "--license" => license = args.next().ok_or("--license needs a value")?,
            _ => pos.push(PathBuf::from(a)),
        }
    }
    let [dir, out] = <[PathBuf; 2]>::try_from(pos)
        .map_err(|_| "usage: convert_component <DIR> <OUT.gguf> [--name decoder] [--dtype f32|f16|q8_0|q4_0] [--model NAME] [--license LICENCE]")?;
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json"))?)?;
    let class = config["_class_name"].as_str().ok_or("config.json has no _class_name")?.to_string();
    let model = unclip::convert::GgufModel { name: &model, license: &license };
    let ty = unclip::convert::parse_dtype(&dtype)?;
    let bytes = unclip::convert::convert_component(&dir, model, &name, &class, &config, ty)?;
    std::fs::write(&out, &bytes)?;
    println!("{}: {name} ({class}, {dtype}), {} bytes", out.display(), bytes.len());
    Ok(())
}
