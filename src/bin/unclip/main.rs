//! `unclip` — convert diffusers UnCLIP checkpoints, generate images, inspect model files.
//! Errors print one sentence and exit with status 1.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod bench;
mod bench_karlo;
#[cfg(feature = "bench")]
mod bench_unet_step;
mod remix;
mod soak;

use unclip::backend::cpu::Cpu;
use unclip::backend::webgpu::WebGpu;
use unclip::backend::{Backend, Tensor};
use unclip::convert::{convert, parse_dtype};
use unclip::edit::{EditParams, IMG2IMG_STRENGTH};
use unclip::gguf::GgufFile;
use unclip::image_processor::{chw_to_hwc01, hwc_to_rgba8};
use unclip::image_settings::{pixels_sha256, ImageSettings, ModelIdentity};
use unclip::manifest::{open_model_dir, Manifest};
use unclip::pipeline::{Event, Flow, GenerateParams, Observer, Sampler, Stage, UnCLIPPipeline};
use unclip::settings::Recommended;
use unclip::{Error, Result};

#[derive(Parser)]
#[command(name = "unclip", version, about = "DALL·E 2 (unCLIP) in Rust: convert, generate, inspect")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendChoice {
    Cpu,
    Webgpu,
}

#[derive(Clone, Copy, ValueEnum)]
enum SamplerChoice {
    Ddpm,
    Ddim,
}

impl SamplerChoice {
    fn sampler(self) -> Sampler {
        match self {
            SamplerChoice::Ddpm => Sampler::Ddpm,
            SamplerChoice::Ddim => Sampler::Ddim,
        }
    }
}

/// The model, seed, steps, guidance, prior best-of, sampler and backend: the flags `generate` and the remix
/// commands share.
#[derive(Args)]
pub struct GenerationArgs {
    #[arg(long)]
    model: PathBuf,
    /// [default: 0]
    #[arg(long)]
    seed: Option<u64>,
    /// The caption guidance steers away from (the unconditional half of CFG, prior and decoder) [default: "",
    /// diffusers' behaviour].
    #[arg(long)]
    negative_prompt: Option<String>,
    /// Prior steps (remix: for endpoints given as text) [default: the model's recommended value, else 25].
    #[arg(long)]
    prior_steps: Option<usize>,
    /// [default: the model's recommended value, else 25]
    #[arg(long)]
    decoder_steps: Option<usize>,
    /// [default: the model's recommended value, else 7]
    #[arg(long)]
    sr_steps: Option<usize>,
    /// [default: the model's recommended value, else 4]
    #[arg(long)]
    prior_guidance: Option<f32>,
    /// [default: the model's recommended value, else 8]
    #[arg(long)]
    decoder_guidance: Option<f32>,
    /// Draw this many image embeddings with the prior and keep the one closest to the text (DALL·E 2 uses 2)
    /// [default: the model's recommended value, else 1].
    #[arg(long)]
    prior_best_of: Option<usize>,
    /// ddpm (diffusers' ancestral unCLIP step) or ddim (η = 0, deterministic after the initial noise) [default: ddpm].
    #[arg(long, value_enum)]
    sampler: Option<SamplerChoice>,
    #[arg(long, value_enum, default_value = "cpu")]
    backend: BackendChoice,
}

