//! DDIM steps (Song et al. 2020, eq. 12; diffusers `DDIMScheduler.step`) on the tables and timesteps of
//! an [`UnCLIPScheduler`], so that DDPM and DDIM can be compared on the very same timesteps.
//!
//! Differences from diffusers' `DDIMScheduler`, all deliberate:
//! * timesteps are UnCLIP's (`999 … 0`, [`UnCLIPScheduler::set_timesteps`]), not DDIM's `"leading"`
//!   spacing; the step after `t = 0` goes to ᾱ = 1 (DDIM's `set_alpha_to_one = True`);
//! * ε̂ is recomputed from the clipped x̂₀ (diffusers' `use_clipped_model_output=True`, and what
//!   guided-diffusion / Karlo's `ddim_sample` do), which is what lets the step fit [`StepCoefficients`]
//!   for both prediction types; without clipping it is the plain DDIM update;
//! * noise is drawn only when σ_t can be non-zero (`η > 0` and `t > 0`), so with `η = 1` the generator is
//!   consumed exactly as by the DDPM sampler (diffusers draws a zero-scaled sample on the last step too).
//!
//! With `learned_range` models the caller splits off and ignores the variance channels: DDIM's σ_t is fixed.

use super::unclip::{StepAlphas, UnCLIPScheduler};
use super::{NoiseScale, SchedulerError, StepCoefficients};

/// `ε̂ = sample · sample + x0 · x̂₀`, i.e. `ε̂ = (x_t − √ᾱ_t·x̂₀) / √(1−ᾱ_t)` (diffusers `pred_epsilon` for
/// sample-prediction models), with the division folded into the two coefficients.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpsilonFromX0 {
    pub sample: f32,
    pub x0: f32,
}

/// The coefficients that turn a (clipped) x̂₀ back into the noise prediction at timestep `t`.
pub fn predicted_epsilon_coefficients(scheduler: &UnCLIPScheduler, t: usize) -> Result<EpsilonFromX0, SchedulerError> {
    let alpha_prod_t = scheduler.step_alphas(t, None)?.alpha_prod_t;
    Ok(epsilon_from_x0(alpha_prod_t))
}

fn epsilon_from_x0(alpha_prod_t: f32) -> EpsilonFromX0 {
    let sqrt_beta_prod_t = (1.0 - alpha_prod_t).sqrt();
    EpsilonFromX0 { sample: 1.0 / sqrt_beta_prod_t, x0: -alpha_prod_t.sqrt() / sqrt_beta_prod_t }
}

/// One DDIM step `t → prev_t` with stochasticity `eta` (0 = deterministic DDIM, 1 = DDPM-like σ_t):
///
/// `x_prev = √ᾱ_prev·x̂₀ + √(1 − ᾱ_prev − σ_t²)·ε̂ + σ_t·z`, `σ_t = η·√((1−ᾱ_prev)/(1−ᾱ_t)·(1 − ᾱ_t/ᾱ_prev))`,
///
/// with `ε̂` from [`predicted_epsilon_coefficients`] folded into `mean_x0` / `mean_sample`.
/// `prev_t` as for [`UnCLIPScheduler::step_coefficients`]. The direction term's radicand is clamped at 0
/// (it can round below zero in `f32` when η = 1).
pub fn ddim_step_coefficients(
    scheduler: &UnCLIPScheduler,
    t: usize,
    prev_t: Option<usize>,
    eta: f32,
) -> Result<StepCoefficients, SchedulerError> {
    let StepAlphas { alpha_prod_t, alpha_prod_prev, .. } = scheduler.step_alphas(t, prev_t)?;
    let beta_prod_t = 1.0 - alpha_prod_t;
    let beta_prod_prev = 1.0 - alpha_prod_prev;
    let variance = beta_prod_prev / beta_prod_t * (1.0 - alpha_prod_t / alpha_prod_prev);
    let sigma = eta * variance.sqrt();
    let direction = (1.0 - alpha_prod_prev - sigma * sigma).max(0.0).sqrt();
    let eps = epsilon_from_x0(alpha_prod_t);
    let (x0_sample, x0_model, x0_denominator) = scheduler.x0_coefficients(alpha_prod_t);
    Ok(StepCoefficients {
        x0_sample,
        x0_model,
        x0_denominator,
        clip: scheduler.clip(),
        mean_x0: alpha_prod_prev.sqrt() + direction * eps.x0,
        mean_sample: direction * eps.sample,
        noise: (eta > 0.0 && t > 0).then_some(NoiseScale::Fixed { sigma }),
    })
}

