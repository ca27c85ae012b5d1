//! `unclip variations | interpolate | text-diff | embed`: DALL·E 2's CLIP-latent features (§3 of the
//! paper) with `generate`'s conventions: --model, --seed, the step and guidance flags, --backend,
//! --sampler; a PNG strip of the frames (--out), optionally each frame (--frames-dir) and an animated
//! PNG (--animation); errors are one sentence and exit status 1.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use unclip::backend::cpu::Cpu;
use unclip::backend::Backend;
use unclip::image_settings::{pixels_sha256, ImageSettings, ModelIdentity, RemixInput, RemixOp, RemixRecord};
use unclip::latent;
use unclip::manifest::open_model_dir;
use unclip::pipeline::{GenerateOutput, GenerateParams, UnCLIPPipeline};
use unclip::remix::{frame_params, variation_params};
use unclip::{Error, Result};

use crate::files::{read_image, write_bytes, write_png};
use crate::generation_args::{model_identity, webgpu, BackendChoice, GenerationArgs};
use crate::progress::ProgressBar;

/// Where the frames go.
#[derive(Args)]
pub struct Outputs {
    /// The frames side by side as one PNG.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write each frame as DIR/frame_NN.png.
    #[arg(long)]
    frames_dir: Option<PathBuf>,
    /// Also write an animated PNG that plays the frames forwards and back.
    #[arg(long)]
    animation: Option<PathBuf>,
    /// Milliseconds per frame of the animation.
    #[arg(long, default_value_t = 150)]
    frame_ms: u16,
}

#[derive(Subcommand)]
pub enum RemixCommand {
    /// Variations of an image: its CLIP image embedding decoded from several seeds (DALL·E 2 Fig. 3).
    Variations {
        #[command(flatten)]
        common: GenerationArgs,
        /// The source image (PNG).
        #[arg(long)]
        image: PathBuf,
        /// How many variations (seeds SEED, SEED+1, …).
        #[arg(long, default_value_t = 4)]
        count: usize,
        /// Start the decoder from the image's own noise, found by DDIM inversion, to keep its layout;
        /// the decoder then samples with DDIM at --eta (0 reconstructs the image).
        #[arg(long)]
        invert: bool,
        /// DDIM's η after --invert (default 0.5; 0 = deterministic, 1 = DDPM-like).
        #[arg(long)]
        eta: Option<f32>,
        #[command(flatten)]
        outputs: Outputs,
    },
    /// Frames along the great circle between two image embeddings, all decoded from one seed (Fig. 4).
    Interpolate {
        #[command(flatten)]
        common: GenerationArgs,
        #[arg(long)]
        from_image: Option<PathBuf>,
        /// A prompt whose image embedding (through the prior) starts the interpolation.
        #[arg(long)]
        from_text: Option<String>,
        #[arg(long)]
        to_image: Option<PathBuf>,
        #[arg(long)]
        to_text: Option<String>,
        #[arg(long, default_value_t = 8)]
        frames: usize,
        #[command(flatten)]
        outputs: Outputs,
    },
    /// An image embedding rotated towards normalise(z_t(--to) − z_t(--from)) for θ from 0 to --max-theta (Fig. 5).
    TextDiff {
        #[command(flatten)]
        common: GenerationArgs,
        /// The image to change (PNG).
        #[arg(long)]
        image: Option<PathBuf>,
        /// Or a prompt, through the prior.
        #[arg(long)]
        prompt: Option<String>,
        /// What the picture shows now ("a cat").
        #[arg(long)]
        from: String,
        /// What it should show ("a dog").
        #[arg(long)]
        to: String,
        #[arg(long, default_value_t = 5)]
        frames: usize,
        #[arg(long, default_value_t = 0.5)]
        max_theta: f32,
        #[command(flatten)]
        outputs: Outputs,
    },
    /// Print a prompt's or an image's embedding as JSON (a prompt gives its text embedding z_t and the
    /// prior's image embedding for --seed).
    Embed {
        #[command(flatten)]
        common: GenerationArgs,
        #[arg(long)]
        text: Option<String>,
        #[arg(long)]
        image: Option<PathBuf>,
    },
}

impl RemixCommand {
    fn common(&self) -> &GenerationArgs {
        match self {
            RemixCommand::Variations { common, .. }
            | RemixCommand::Interpolate { common, .. }
            | RemixCommand::TextDiff { common, .. }
            | RemixCommand::Embed { common, .. } => common,
        }
    }
}

pub fn run(command: RemixCommand) -> Result<()> {
    match command.common().backend {
        BackendChoice::Cpu => run_on(&Cpu, command),
        BackendChoice::Webgpu => run_on(&webgpu()?, command),
    }
}

fn base_params(c: &GenerationArgs) -> Result<GenerateParams> {
    let p = c.params(None, None)?;
    check(&p)?;
    Ok(p)
}