impl GenerationArgs {
    /// The pipeline's settings for `prompt` (not yet validated): the flags given, then the settings of the picture
    /// `from` (`--from-png`) or else the model's recommended ones (model.json), then diffusers' defaults. Says on
    /// stderr which recommended settings it used, and when `from` was drawn by another model.
    fn params(&self, prompt: Option<String>, from: Option<&FromRecord>) -> Result<GenerateParams> {
        let (manifest, _) = open_model_dir(&self.model)?;
        let given = Recommended {
            prior_steps: self.prior_steps,
            decoder_steps: self.decoder_steps,
            sr_steps: self.sr_steps,
            prior_guidance: self.prior_guidance,
            decoder_guidance: self.decoder_guidance,
            prior_best_of: self.prior_best_of,
        };
        if let Some(from) = from {
            let model = model_identity(&self.model, &manifest)?;
            if model != from.record.model {
                eprintln!(
                    "warning: {} was drawn by {}, and --model is {}: the picture will differ",
                    from.file,
                    from.record.model.describe(),
                    model.describe()
                );
            }
            let p = from.record.params();
            return Ok(GenerateParams {
                prompt: prompt.unwrap_or(p.prompt.clone()),
                negative_prompt: self.negative_prompt.clone().unwrap_or(p.negative_prompt.clone()),
                seed: self.seed.unwrap_or(p.seed),
                sampler: self.sampler.map_or(p.sampler, SamplerChoice::sampler),
                ..p.with(&given)
            });
        }
        let used = manifest.recommended.unless(&given);
        if !used.is_empty() {
            eprintln!(
                "{} {} recommends {}: used where no flag is given",
                manifest.name,
                manifest.version,
                used.describe()
            );
        }
        let defaults = GenerateParams::default();
        Ok(GenerateParams {
            prompt: prompt.unwrap_or_default(),
            negative_prompt: self.negative_prompt.clone().unwrap_or(defaults.negative_prompt.clone()),
            seed: self.seed.unwrap_or(defaults.seed),
            sampler: self.sampler.map_or(defaults.sampler, SamplerChoice::sampler),
            ..defaults.with(&used).with(&given)
        })
    }
}

/// The identity of the model in `dir` whose model.json is `manifest` (the SHA-256 of model.json's bytes).
pub fn model_identity(dir: &Path, manifest: &Manifest) -> Result<ModelIdentity> {
    let path = dir.join("model.json");
    Ok(ModelIdentity::of(manifest, &std::fs::read(&path).map_err(|e| Error::io(&path, e))?))
}

/// `--from-png FILE`: a picture whose settings a run starts from.
#[derive(Args)]
struct FromPng {
    /// Take every setting from this PNG's `unclip` settings chunk (a picture unclip wrote); flags given as well
    /// override them. With nothing overridden, the file written is the same, byte for byte.
    #[arg(long)]
    from_png: Option<PathBuf>,
}

/// A picture's checked settings record, and the file it came from.
pub struct FromRecord {
    file: String,
    record: ImageSettings,
}

impl FromPng {
    /// The record of `--from-png`, if given, for a run of `kind` ("generation" or "edit").
    fn read(&self, edit: bool) -> Result<Option<FromRecord>> {
        let Some(path) = &self.from_png else { return Ok(None) };
        let record = read_png_settings(path)?;
        let file = path.display().to_string();
        if record.remix.is_some() || record.step.is_some() {
            return Err(Error::Settings(format!(
                "{file} is {}: --from-png redraws generations and edits; `unclip info {file}` shows its settings",
                record.kind()
            )));
        }
        if let (Some(e), false) = (&record.edit, edit) {
            let command = if e.mask_sha256.is_some() { "inpaint --mask MASK.png" } else { "img2img" };
            return Err(Error::Settings(format!(
                "{file} is {} of a picture whose pixels' SHA-256 is {}…: redo it with `unclip {command} --from-png {file} --image SOURCE.png`",
                record.kind(),
                &e.source_sha256[..12]
            )));
        }
        Ok(Some(FromRecord { file, record }))
    }
}

/// The settings record of the PNG at `path`, or one sentence saying why there is none to use.
fn read_png_settings(path: &Path) -> Result<ImageSettings> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let name = path.display().to_string();
    unclip::png_file::read_settings(std::io::BufReader::new(file), &name)?.ok_or_else(|| {
        Error::Settings(format!(
            "{name} carries no unclip settings (no `unclip` text chunk): it was not written by unclip, or a program that rewrote it dropped them, so give the settings as flags instead"
        ))
    })
}