/// One step of DDIM inversion (Song et al. 2020 §4.3; DALL·E 2 §3.1 "variations"): the deterministic
/// DDIM update run backwards, from the noise level of `from_t` (`None` = the clean image, ᾱ = 1, the
/// level the last sampling step ends on) up to the level of `to_t`, with ε̂ evaluated at the lower level:
///
/// `x_to = √ᾱ_to·x̂₀ + √(1−ᾱ_to)·ε̂`, `x̂₀ = (x_from − √(1−ᾱ_from)·ε̂) / √ᾱ_from`
///
/// as `x_to = sample·x_from + eps·ε̂` (and `x̂₀ = x0_sample·x_from + x0_eps·ε̂`). Nothing is clipped:
/// the η = 0 step `to_t → from_t` of [`ddim_step_coefficients`] undoes it exactly when ε̂ is the same
/// and x̂₀ lies inside the clip range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InversionCoefficients {
    pub sample: f32,
    pub eps: f32,
    pub x0_sample: f32,
    pub x0_eps: f32,
}

pub fn ddim_inversion_coefficients(
    scheduler: &UnCLIPScheduler,
    from_t: Option<usize>,
    to_t: usize,
) -> Result<InversionCoefficients, SchedulerError> {
    let alpha_to = scheduler.step_alphas(to_t, None)?.alpha_prod_t;
    let alpha_from = match from_t {
        Some(f) if f >= to_t => return Err(SchedulerError::PrevTimestepNotBefore { t: to_t, prev_t: f }),
        Some(f) => scheduler.step_alphas(f, None)?.alpha_prod_t,
        None => 1.0,
    };
    let (x0_sample, x0_eps) = (1.0 / alpha_from.sqrt(), -(1.0 - alpha_from).sqrt() / alpha_from.sqrt());
    Ok(InversionCoefficients {
        sample: alpha_to.sqrt() * x0_sample,
        eps: alpha_to.sqrt() * x0_eps + (1.0 - alpha_to).sqrt(),
        x0_sample,
        x0_eps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedulers::unclip::tests::{apply_step, scheduler, DECODER_CONFIG, PRIOR_CONFIG, SUPER_RES_CONFIG};

    /// With the true noise as ε and an x₀ inside the clip range, η = 0 DDIM moves `x_t` exactly onto the
    /// same (x₀, ε) trajectory at ᾱ_prev — for both prediction types.
    #[test]
    fn deterministic_ddim_stays_on_the_noising_trajectory() {
        let x0 = [0.3f32, -0.7, 0.95, 0.0];
        let eps = [1.2f32, -0.4, 0.1, -2.0];
        for config in [SUPER_RES_CONFIG, PRIOR_CONFIG] {
            let s = scheduler(config);
            let timesteps = s.set_timesteps(25).unwrap();
            for (i, &t) in timesteps.iter().enumerate() {
                let prev_t = timesteps.get(i + 1).copied();
                let at = s.add_noise_coefficients(t).unwrap();
                let x_t: Vec<f32> =
                    (0..4).map(|k| at.sqrt_alpha_prod * x0[k] + at.sqrt_one_minus_alpha_prod * eps[k]).collect();
                let model_output = if config == PRIOR_CONFIG { x0 } else { eps };
                let c = ddim_step_coefficients(&s, t, prev_t, 0.0).unwrap();
                assert_eq!(c.noise, None);
                let (_, prev) = apply_step(&c, &x_t, &model_output, None, None);
                let ab_prev = prev_t.map_or(1.0, |p| s.alphas_cumprod()[p]);
                for k in 0..4 {
                    let want = ab_prev.sqrt() * x0[k] + (1.0 - ab_prev).sqrt() * eps[k];
                    // ε̂ = (x_t − √ᾱ_t x̂₀)/√(1−ᾱ_t) loses digits at t = 999 (√ᾱ_t ≈ 5e-5) only
                    // through x̂₀; at small t through the division by √(1−ᾱ_t) ≈ 0.006.
                    assert!((prev[k] - want).abs() < 2e-3, "t={t} k={k}: {} vs {want}", prev[k]);
                }
            }
        }
    }

    #[test]
    fn eta_one_uses_the_ddpm_posterior_sigma_and_the_same_draws() {
        let s = scheduler(SUPER_RES_CONFIG);
        let timesteps = s.set_timesteps(7).unwrap();
        for (i, &t) in timesteps.iter().enumerate() {
            let prev_t = timesteps.get(i + 1).copied();
            let ddpm = s.step_coefficients(t, prev_t).unwrap();
            let ddim = ddim_step_coefficients(&s, t, prev_t, 1.0).unwrap();
            match (ddpm.noise, ddim.noise) {
                (None, None) => assert_eq!(t, 0),
                (Some(NoiseScale::Fixed { sigma: a }), Some(NoiseScale::Fixed { sigma: b })) => {
                    assert!((a - b).abs() <= 1e-6 * a.max(1e-3), "t={t}: {a} vs {b}")
                }
                other => panic!("t={t}: {other:?}"),
            }
        }
    }

    #[test]
    fn last_step_returns_the_clipped_x0() {
        let s = scheduler(DECODER_CONFIG);
        let c = ddim_step_coefficients(&s, 0, None, 0.5).unwrap();
        assert_eq!((c.mean_x0, c.mean_sample, c.noise), (1.0, 0.0, None));
        let (x0, prev) = apply_step(&c, &[0.5, -3.0], &[0.1, 0.2], None, None);
        assert_eq!(x0, prev);
        assert_eq!(prev[1], -1.0);
    }

    /// Inverting from each level to the next and stepping back with η = 0 DDIM and the same ε̂ returns
    /// the sample, at every step of a 25-step schedule (samples on one noising trajectory, so x̂₀ stays
    /// inside the clip range).
    #[test]
    fn ddim_inversion_is_undone_by_the_deterministic_step() {
        let s = scheduler(DECODER_CONFIG);
        let timesteps = s.set_timesteps(25).unwrap();
        let x0 = [0.2f32, -0.5, 0.9, 0.0];
        let eps = [1.2f32, -0.4, 0.1, -2.0];
        for (i, &t) in timesteps.iter().enumerate() {
            let from = timesteps.get(i + 1).copied();
            let ab = from.map_or(1.0, |f| s.alphas_cumprod()[f]);
            let x_from: Vec<f32> = (0..4).map(|k| ab.sqrt() * x0[k] + (1.0 - ab).sqrt() * eps[k]).collect();
            let c = ddim_inversion_coefficients(&s, from, t).unwrap();
            let x_to: Vec<f32> = (0..4).map(|k| c.sample * x_from[k] + c.eps * eps[k]).collect();
            let at = s.add_noise_coefficients(t).unwrap();
            for k in 0..4 {
                let want = at.sqrt_alpha_prod * x0[k] + at.sqrt_one_minus_alpha_prod * eps[k];
                assert!((x_to[k] - want).abs() < 1e-4, "t={t}: inversion lands on the trajectory");
            }
            let back = ddim_step_coefficients(&s, t, from, 0.0).unwrap();
            let (_, prev) = apply_step(&back, &x_to, &eps, None, None);
            for k in 0..4 {
                assert!((prev[k] - x_from[k]).abs() < 2e-3, "t={t} k={k}: {} vs {}", prev[k], x_from[k]);
            }
        }
        assert!(ddim_inversion_coefficients(&s, Some(500), 400).is_err());
        let first = ddim_inversion_coefficients(&s, None, 0).unwrap();
        assert_eq!((first.x0_sample, first.x0_eps), (1.0, 0.0), "from the clean image x̂₀ is the image");
    }

    #[test]
    fn epsilon_from_x0_inverts_add_noise() {
        let s = scheduler(PRIOR_CONFIG);
        let at = s.add_noise_coefficients(400).unwrap();
        let e = predicted_epsilon_coefficients(&s, 400).unwrap();
        let (x0, eps) = (0.25f32, -1.5f32);
        let x_t = at.sqrt_alpha_prod * x0 + at.sqrt_one_minus_alpha_prod * eps;
        assert!((e.sample * x_t + e.x0 * x0 - eps).abs() < 1e-5);
    }
}
