//! `unclip img2img` (SDEdit) and `unclip inpaint` (RePaint): a picture redrawn toward a prompt, whole or where a
//! mask is white (src/edit.rs), with `generate`'s flags and outputs.

use std::path::PathBuf;

use clap::Args;

use unclip::edit::{EditParams, IMG2IMG_STRENGTH};
use unclip::image_processor::RgbaImage;
use unclip::image_settings::pixels_sha256;
use unclip::Result;

use crate::files::read_image;
use crate::from_png::FromRecord;
use crate::generate::{run_job, RunArgs};

#[derive(Args)]
pub struct Img2imgCommand {
    /// The image to start from (PNG, any size: the middle square is used).
    #[arg(long)]
    image: PathBuf,
    /// [default: ""]
    #[arg(long)]
    prompt: Option<String>,
    #[arg(long, help = format!("0 keeps the image, 1 draws a new one [default: {IMG2IMG_STRENGTH}]."))]
    strength: Option<f32>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args)]
pub struct InpaintCommand {
    #[arg(long)]
    image: PathBuf,
    /// White = repaint, black = keep (PNG, any size: stretched over the image).
    #[arg(long)]
    mask: PathBuf,
    /// [default: ""]
    #[arg(long)]
    prompt: Option<String>,
    #[arg(long, help = format!(
        "Below 1, the repainted part starts from the image noised to strength·T instead of from noise [default: {}].",
        EditParams::default().strength
    ))]
    strength: Option<f32>,
    #[arg(long, help = format!(
        "RePaint's resampling: run each step this many times (1 = none; the paper uses 10) [default: {}].",
        EditParams::default().resample
    ))]
    resample: Option<usize>,
    #[command(flatten)]
    run: RunArgs,
}

pub fn img2img(Img2imgCommand { image, prompt, strength, run }: Img2imgCommand) -> Result<()> {
    let RunArgs { from, args, outputs } = run;
    let from = from.read(true)?;
    let image = read_image(&image)?;
    let (strength, _) = edit_settings(&image, strength, None, from.as_ref(), (IMG2IMG_STRENGTH, 1));
    let edit = EditParams { image, mask: None, strength, resample: 1 };
    run_job(&args, args.params(prompt, from.as_ref())?, Some(edit), outputs)
}

pub fn inpaint(c: InpaintCommand) -> Result<()> {
    let InpaintCommand { image, mask, prompt, strength, resample, run: RunArgs { from, args, outputs } } = c;
    let from = from.read(true)?;
    let mask = Some(read_image(&mask)?);
    let image = read_image(&image)?;
    let d = EditParams::default();
    let (strength, resample) = edit_settings(&image, strength, resample, from.as_ref(), (d.strength, d.resample));
    let edit = EditParams { image, mask, strength, resample };
    run_job(&args, args.params(prompt, from.as_ref())?, Some(edit), outputs)
}

/// An edit's strength and resampling: the flags given, else the picture's (`--from-png`), else `defaults`; warns
/// when the source picture is not the one the picture was edited from.
fn edit_settings(
    image: &RgbaImage,
    strength: Option<f32>,
    resample: Option<usize>,
    from: Option<&FromRecord>,
    defaults: (f32, usize),
) -> (f32, usize) {
    let recorded = from.and_then(|f| f.record.edit.as_ref().map(|e| (f, e)));
    if let Some((f, e)) = recorded {
        if e.source_sha256 != pixels_sha256(&image.rgba) {
            eprintln!(
                "warning: {} was edited from a picture whose pixels' SHA-256 is {}…, and --image's is {}…: the result will differ",
                f.file,
                &e.source_sha256[..12],
                &pixels_sha256(&image.rgba)[..12]
            );
        }
    }
    (
        strength.or(recorded.map(|(_, e)| e.strength)).unwrap_or(defaults.0),
        resample.or(recorded.map(|(_, e)| e.resample)).unwrap_or(defaults.1),
    )
}
