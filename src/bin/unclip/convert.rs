//! `unclip convert <DIFFUSERS_DIR> <OUT_DIR> [--dtype …]`: a diffusers UnCLIPPipeline folder → a model directory
//! (src/convert.rs; docs/formats.md).

use std::path::PathBuf;

use clap::Args;

use unclip::convert::{convert, parse_dtype};
use unclip::Result;

#[derive(Args)]
pub struct ConvertCommand {
    diffusers_dir: PathBuf,
    out_dir: PathBuf,
    /// Type of the Linear/Conv2d weights (norms and biases stay f32).
    #[arg(long, default_value = "f32")]
    dtype: String,
}

pub fn run(ConvertCommand { diffusers_dir, out_dir, dtype }: ConvertCommand) -> Result<()> {
    let dtype = parse_dtype(&dtype)?;
    let m = convert(&diffusers_dir, &out_dir, dtype, |msg| eprintln!("{msg}"))?;
    eprintln!(
        "wrote {} ({} files, {:.1} MB)",
        out_dir.join("model.json").display(),
        m.files().len(),
        m.total_bytes() as f64 / 1e6
    );
    Ok(())
}
