//! `unclip bench`'s flags and the benchmark they pick: the pipeline against PyTorch or our two backends against
//! each other (bench.rs), weight memory, one Karlo-size decoder step (bench_karlo.rs), one UNet call
//! (bench_unet_step.rs, feature `bench`) or a soak (soak.rs). Each writes its section of docs/benchmarks.md.

use std::path::PathBuf;

use clap::Args;

use unclip::{Error, Result};

use crate::{bench, bench_karlo, soak};

#[derive(Args)]
pub struct BenchCommand {
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
}

pub fn run(c: BenchCommand) -> Result<()> {
    match c {
        BenchCommand { weights_of: Some(keys), out, .. } => bench::weight_memory(&keys, &out),
        BenchCommand { karlo_decoder: Some(dir), out, .. } => bench_karlo::karlo_decoder_step(&dir, &out),
        BenchCommand { unet_step: Some(dir), runs, out, .. } => unet_step(&dir, runs, &out),
        BenchCommand { soak: Some(runs), model: Some(model), .. } => soak::soak(&model, runs),
        BenchCommand { model: None, .. } => Err(Error::Settings("give --model DIR or --weights-of DIR".into())),
        BenchCommand { model: Some(model), diffusers, steps, runs, backends, out, .. } => {
            let run = if backends { bench::backends } else { bench::bench };
            let [p, d, s] = steps[..] else {
                return Err(Error::Settings(format!("--steps takes three numbers like 25,25,7, got {steps:?}")));
            };
            run(bench::BenchArgs { model, diffusers, steps: [p, d, s], runs: runs.max(1), out })
        }
    }
}

#[cfg(feature = "bench")]
use crate::bench_unet_step::unet_step;

#[cfg(not(feature = "bench"))]
fn unet_step(_: &std::path::Path, _: usize, _: &std::path::Path) -> Result<()> {
    Err(Error::Settings(
        "this unclip was built without the UNet-step benchmark: build it with `cargo build --release --features bench` \
         (./build.sh bench does)"
            .into(),
    ))
}
