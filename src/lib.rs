//! unclip — DALL·E 2 (unCLIP) in Rust: text → prior → decoder → super-res, on WebGPU or the CPU,
//! natively and in the browser. The math is in docs/math.md, the layout in docs/architecture.md.

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
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::{Error, Result};
pub use pipeline::{Event, Flow, GenerateOutput, GenerateParams, Observer, Stage, UnCLIPPipeline};
