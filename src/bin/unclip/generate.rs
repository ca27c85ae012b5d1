//! `unclip generate`: a prompt (or a picture's settings, `--from-png`) → a PNG, an .npy and/or every step's
//! pictures; also the run that `img2img` and `inpaint` share ([`run_job`]).

use std::path::PathBuf;

use clap::Args;

use unclip::backend::cpu::Cpu;
use unclip::backend::Backend;
use unclip::edit::EditParams;
use unclip::image_processor::hwc_to_rgba8;
use unclip::image_settings::ImageSettings;
use unclip::manifest::open_model_dir;
use unclip::pipeline::UnCLIPPipeline;
use unclip::settings::GenerateParams;
use unclip::{Error, Result};

use crate::files::{write_npy, write_png};
use crate::from_png::FromPng;
use crate::generation_args::{model_identity, webgpu, BackendChoice, GenerationArgs};
use crate::progress::ProgressBar;

#[derive(Args)]
pub struct GenerateCommand {
    #[arg(long, required_unless_present = "from_png")]
    prompt: Option<String>,
    #[command(flatten)]
    run: RunArgs,
}

/// The flags `generate`, `img2img` and `inpaint` share: a picture's settings to start from, the generation
/// settings, where the result goes.
#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub from: FromPng,
    #[command(flatten)]
    pub args: GenerationArgs,
    #[command(flatten)]
    pub outputs: Outputs,
}

/// Where `generate`, `img2img` and `inpaint` write their result.
#[derive(Args)]
pub struct Outputs {
    /// Write the final image as a PNG.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the final image as float32 (1, H, W, 3) in [0, 1], as diffusers' output_type="np".
    #[arg(long)]
    out_npy: Option<PathBuf>,
    /// Write every decoder and super-res step's x_t and predicted x̂0 as PNGs here.
    #[arg(long)]
    steps_dir: Option<PathBuf>,
}

pub fn run(GenerateCommand { prompt, run: RunArgs { from, args, outputs } }: GenerateCommand) -> Result<()> {
    let from = from.read(false)?;
    run_job(&args, args.params(prompt, from.as_ref())?, None, outputs)
}

/// Checks the settings, then generates (or edits) on the chosen backend and writes the outputs.
pub fn run_job(
    args: &GenerationArgs,
    params: GenerateParams,
    edit: Option<EditParams>,
    outputs: Outputs,
) -> Result<()> {
    params.validate()?;
    if let Some(e) = &edit {
        e.validate()?;
    }
    if outputs.out.is_none() && outputs.out_npy.is_none() && outputs.steps_dir.is_none() {
        return Err(Error::Settings(
            "nothing to write: give --out FILE.png, --out-npy FILE.npy or --steps-dir DIR".into(),
        ));
    }
    match args.backend {
        BackendChoice::Cpu => generate(&Cpu, args, &params, edit.as_ref(), outputs),
        BackendChoice::Webgpu => generate(&webgpu()?, args, &params, edit.as_ref(), outputs),
    }
}

fn generate<B: Backend>(
    be: &B,
    args: &GenerationArgs,
    params: &GenerateParams,
    edit: Option<&EditParams>,
    Outputs { out, out_npy, steps_dir }: Outputs,
) -> Result<()> {
    let (manifest, open) = open_model_dir(&args.model)?;
    let identity = model_identity(&args.model, &manifest)?;
    let pipeline = UnCLIPPipeline::load(be, manifest, open)?;
    if let Some(dir) = &steps_dir {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let (h, w) = pipeline.output_size();
    let record = ImageSettings::new(params, edit, &identity, w, h);
    let mut progress = ProgressBar { steps_dir: steps_dir.map(|dir| (dir, record.clone())), error: None };
    let result = pollster::block_on(async {
        match edit {
            Some(e) => pipeline.edit(params, e, &mut progress).await,
            None => pipeline.generate(params, &mut progress).await,
        }
    });
    let output = progress.settle(result)?;
    if let Some(path) = out {
        let record = ImageSettings { width: output.width, height: output.height, ..record };
        write_png(&path, &hwc_to_rgba8(&output.image), output.width, output.height, &record)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = out_npy {
        write_npy(&path, &output.image, &[1, output.height, output.width, 3])?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
