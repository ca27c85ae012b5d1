//! A prompt → a PNG with the library alone (no CLI, no WebGPU: it builds with `--no-default-features`): open a model
//! directory, load the pipeline on the CPU, generate with the model's recommended settings while printing each
//! stage's steps, and write the picture with its settings in it (docs/formats.md, "Pictures").
//!     cargo run --release --example generate -- models/unclip-emoji "a red heart" heart.png
use std::path::PathBuf;

use unclip::backend::cpu::Cpu;
use unclip::image_settings::{ImageSettings, ModelIdentity};
use unclip::manifest::open_model_dir;
use unclip::pipeline::{Event, Flow, GenerateParams, Observer, UnCLIPPipeline};

/// Prints one line per denoising step on stderr.
struct PrintSteps;

impl<T> Observer<T> for PrintSteps {
    async fn on_event(&mut self, event: Event<'_, T>) -> Flow {
        if let Event::Step(s) = event {
            eprintln!("{} step {}/{} (t = {})", s.stage.name(), s.i + 1, s.n, s.t);
        }
        Flow::Continue
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, prompt, out] =
        <[String; 3]>::try_from(args).map_err(|_| "usage: generate <MODEL_DIR> <PROMPT> <OUT.png>")?;
    let model = PathBuf::from(model);
    let (manifest, open) = open_model_dir(&model)?;
    let params = GenerateParams { prompt, ..GenerateParams::default().with(&manifest.recommended) };
    let identity = ModelIdentity::of(&manifest, &std::fs::read(model.join("model.json"))?);
    let pipeline = UnCLIPPipeline::load(&Cpu, manifest, open)?;
    let output = pollster::block_on(pipeline.generate(&params, &mut PrintSteps))?;
    let settings = ImageSettings::new(&params, None, &identity, output.width, output.height);
    std::fs::write(&out, unclip::png_file::encode_png(&output.to_rgba8(), output.width, output.height, &settings)?)?;
    eprintln!("wrote {out}");
    Ok(())
}
