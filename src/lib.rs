//! unclip — DALL·E 2 (unCLIP) in Rust: text → prior → decoder → super-res, on WebGPU or the CPU,
//! natively and in the browser. The math is in docs/math.md, the layout in docs/architecture.md.
//!
//! A prompt → pixels, on the CPU, with a model directory that `unclip convert` wrote (the bundled one is
//! `models/unclip-emoji`); `examples/generate.rs` writes the PNG too:
//!
//! ```no_run
//! use unclip::backend::cpu::Cpu;
//! use unclip::manifest::open_model_dir;
//! use unclip::pipeline::Silent;
//! use unclip::{GenerateParams, UnCLIPPipeline};
//!
//! # fn main() -> unclip::Result<()> {
//! let (manifest, open) = open_model_dir("models/unclip-emoji".as_ref())?;
//! // diffusers' defaults, with the model's recommended settings in their place
//! let defaults = GenerateParams::default().with(&manifest.recommended);
//! let params = GenerateParams { prompt: "a red heart".into(), seed: 0, ..defaults };
//! let pipeline = UnCLIPPipeline::load(&Cpu, manifest, open)?;
//! let image = pollster::block_on(pipeline.generate(&params, &mut Silent))?; // (H, W, 3) in [0, 1]
//! assert_eq!(image.to_rgba8().len(), image.width * image.height * 4);
//! # Ok(())
//! # }
//! ```
//!
//! Cargo features: `cli` (default) is the `unclip` command, with clap, image-file decoding
//! (`image_processor::decode_image`) and `webgpu`; `webgpu` is the WebGPU backend (wgpu), which the wasm
//! modules turn on for the page (src/web/); `--no-default-features` builds the engine alone (the CPU backend);
//! `threads` is the shared-memory wasm module's rayon pool, `bench` the UNet-step benchmark.

pub mod backend;
pub mod config;
#[cfg(not(target_arch = "wasm32"))]
pub mod convert;
pub mod edit;
pub mod error;
pub mod gguf;
pub mod image_processor;
pub mod image_settings;
pub mod latent;
pub mod manifest;
pub mod models;
pub mod nn;
pub mod pipeline;
pub mod png_file;
pub mod remix;
pub mod rng;
pub mod schedulers;
pub mod settings;
pub mod time;
pub mod tokenizer;
#[cfg(feature = "bench")]
pub mod unet_step;
#[cfg(all(target_arch = "wasm32", feature = "webgpu"))]
pub mod web;

pub use error::{Error, Result};
pub use pipeline::{Event, Flow, GenerateOutput, GenerateParams, Observer, Stage, UnCLIPPipeline};