/// `generate`'s checks of the settings (the prompt may be empty: frames decode given embeddings).
fn check(p: &GenerateParams) -> Result<()> {
    GenerateParams { image_embedding: Some(Vec::new()), ..p.clone() }.validate()
}

/// Exactly one of an image file and a prompt.
fn one_source<'a>(
    what: &str,
    image: &'a Option<PathBuf>,
    text: &'a Option<String>,
    flags: [&str; 2],
) -> Result<Source<'a>> {
    match (image, text) {
        (Some(path), None) => Ok(Source::Image(path)),
        (None, Some(text)) => Ok(Source::Text(text)),
        _ => Err(Error::Settings(format!(
            "give the {what} as {} FILE.png or as {} TEXT, exactly one of the two",
            flags[0], flags[1]
        ))),
    }
}

enum Source<'a> {
    Image(&'a Path),
    Text(&'a str),
}

fn needs_output(o: &Outputs) -> Result<()> {
    if o.out.is_none() && o.frames_dir.is_none() && o.animation.is_none() {
        return Err(Error::Settings(
            "nothing to write: give --out STRIP.png, --frames-dir DIR or --animation FILE.png".into(),
        ));
    }
    Ok(())
}

struct Cli<B: Backend> {
    pipeline: UnCLIPPipeline<B>,
    model: ModelIdentity,
}

impl<B: Backend> Cli<B> {
    /// How a remix's record names `source`: its prompt, or its pixels' SHA-256.
    fn input(source: &Source) -> Result<RemixInput> {
        Ok(match source {
            Source::Image(path) => RemixInput::ImageSha256(pixels_sha256(&read_image(path)?.rgba)),
            Source::Text(text) => RemixInput::Prompt(text.to_string()),
        })
    }

    fn embed(&self, source: &Source, base: &GenerateParams) -> Result<Vec<f32>> {
        match source {
            Source::Image(path) => pollster::block_on(self.pipeline.embed_image(&read_image(path)?)),
            Source::Text(text) => {
                let p = GenerateParams { prompt: text.to_string(), ..base.clone() };
                let mut progress = ProgressBar::plain();
                let result = pollster::block_on(self.pipeline.embed_prompt(&p, &mut progress));
                progress.settle(result)
            }
        }
    }

    /// Decodes each frame's settings, reporting progress, and writes the outputs, each with its settings and
    /// `remix` (whose `frame` this fills in).
    fn frames(&self, params: Vec<GenerateParams>, remix: RemixRecord, outputs: &Outputs, bounce: bool) -> Result<()> {
        let n = params.len();
        let mut images: Vec<GenerateOutput> = Vec::with_capacity(n);
        for (k, p) in params.iter().enumerate() {
            eprintln!("frame {}/{n} (seed {})", k + 1, p.seed);
            let mut progress = ProgressBar::plain();
            let result = pollster::block_on(self.pipeline.generate(p, &mut progress));
            images.push(progress.settle(result)?);
        }
        let (w, h) = (images[0].width, images[0].height);
        let record = |k: Option<usize>, width| ImageSettings {
            remix: Some(RemixRecord { frame: k, ..remix.clone() }),
            ..ImageSettings::new(&params[k.unwrap_or(0)], None, &self.model, width, h)
        };
        let rgba: Vec<Vec<u8>> = images.iter().map(GenerateOutput::to_rgba8).collect();
        write_frames(&rgba, w, h, outputs, bounce, record)
    }
}

/// The strip, the frames and the animation of `rgba` (each `w`×`h`); `record(frame, width)` gives each file's
/// settings (frame None: all of them).
fn write_frames(
    rgba: &[Vec<u8>],
    w: usize,
    h: usize,
    o: &Outputs,
    bounce: bool,
    record: impl Fn(Option<usize>, usize) -> ImageSettings,
) -> Result<()> {
    if let Some(path) = &o.out {
        // (h, n·w): row y of the strip is row y of every frame in turn
        let strip: Vec<u8> =
            (0..h).flat_map(|y| rgba.iter().flat_map(move |f| f[y * w * 4..(y + 1) * w * 4].iter().copied())).collect();
        write_png(path, &strip, w * rgba.len(), h, &record(None, w * rgba.len()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(dir) = &o.frames_dir {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        for (k, f) in rgba.iter().enumerate() {
            write_png(&dir.join(format!("frame_{k:02}.png")), f, w, h, &record(Some(k), w))?;
        }
        eprintln!("wrote {} frames to {}", rgba.len(), dir.display());
    }
    if let Some(path) = &o.animation {
        let mut order: Vec<Vec<u8>> = rgba.to_vec();
        if bounce && rgba.len() > 2 {
            order.extend(rgba[1..rgba.len() - 1].iter().rev().cloned());
        }
        let bytes = unclip::png_file::encode_apng(&order, w, h, o.frame_ms.max(1), &record(None, w))?;
        write_bytes(path, &bytes)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn run_on<B: Backend>(be: &B, command: RemixCommand) -> Result<()> {
    let base = base_params(command.common())?;
    if let RemixCommand::Variations { outputs, .. }
    | RemixCommand::Interpolate { outputs, .. }
    | RemixCommand::TextDiff { outputs, .. } = &command
    {
        needs_output(outputs)?;
    }
    let dir = &command.common().model;
    let (manifest, open) = open_model_dir(dir)?;
    let model = model_identity(dir, &manifest)?;
    let cli = Cli { pipeline: UnCLIPPipeline::load(be, manifest, open)?, model };
    match command {
        RemixCommand::Variations { image, count, invert, eta, outputs, .. } => {
            if !(1..=64).contains(&count) {
                return Err(Error::Settings(format!("--count must be between 1 and 64 (got {count})")));
            }
            if eta.is_some() && !invert {
                return Err(Error::Settings(
                    "--eta sets DDIM's η for decoding from the inverted noise: give it together with --invert".into(),
                ));
            }
            let base = GenerateParams { ddim_eta: eta.unwrap_or(if invert { 0.5 } else { base.ddim_eta }), ..base };
            check(&base)?;
            let picture = read_image(&image)?;
            let embedding = pollster::block_on(cli.pipeline.embed_image(&picture))?;
            let inverted = if invert {
                let frame = frame_params(&base, embedding.clone(), base.seed);
                let mut progress = ProgressBar::plain();
                let result = pollster::block_on(cli.pipeline.invert(&picture, &embedding, &frame, &mut progress));
                Some(progress.settle(result)?)
            } else {
                None
            };
            let params = (0..count).map(|k| variation_params(&base, &embedding, inverted.as_deref(), k)).collect();
            let inputs = vec![RemixInput::ImageSha256(pixels_sha256(&picture.rgba))];
            let remix =
                RemixRecord { op: RemixOp::Variations, frame: None, frames: count, inputs, invert, max_theta: None };
            cli.frames(params, remix, &outputs, false)
        }
        RemixCommand::Interpolate { from_image, from_text, to_image, to_text, frames, outputs, .. } => {
            let from = one_source("start", &from_image, &from_text, ["--from-image", "--from-text"])?;
            let to = one_source("end", &to_image, &to_text, ["--to-image", "--to-text"])?;
            let (a, b) = (cli.embed(&from, &base)?, cli.embed(&to, &base)?);
            let embeddings = latent::interpolation(&a, &b, frames)?;
            let inputs = vec![Cli::<B>::input(&from)?, Cli::<B>::input(&to)?];
            let remix =
                RemixRecord { op: RemixOp::Interpolate, frame: None, frames, inputs, invert: false, max_theta: None };
            cli.frames(
                embeddings.into_iter().map(|z| frame_params(&base, z, base.seed)).collect(),
                remix,
                &outputs,
                true,
            )
        }
        RemixCommand::TextDiff { image, prompt, from, to, frames, max_theta, outputs, .. } => {
            if !(0.0..=1.0).contains(&max_theta) {
                return Err(Error::Settings(format!("--max-theta must be between 0 and 1 (got {max_theta})")));
            }
            let source = one_source("picture", &image, &prompt, ["--image", "--prompt"])?;
            let z_i = cli.embed(&source, &base)?;
            let current = pollster::block_on(cli.pipeline.text_embedding(&from))?;
            let target = pollster::block_on(cli.pipeline.text_embedding(&to))?;
            let embeddings = latent::text_diff_frames(&z_i, &current, &target, frames, max_theta)?;
            let inputs = vec![Cli::<B>::input(&source)?, RemixInput::Prompt(from), RemixInput::Prompt(to)];
            let remix = RemixRecord {
                op: RemixOp::TextDiff,
                frame: None,
                frames,
                inputs,
                invert: false,
                max_theta: Some(max_theta),
            };
            cli.frames(
                embeddings.into_iter().map(|z| frame_params(&base, z, base.seed)).collect(),
                remix,
                &outputs,
                true,
            )
        }
        RemixCommand::Embed { text, image, .. } => {
            let json = match one_source("input", &image, &text, ["--image", "--text"])? {
                Source::Image(path) => serde_json::json!({
                    "model": cli.pipeline.manifest.name,
                    "image": path.display().to_string(),
                    "image_embedding": cli.embed(&Source::Image(path), &base)?,
                }),
                Source::Text(t) => serde_json::json!({
                    "model": cli.pipeline.manifest.name,
                    "text": t,
                    "seed": base.seed,
                    "text_embedding": pollster::block_on(cli.pipeline.text_embedding(t))?,
                    "image_embedding": cli.embed(&Source::Text(t), &base)?,
                }),
            };
            println!("{json}");
            Ok(())
        }
    }
}
