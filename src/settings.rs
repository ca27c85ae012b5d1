//! What to generate ([`GenerateParams`]): the settings, their defaults (diffusers' `UnCLIPPipeline.__call__`
//! arguments; the page's form, the CLI's flags and www/js/protocol.js take theirs from here), their limits, and the
//! ones a model may recommend in its model.json ([`Recommended`], docs/formats.md). Below both the manifest and the
//! pipeline: it imports neither.

use serde::{Deserialize, Serialize};

use crate::error::{ensure_in, Result};

/// How each denoising step moves from x_t to x_{t-1}.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampler {
    /// UnCLIPScheduler's ancestral step (DDPM with the model's variance), as diffusers runs unCLIP.
    #[default]
    Ddpm,
    /// DDIM with η = 0 on the same timesteps: deterministic after the initial noise.
    Ddim,
}

/// What to generate. Defaults are diffusers' (25/25/7 steps, guidance 4.0/8.0, seed 0, DDPM).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// The settings a model recommends in place of diffusers' defaults (tuned on its own metric: docs/model-card.md), each
/// optional. The CLI and the page use one where the user set nothing, and say so; flags and the URL override it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Recommended {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_steps: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoder_steps: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sr_steps: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_guidance: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoder_guidance: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_best_of: Option<usize>,
}

impl Recommended {
    pub fn is_empty(&self) -> bool {
        *self == Recommended::default()
    }

    /// These settings, less those `given` sets.
    pub fn unless(&self, given: &Recommended) -> Recommended {
        Recommended {
            prior_steps: self.prior_steps.filter(|_| given.prior_steps.is_none()),
            decoder_steps: self.decoder_steps.filter(|_| given.decoder_steps.is_none()),
            sr_steps: self.sr_steps.filter(|_| given.sr_steps.is_none()),
            prior_guidance: self.prior_guidance.filter(|_| given.prior_guidance.is_none()),
            decoder_guidance: self.decoder_guidance.filter(|_| given.decoder_guidance.is_none()),
            prior_best_of: self.prior_best_of.filter(|_| given.prior_best_of.is_none()),
        }
    }

    /// "prior steps 10, decoder guidance 4": the settings present, in field order, worded as the page's note
    /// words them (app.js `applyRecommended`).
    pub fn describe(&self) -> String {
        let fields = [
            ("prior steps", self.prior_steps.map(|v| v.to_string())),
            ("decoder steps", self.decoder_steps.map(|v| v.to_string())),
            ("sr steps", self.sr_steps.map(|v| v.to_string())),
            ("prior guidance", self.prior_guidance.map(|v| v.to_string())),
            ("decoder guidance", self.decoder_guidance.map(|v| v.to_string())),
            ("prior best of", self.prior_best_of.map(|v| v.to_string())),
        ];
        fields.iter().filter_map(|(k, v)| Some(format!("{k} {}", v.as_ref()?))).collect::<Vec<_>>().join(", ")
    }
}
