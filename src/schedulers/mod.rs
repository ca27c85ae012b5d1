//! Noise schedules and sampler steps for unCLIP's three diffusion stages (spec §11).
//!
//! The schedulers never touch tensors: a step is returned as a handful of scalar coefficients
//! ([`StepCoefficients`]) that the caller applies with elementwise tensor ops on whatever backend holds
//! the latents (CPU or GPU). The tables are computed once, in the same precision as diffusers + torch,
//! so that the coefficients are the very `f32` scalars `UnCLIPScheduler.step` multiplies with.

pub mod betas;
pub mod ddim;
pub mod unclip;

pub use betas::{alphas_cumprod, betas, log_snr, BetaSchedule};
pub use ddim::{
    ddim_inversion_coefficients, ddim_step_coefficients, predicted_epsilon_coefficients, EpsilonFromX0,
    InversionCoefficients,
};
pub use unclip::{AddNoiseCoefficients, PredictionType, UnCLIPScheduler, UnCLIPSchedulerConfig, VarianceType};

use thiserror::Error;

/// The most training timesteps a scheduler config may ask for (its tables are this long; unCLIP uses 1000).
pub const MAX_TRAIN_TIMESTEPS: usize = 100_000;

/// A scheduler configuration or call that cannot work, said as what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SchedulerError {
    #[error("num_inference_steps must be ≥ 2 for UnCLIPScheduler (got {0}): its step ratio divides by n-1")]
    TooFewSteps(usize),

    #[error(
        "num_inference_steps must be at most num_train_timesteps ({num_train_timesteps}) (got {steps}): \
         more steps than training timesteps would repeat timesteps"
    )]
    TooManySteps { steps: usize, num_train_timesteps: usize },

    #[error("timestep {t} is outside the schedule: expected 0 ≤ t < num_train_timesteps ({num_train_timesteps})")]
    TimestepOutOfRange { t: usize, num_train_timesteps: usize },

    #[error("prev_timestep {prev_t} must be smaller than the current timestep {t}: a step goes back in time")]
    PrevTimestepNotBefore { t: usize, prev_t: usize },

    #[error(
        "unknown beta_schedule \"{0}\" in the scheduler config: expected \"linear\", \"scaled_linear\" or \
         \"squaredcos_cap_v2\""
    )]
    UnknownBetaSchedule(String),

    #[error(
        "unknown variance_type \"{0}\" in the scheduler config: expected \"fixed_small_log\" or \"learned_range\""
    )]
    UnknownVarianceType(String),

    #[error("unknown prediction_type \"{0}\" in the scheduler config: expected \"epsilon\" or \"sample\"")]
    UnknownPredictionType(String),

    #[error(
        "num_train_timesteps must be between 2 and {MAX_TRAIN_TIMESTEPS} in the scheduler config (got {0}); unCLIP models use 1000"
    )]
    TrainTimestepsOutOfRange(usize),

    #[error("clip_sample_range must be a positive finite number when clip_sample is true (got {0})")]
    InvalidClipRange(f32),
}

/// One sampler step `x_t → x_prev` as scalars, to be applied elementwise:
///
/// ```text
/// x0   = (x0_sample · sample + x0_model · model_output) / x0_denominator
/// x0   = clamp(x0, -clip, +clip)                          if clip is Some
/// mean = mean_x0 · x0 + mean_sample · sample
/// prev = mean + σ · z                                      if noise is Some, z ~ randn(sample.shape)
/// ```
///
/// `model_output` here is the ε (or x₀) part only; for `learned_range` the caller splits the model's
/// `2C` channels into that part (channels `0..C`) and `v` (channels `C..2C`) first.
///
/// The x₀ line keeps diffusers' order of operations, `(sample − √(1−ᾱ_t)·ε) / √ᾱ_t`
/// (`x0_sample = 1`, `x0_model = −√(1−ᾱ_t)`, `x0_denominator = √ᾱ_t`; for sample prediction `0, 1, 1`).
/// Folding the division into reciprocal coefficients (`x0_sample = 1/√ᾱ_t`) loses the golden match:
/// measured on the 25-step decoder, multiplying by `1/√ᾱ_t` is off by an ulp in up to two thirds of the
/// unclipped elements of a step, and folding `−√(1−ᾱ_t)/√ᾱ_t` too in most of them, while the division
/// form is bit-exact at every step where torch's own √ is correctly rounded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepCoefficients {
    pub x0_sample: f32,
    pub x0_model: f32,
    pub x0_denominator: f32,
    /// `clip_sample_range` when `clip_sample` is on.
    pub clip: Option<f32>,
    pub mean_x0: f32,
    pub mean_sample: f32,
    /// `None` when no noise is added, and then the step must not draw from the generator either
    /// (UnCLIPScheduler draws only for `t > 0`, spec §11.3 / §13).
    pub noise: Option<NoiseScale>,
}

/// The standard deviation of the noise added by a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoiseScale {
    /// One σ for every element (`fixed_small_log`, DDIM).
    Fixed { sigma: f32 },
    /// `learned_range`: per element, with `v` the model's variance channels,
    /// `frac = (v + 1) / 2`, `σ = exp(0.5 · (frac · log_max + (1 − frac) · log_min))`
    /// (`log_max = ln β`, `log_min = ln` of the posterior variance; diffusers `_get_variance`).
    LearnedRange { log_min: f32, log_max: f32 },
}