/// An edit's strength and resampling: the flags given, else the picture's (`--from-png`), else `defaults`; warns
/// when the source picture is not the one the picture was edited from.
fn edit_settings(
    image: &unclip::image_processor::RgbaImage,
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

/// Where `generate`, `img2img` and `inpaint` write their result.
#[derive(Args)]
struct Outputs {
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

#[derive(Subcommand)]
enum Command {
    /// Convert a diffusers UnCLIPPipeline folder into an unclip model directory.
    Convert {
        diffusers_dir: PathBuf,
        out_dir: PathBuf,
        /// Type of the Linear/Conv2d weights (norms and biases stay f32).
        #[arg(long, default_value = "f32")]
        dtype: String,
    },
    /// Generate an image from a prompt.
    Generate {
        #[arg(long, required_unless_present = "from_png")]
        prompt: Option<String>,
        #[command(flatten)]
        from: FromPng,
        #[command(flatten)]
        args: GenerationArgs,
        #[command(flatten)]
        outputs: Outputs,
    },
    /// Redraw an image (SDEdit): noise it to strength·T and denoise it toward the prompt (an empty prompt: toward
    /// the image's own embedding, when the model has an image tower).
    Img2img {
        /// The image to start from (PNG, any size: the middle square is used).
        #[arg(long)]
        image: PathBuf,
        /// [default: ""]
        #[arg(long)]
        prompt: Option<String>,
        /// 0 keeps the image, 1 draws a new one [default: 0.6].
        #[arg(long)]
        strength: Option<f32>,
        #[command(flatten)]
        from: FromPng,
        #[command(flatten)]
        args: GenerationArgs,
        #[command(flatten)]
        outputs: Outputs,
    },
    /// Repaint the white part of a mask (RePaint); the black part comes out as the image.
    Inpaint {
        #[arg(long)]
        image: PathBuf,
        /// White = repaint, black = keep (PNG, any size: stretched over the image).
        #[arg(long)]
        mask: PathBuf,
        /// [default: ""]
        #[arg(long)]
        prompt: Option<String>,
        /// Below 1, the repainted part starts from the image noised to strength·T instead of from noise [default: 1].
        #[arg(long)]
        strength: Option<f32>,
        /// RePaint's resampling: run each step this many times (1 = none; the paper uses 10) [default: 1].
        #[arg(long)]
        resample: Option<usize>,
        #[command(flatten)]
        from: FromPng,
        #[command(flatten)]
        args: GenerationArgs,
        #[command(flatten)]
        outputs: Outputs,
    },
    #[command(flatten)]
    Remix(remix::RemixCommand),
    /// Show a model directory's components, a GGUF file's tensors, or the settings a PNG unclip wrote carries.
    Info { path: PathBuf },
    /// Time the pipeline on the CPU against diffusers/PyTorch on the same weights; writes docs/benchmarks.md.
    Bench {
        /// The converted model to time.
        #[arg(long, required_unless_present_any = ["weights_of", "karlo_decoder", "unet_step"])]
        model: Option<PathBuf>,
        /// Instead of timing: the weight memory of the state-dict key lists in this folder.
        #[arg(long)]
        weights_of: Option<PathBuf>,
        /// The diffusers folder the model was converted from (the PyTorch peer runs it).
        #[arg(long)]
        diffusers: Option<PathBuf>,
        /// Prior, decoder and super-res steps.
        #[arg(long, default_value = "25,25,7", value_delimiter = ',')]
        steps: Vec<usize>,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Time the WebGPU backend against the CPU backend instead of the CPU against PyTorch.
        #[arg(long)]
        backends: bool,
        /// Instead: one step of the Karlo-size decoder in this folder (config + key list) on WebGPU.
        #[arg(long)]
        karlo_decoder: Option<PathBuf>,
        /// Instead: one decoder UNet call (bench/onnx/export_unet.py's folder + unet.gguf) on WebGPU, the CPU and
        /// PyTorch (CUDA when there is a GPU), with achieved FLOP/s.
        #[arg(long)]
        unet_step: Option<PathBuf>,
        /// Instead: this many generations of --model in one process, printing resident memory after each (JSON
        /// lines; bench/soak.mjs writes docs/soak.md).
        #[arg(long)]
        soak: Option<usize>,
        #[arg(long, default_value = "docs/benchmarks.md")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    // One thread pool: the CPU backend runs its GEMMs, norms, attention and elementwise ops on rayon's; candle's
    // remaining ops (copies, broadcasts) would start a second pool of spinning threads on the same cores
    // (src/backend/cpu/elementwise.rs). Set before any thread exists, and only where the user has not chosen.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error ({info}); please report it with the command you ran");
    }));
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Convert { diffusers_dir, out_dir, dtype } => {
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
        Command::Generate { prompt, from, args, outputs } => {
            let from = from.read(false)?;
            run_job(&args, args.params(prompt, from.as_ref())?, None, outputs)
        }
        Command::Img2img { image, prompt, strength, from, args, outputs } => {
            let from = from.read(true)?;
            let image = remix::read_image(&image)?;
            let (strength, _) = edit_settings(&image, strength, None, from.as_ref(), (IMG2IMG_STRENGTH, 1));
            let edit = EditParams { image, mask: None, strength, resample: 1 };
            run_job(&args, args.params(prompt, from.as_ref())?, Some(edit), outputs)
        }
        Command::Inpaint { image, mask, prompt, strength, resample, from, args, outputs } => {
            let from = from.read(true)?;
            let mask = Some(remix::read_image(&mask)?);
            let image = remix::read_image(&image)?;
            let d = EditParams::default();
            let (strength, resample) =
                edit_settings(&image, strength, resample, from.as_ref(), (d.strength, d.resample));
            let edit = EditParams { image, mask, strength, resample };
            run_job(&args, args.params(prompt, from.as_ref())?, Some(edit), outputs)
        }
        Command::Remix(command) => remix::run(command),
        Command::Info { path } => info(&path),
        Command::Bench { weights_of: Some(keys), out, .. } => bench::weight_memory(&keys, &out),
        Command::Bench { karlo_decoder: Some(dir), out, .. } => bench_karlo::karlo_decoder_step(&dir, &out),
        Command::Bench { unet_step: Some(dir), runs, out, .. } => unet_step_bench(&dir, runs, &out),
        Command::Bench { soak: Some(runs), model: Some(model), .. } => soak::soak(&model, runs),
        Command::Bench { model: None, .. } => Err(Error::Settings("give --model DIR or --weights-of DIR".into())),
        Command::Bench { model: Some(model), weights_of: None, diffusers, steps, runs, backends, out, .. } => {
            let run = if backends { bench::backends } else { bench::bench };
            run(bench::BenchArgs {
                model,
                diffusers,
                steps: match steps[..] {
                    [p, d, s] => [p, d, s],
                    _ => {
                        return Err(Error::Settings(format!("--steps takes three numbers like 25,25,7, got {steps:?}")))
                    }
                },
                runs: runs.max(1),
                out,
            })
        }
    }
}

