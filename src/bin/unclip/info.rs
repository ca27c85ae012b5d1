//! `unclip info <DIR|FILE.gguf|FILE.png>`: a model directory's components, a GGUF file's metadata and tensors, or
//! the settings a PNG unclip wrote carries.

use std::path::{Path, PathBuf};

use clap::Args;

use unclip::gguf::GgufFile;
use unclip::manifest::open_model_dir;
use unclip::{Error, Result};

use crate::from_png::read_png_settings;

#[derive(Args)]
pub struct InfoCommand {
    path: PathBuf,
}

pub fn run(InfoCommand { path }: InfoCommand) -> Result<()> {
    if path.is_dir() {
        model_dir(&path)
    } else if is_png(&path)? {
        let record = read_png_settings(&path)?;
        println!("{}: {} by {} with {}", path.display(), record.kind(), record.engine, record.model.describe());
        println!("{}", record.to_parameters());
        println!("{}", serde_json::to_string_pretty(&record).expect("a record serialises"));
        Ok(())
    } else {
        gguf(&path)
    }
}

fn model_dir(path: &Path) -> Result<()> {
    let (m, _) = open_model_dir(path)?;
    println!("{} {} — licence: {}", m.name, m.version, m.license);
    for a in &m.attribution {
        println!("  credit: {} ({})", a.name, a.license);
    }
    println!(
        "tokenizer: {} ({} bytes, pads to {} tokens)",
        m.tokenizer.file.file, m.tokenizer.file.bytes, m.tokenizer.max_length
    );
    for (name, c) in m.components() {
        let file = GgufFile::from_bytes(
            std::fs::read(path.join(&c.weights.file)).map_err(|e| Error::io(path.join(&c.weights.file), e))?,
        )?;
        let params: usize = file.tensors().map(|t| t.info.shape.iter().product::<usize>()).sum();
        println!(
            "{name:<16} {:<30} {:>10.2} MB  {:>11} params  {}  sha256 {}…",
            c.class,
            c.weights.bytes as f64 / 1e6,
            params,
            type_summary(&file),
            &c.weights.sha256[..12]
        );
        println!("{:<16} config {}", "", c.config);
    }
    for (name, s) in [
        ("prior_scheduler", m.prior_scheduler.as_ref()),
        ("decoder_scheduler", Some(&m.decoder_scheduler)),
        ("super_res_scheduler", Some(&m.super_res_scheduler)),
    ] {
        let Some(s) = s else { continue };
        println!("{name:<16} {} {}", s.class, s.config);
    }
    println!("total download {:.2} MB", m.total_bytes() as f64 / 1e6);
    Ok(())
}

fn gguf(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let file = GgufFile::from_bytes(bytes)?;
    for (k, v) in &file.header().metadata {
        println!("{k} = {v:?}");
    }
    for t in file.tensors() {
        println!(
            "{:<60} {:>20} {:?} {} bytes",
            t.info.name,
            format!("{:?}", t.info.shape),
            t.info.dtype,
            t.info.n_bytes
        );
    }
    println!("{} tensors, {}", file.header().tensors.len(), type_summary(&file));
    Ok(())
}

/// Whether the file at `path` starts with PNG's signature.
fn is_png(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut head = [0u8; 8];
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(f.read_exact(&mut head).is_ok() && head == *b"\x89PNG\r\n\x1a\n")
}

fn type_summary(file: &GgufFile) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for t in file.tensors() {
        *counts.entry(format!("{:?}", t.info.dtype)).or_insert(0) += 1;
    }
    counts.iter().map(|(k, v)| format!("{v}×{k}")).collect::<Vec<_>>().join(" ")
}
