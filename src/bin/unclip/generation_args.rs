//! The flags `generate`, `img2img`, `inpaint` and the remix commands share: the model, seed, negative prompt, steps,
//! guidance, prior best-of, sampler and backend. Their help text takes the defaults and the limits from the engine's
//! settings (src/settings.rs), so it cannot drift from what a run uses.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use unclip::backend::webgpu::WebGpu;
use unclip::image_settings::ModelIdentity;
use unclip::manifest::{open_model_dir, Manifest};
use unclip::settings::{GenerateParams, Recommended, Sampler, MAX_BEST_OF, MAX_GUIDANCE, MAX_STEPS};
use unclip::{Error, Result};

use crate::from_png::FromRecord;

#[derive(Clone, Copy, ValueEnum)]
pub enum BackendChoice {
    Cpu,
    Webgpu,
}

/// The WebGPU device of `--backend webgpu`, its adapter named on stderr.
pub fn webgpu() -> Result<WebGpu> {
    let gpu = pollster::block_on(WebGpu::new())?;
    let a = gpu.adapter();
    eprintln!("WebGPU adapter: {} ({}, {})", a.name, a.backend, a.device_type);
    Ok(gpu)
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SamplerChoice {
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

/// A setting's help: `what`, then its default where the model recommends none.
fn recommended_or(what: &str, default: impl std::fmt::Display) -> String {
    format!("{what} [default: the model's recommended value, else {default}]")
}

fn steps_help(what: &str, default: usize) -> String {
    recommended_or(&format!("{what}, 2 to {MAX_STEPS}"), default)
}

fn guidance_help(what: &str, default: f32) -> String {
    recommended_or(&format!("{what}, 0 to {MAX_GUIDANCE} (1 turns it off)"), default)
}

fn defaults() -> GenerateParams {
    GenerateParams::default()
}

#[derive(Args)]
pub struct GenerationArgs {
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long, help = format!("[default: {}]", defaults().seed))]
    pub seed: Option<u64>,
    /// The caption guidance steers away from (the unconditional half of CFG, prior and decoder) [default: "",
    /// diffusers' behaviour].
    #[arg(long)]
    pub negative_prompt: Option<String>,
    #[arg(long, help = steps_help("Prior steps (remix: for endpoints given as text)", defaults().prior_steps))]
    pub prior_steps: Option<usize>,
    #[arg(long, help = steps_help("Decoder steps", defaults().decoder_steps))]
    pub decoder_steps: Option<usize>,
    #[arg(long, help = steps_help("Super-res steps", defaults().sr_steps))]
    pub sr_steps: Option<usize>,
    #[arg(long, help = guidance_help("The prior's classifier-free guidance", defaults().prior_guidance))]
    pub prior_guidance: Option<f32>,
    #[arg(long, help = guidance_help("The decoder's classifier-free guidance", defaults().decoder_guidance))]
    pub decoder_guidance: Option<f32>,
    #[arg(long, help = recommended_or(
        &format!("Draw this many image embeddings with the prior and keep the one closest to the text, 1 to {MAX_BEST_OF} (DALL·E 2 uses 2)"),
        defaults().prior_best_of,
    ))]
    pub prior_best_of: Option<usize>,
    /// ddpm (diffusers' ancestral unCLIP step) or ddim (η = 0, deterministic after the initial noise) [default: ddpm].
    #[arg(long, value_enum)]
    pub sampler: Option<SamplerChoice>,
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: BackendChoice,
}

impl GenerationArgs {
    /// The pipeline's settings for `prompt` (not yet validated): the flags given, then the settings of the picture
    /// `from` (`--from-png`) or else the model's recommended ones (model.json), then diffusers' defaults. Says on
    /// stderr which recommended settings it used, and when `from` was drawn by another model.
    pub fn params(&self, prompt: Option<String>, from: Option<&FromRecord>) -> Result<GenerateParams> {
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
        let defaults = defaults();
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        args: GenerationArgs,
    }

    #[test]
    fn help_states_the_engines_defaults_and_limits() {
        let command = Flags::command();
        let help = |flag: &str| {
            let arg = command.get_arguments().find(|a| a.get_id() == flag).unwrap();
            arg.get_help().unwrap().to_string()
        };
        let d = GenerateParams::default();
        assert_eq!(help("seed"), format!("[default: {}]", d.seed));
        for (flag, default) in
            [("prior_steps", d.prior_steps), ("decoder_steps", d.decoder_steps), ("sr_steps", d.sr_steps)]
        {
            let h = help(flag);
            assert!(h.contains(&format!("2 to {MAX_STEPS}")) && h.ends_with(&format!("else {default}]")), "{h}");
        }
        for (flag, default) in [("prior_guidance", d.prior_guidance), ("decoder_guidance", d.decoder_guidance)] {
            let h = help(flag);
            assert!(h.contains(&format!("0 to {MAX_GUIDANCE}")) && h.ends_with(&format!("else {default}]")), "{h}");
        }
        assert!(help("prior_best_of").contains(&format!("1 to {MAX_BEST_OF}")));
    }
}
