//! `unclip` — convert diffusers UnCLIP checkpoints, generate images, inspect model files. One file per subcommand
//! (convert, generate, edit: img2img and inpaint, remix, info, bench_command), with the flags they share
//! (generation_args, from_png), the progress they show (progress) and the files they read and write (files).
//! Errors print one sentence and exit with status 1.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod bench_command;
mod bench_karlo;
#[cfg(feature = "bench")]
mod bench_unet_step;
mod convert;
mod edit;
mod files;
mod from_png;
mod generate;
mod generation_args;
mod info;
mod progress;
mod remix;
mod soak;

#[derive(Parser)]
#[command(name = "unclip", version, about = "DALL·E 2 (unCLIP) in Rust: convert, generate, inspect")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a diffusers UnCLIPPipeline folder into an unclip model directory.
    Convert(convert::ConvertCommand),
    /// Generate an image from a prompt.
    Generate(generate::GenerateCommand),
    /// Redraw an image (SDEdit): noise it to strength·T and denoise it toward the prompt (an empty prompt: toward
    /// the image's own embedding, when the model has an image tower).
    Img2img(edit::Img2imgCommand),
    /// Repaint the white part of a mask (RePaint); the black part comes out as the image.
    Inpaint(edit::InpaintCommand),
    #[command(flatten)]
    Remix(remix::RemixCommand),
    /// Show a model directory's components, a GGUF file's tensors, or the settings a PNG unclip wrote carries.
    Info(info::InfoCommand),
    /// Time the pipeline on the CPU against diffusers/PyTorch on the same weights; writes docs/benchmarks.md.
    Bench(bench_command::BenchCommand),
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
    let result = match Cli::parse().command {
        Command::Convert(c) => convert::run(c),
        Command::Generate(c) => generate::run(c),
        Command::Img2img(c) => edit::img2img(c),
        Command::Inpaint(c) => edit::inpaint(c),
        Command::Remix(c) => remix::run(c),
        Command::Info(c) => info::run(c),
        Command::Bench(c) => bench_command::run(c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
