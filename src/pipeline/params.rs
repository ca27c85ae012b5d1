//! What to generate ([`GenerateParams`]): the settings, their defaults (diffusers' `UnCLIPPipeline.__call__`
//! arguments; the page's form, the CLI's flags and www/js/protocol.js take theirs from here) and their limits.

use crate::error::{ensure_in, Result};
use crate::manifest::Recommended;
use crate::schedulers::{ddim_step_coefficients, StepCoefficients, UnCLIPScheduler};

/// How each denoising step moves from x_t to x_{t-1}.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampler {
    /// UnCLIPScheduler's ancestral step (DDPM with the model's variance), as diffusers runs unCLIP.
    #[default]
    Ddpm,
    /// DDIM with η = 0 on the same timesteps: deterministic after the initial noise.
    Ddim,
}

impl Sampler {
    /// The step coefficients from t to `prev` (None: the last step) on `s`; `ddim_eta` is DDIM's η.
    pub(crate) fn coefficients(
        self,
        s: &UnCLIPScheduler,
        t: usize,
        prev: Option<usize>,
        ddim_eta: f32,
    ) -> Result<StepCoefficients> {
        Ok(match self {
            Sampler::Ddpm => s.step_coefficients(t, prev)?,
            Sampler::Ddim => ddim_step_coefficients(s, t, prev, ddim_eta)?,
        })
    }
}

/// What to generate. Defaults are diffusers' (25/25/7 steps, guidance 4.0/8.0, seed 0, DDPM).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct GenerateParams {
    pub prompt: String,
    /// The caption of the unconditional half of classifier-free guidance, in the prior and the decoder, instead
    /// of the empty one: what the picture should not look like. "" is diffusers' behaviour.
    pub negative_prompt: String,
    pub seed: u64,
    pub prior_steps: usize,
    pub decoder_steps: usize,
    pub sr_steps: usize,
    pub prior_guidance: f32,
    pub decoder_guidance: f32,
    /// An image embedding to decode instead of running the prior (variations, interpolation).
    pub image_embedding: Option<Vec<f32>>,
    /// The sampler of the decoder and super-res stages (the prior always runs unCLIP's own step, so
    /// DDPM and DDIM runs from one seed share the prior and the decoder's initial noise).
    pub sampler: Sampler,
    /// DDIM's stochasticity η (0 = deterministic, 1 = DDPM-like); used when `sampler` is DDIM.
    pub ddim_eta: f32,
    /// The prior draws this many image embeddings and keeps the one most similar to the text
    /// embedding (DALL·E 2 §2.2 uses 2); 1 = plain sampling, as diffusers.
    pub prior_best_of: usize,
    /// The decoder's initial noise x_T (C·S·S values) instead of a draw from the seed, e.g. from
    /// DDIM inversion of an image; the generator then skips that draw.
    pub decoder_latents: Option<Vec<f32>>,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            prompt: String::new(),
            negative_prompt: String::new(),
            seed: 0,
            prior_steps: 25,
            decoder_steps: 25,
            sr_steps: 7,
            prior_guidance: 4.0,
            decoder_guidance: 8.0,
            image_embedding: None,
            sampler: Sampler::Ddpm,
            ddim_eta: 0.0,
            prior_best_of: 1,
            decoder_latents: None,
        }
    }
}

pub const MAX_STEPS: usize = 1000;
pub const MAX_GUIDANCE: f32 = 100.0;
pub const MAX_BEST_OF: usize = 16;

impl GenerateParams {
    /// These settings with a model's recommended ones in place of theirs.
    pub fn with(self, r: &Recommended) -> Self {
        GenerateParams {
            prior_steps: r.prior_steps.unwrap_or(self.prior_steps),
            decoder_steps: r.decoder_steps.unwrap_or(self.decoder_steps),
            sr_steps: r.sr_steps.unwrap_or(self.sr_steps),
            prior_guidance: r.prior_guidance.unwrap_or(self.prior_guidance),
            decoder_guidance: r.decoder_guidance.unwrap_or(self.decoder_guidance),
            prior_best_of: r.prior_best_of.unwrap_or(self.prior_best_of),
            ..self
        }
    }

    /// Refuses settings that cannot run or would produce NaN, with a sentence saying why.
    pub fn validate(&self) -> Result<()> {
        for (name, steps) in
            [("prior", self.prior_steps), ("decoder", self.decoder_steps), ("super-res", self.sr_steps)]
        {
            ensure_in(steps, 2..=MAX_STEPS, |n| {
                format!("{name} steps must be between 2 and {MAX_STEPS} (got {n}): the unCLIP scheduler spaces steps from t=999 to t=0")
            })?;
        }
        for (name, g) in [("prior", self.prior_guidance), ("decoder", self.decoder_guidance)] {
            ensure_in(g, 0.0..=MAX_GUIDANCE, |g| {
                format!("{name} guidance must be a number from 0 to {MAX_GUIDANCE} (got {g}); 1 turns guidance off")
            })?;
        }
        ensure_in(self.ddim_eta, 0.0..=1.0, |eta| {
            format!("DDIM's η must be between 0 (deterministic) and 1 (DDPM-like) (got {eta})")
        })?;
        ensure_in(self.prior_best_of, 1..=MAX_BEST_OF, |n| {
            format!("the prior's best-of count must be between 1 and {MAX_BEST_OF} (got {n}); the paper uses 2")
        })
    }

    pub fn do_classifier_free_guidance(&self) -> bool {
        self.prior_guidance > 1.0 || self.decoder_guidance > 1.0
    }
}
