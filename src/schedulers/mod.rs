//! Noise schedules and sampler steps for unCLIP's three diffusion stages (`docs/math.md §11`).
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

// The step coefficients are the parameters of the backend's fused denoising-step op; they are defined
// there, with the op, and are the schedulers' output type.
pub use crate::backend::ops::{NoiseScale, StepCoefficients};

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