/// Checks the settings, then generates (or edits) on the chosen backend and writes the outputs.
fn run_job(args: &GenerationArgs, params: GenerateParams, edit: Option<EditParams>, outputs: Outputs) -> Result<()> {
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
        BackendChoice::Cpu => generate(&Cpu, &args.model, &params, edit.as_ref(), outputs),
        BackendChoice::Webgpu => {
            let gpu = pollster::block_on(WebGpu::new())?;
            let a = gpu.adapter();
            eprintln!("WebGPU adapter: {} ({}, {})", a.name, a.backend, a.device_type);
            generate(&gpu, &args.model, &params, edit.as_ref(), outputs)
        }
    }
}

fn generate<B: Backend>(
    be: &B,
    model: &Path,
    params: &GenerateParams,
    edit: Option<&EditParams>,
    Outputs { out, out_npy, steps_dir }: Outputs,
) -> Result<()> {
    let (manifest, open) = open_model_dir(model)?;
    let identity = model_identity(model, &manifest)?;
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
    if let Some(e) = progress.error {
        return Err(e);
    }
    let output = result?;
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

/// A one-line progress bar per stage on stderr; optionally writes each step's images, with the run's settings.
struct ProgressBar {
    steps_dir: Option<(PathBuf, ImageSettings)>,
    error: Option<Error>,
}

impl ProgressBar {
    async fn write_step<T: Tensor>(
        &self,
        (dir, record): &(PathBuf, ImageSettings),
        stage: Stage,
        i: usize,
        t: usize,
        tensors: [(&str, &T); 2],
    ) -> Result<()> {
        for (what, x) in tensors {
            let (c, h, w) = (x.dim(1), x.dim(2), x.dim(3));
            let hwc = chw_to_hwc01(&x.to_vec().await?[..c * h * w], c, h, w);
            let name = format!("{}_{i:03}_t{t:03}_{what}.png", stage.name());
            write_png(&dir.join(name), &hwc_to_rgba8(&hwc), w, h, &record.at_step(stage, i, t, what, w, h))?;
        }
        Ok(())
    }
}

impl<T: Tensor> Observer<T> for ProgressBar {
    async fn on_event(&mut self, event: Event<'_, T>) -> Flow {
        match event {
            Event::StageStart { stage, .. } if stage != Stage::Text => eprint!("{:>9} …", stage.name()),
            Event::Step(s) => {
                let done = (s.i + 1) * 30 / s.n;
                let rate = (s.i + 1) as f64 / (s.elapsed_ms / 1000.0).max(1e-9);
                eprint!(
                    "\r{:>9} [{}{}] {:>3}/{} t={:<3} {:.2} it/s ",
                    s.stage.name(),
                    "#".repeat(done),
                    " ".repeat(30 - done),
                    s.i + 1,
                    s.n,
                    s.t,
                    rate
                );
                if let (Some(dir), true) = (&self.steps_dir, s.stage != Stage::Prior) {
                    if let Err(e) = self.write_step(dir, s.stage, s.i, s.t, [("xt", s.sample), ("x0", s.pred_x0)]).await
                    {
                        self.error = Some(e);
                        return Flow::Cancel;
                    }
                }
            }
            Event::StageEnd { stage, elapsed_ms } if stage != Stage::Text => eprintln!(" {:.1} s", elapsed_ms / 1000.0),
            Event::Warning(w) => eprintln!("warning: {w}"),
            _ => {}
        }
        let _ = std::io::stderr().flush();
        Flow::Continue
    }
}

/// A PNG with `settings` in its chunks (docs/formats.md, "Pictures").
fn write_png(path: &Path, rgba: &[u8], w: usize, h: usize, settings: &ImageSettings) -> Result<()> {
    let bytes = unclip::png_file::encode_png(rgba, w, h, settings)?;
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

/// NumPy .npy v1.0, little-endian float32, C order.
fn write_npy(path: &Path, data: &[f32], shape: &[usize]) -> Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}", dims.join(", "));
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

fn info(path: &Path) -> Result<()> {
    if path.is_dir() {
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
    } else if is_png(path)? {
        let record = read_png_settings(path)?;
        println!("{}: {} by {} with {}", path.display(), record.kind(), record.engine, record.model.describe());
        println!("{}", record.to_parameters());
        println!("{}", serde_json::to_string_pretty(&record).expect("a record serialises"));
    } else {
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
    }
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

#[cfg(feature = "bench")]
use bench_unet_step::unet_step as unet_step_bench;

#[cfg(not(feature = "bench"))]
fn unet_step_bench(_: &Path, _: usize, _: &Path) -> Result<()> {
    Err(Error::Settings(
        "this unclip was built without the UNet-step benchmark: build it with `cargo build --release --features bench` \
         (./build.sh bench does)"
            .into(),
    ))
}
