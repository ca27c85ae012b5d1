//! β schedules and the tables derived from them (docs/math.md §11.1; diffusers `betas_for_alpha_bar`,
//! `DDPMScheduler.__init__`).
//!
//! Precision follows torch: cosine betas are computed in `f64` and stored as `f32`; linear schedules are
//! `torch.linspace(..., dtype=torch.float32)`; `alphas_cumprod` is `torch.cumprod` of `f32` alphas, which
//! torch's CPU kernel accumulates in `f64` before rounding each prefix to `f32`.

use super::SchedulerError;

/// The `beta_schedule` of a diffusers scheduler config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BetaSchedule {
    /// `"linear"`: `torch.linspace(beta_start, beta_end, n, dtype=torch.float32)`.
    Linear { beta_start: f64, beta_end: f64 },
    /// `"scaled_linear"` (Stable Diffusion): `torch.linspace(√beta_start, √beta_end, n, dtype=torch.float32) ** 2`.
    ScaledLinear { beta_start: f64, beta_end: f64 },
    /// `"squaredcos_cap_v2"` (Nichol & Dhariwal's cosine schedule, β capped at 0.999): unCLIP's schedule.
    SquaredCosCapV2,
}

impl BetaSchedule {
    /// Parses a config's `beta_schedule` string; `beta_start` / `beta_end` are used by the linear ones only.
    pub fn from_config(name: &str, beta_start: f64, beta_end: f64) -> Result<Self, SchedulerError> {
        match name {
            "linear" => Ok(Self::Linear { beta_start, beta_end }),
            "scaled_linear" => Ok(Self::ScaledLinear { beta_start, beta_end }),
            "squaredcos_cap_v2" => Ok(Self::SquaredCosCapV2),
            other => Err(SchedulerError::UnknownBetaSchedule(other.to_string())),
        }
    }

    /// The diffusers config string of this schedule.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Linear { .. } => "linear",
            Self::ScaledLinear { .. } => "scaled_linear",
            Self::SquaredCosCapV2 => "squaredcos_cap_v2",
        }
    }
}

/// `betas_for_alpha_bar`'s cap on β for the cosine schedule.
const COSINE_MAX_BETA: f64 = 0.999;

/// The β of each of the `num_train_timesteps` training timesteps.
pub fn betas(schedule: BetaSchedule, num_train_timesteps: usize) -> Vec<f32> {
    match schedule {
        BetaSchedule::Linear { beta_start, beta_end } => linspace_f32(beta_start, beta_end, num_train_timesteps),
        BetaSchedule::ScaledLinear { beta_start, beta_end } => {
            linspace_f32(beta_start.sqrt(), beta_end.sqrt(), num_train_timesteps).into_iter().map(|b| b * b).collect()
        }
        BetaSchedule::SquaredCosCapV2 => cosine_betas(num_train_timesteps),
    }
}

/// diffusers `betas_for_alpha_bar(n, max_beta=0.999, alpha_transform_type="cosine")`: in `f64`,
/// `β_i = min(1 − ᾱ((i+1)/n) / ᾱ(i/n), 0.999)` with `ᾱ(s) = cos((s + 0.008) / 1.008 · π/2)²`, then `f32`.
fn cosine_betas(n: usize) -> Vec<f32> {
    let alpha_bar = |s: f64| {
        let c = ((s + 0.008) / 1.008 * std::f64::consts::PI / 2.0).cos();
        c * c
    };
    (0..n)
        .map(|i| {
            let t1 = i as f64 / n as f64;
            let t2 = (i + 1) as f64 / n as f64;
            (1.0 - alpha_bar(t2) / alpha_bar(t1)).min(COSINE_MAX_BETA) as f32
        })
        .collect()
}

/// `torch.linspace(start, end, n, dtype=torch.float32)` as ATen's `linspace` kernel writes it: endpoints
/// rounded to `f32`, an `f32` step, and the two halves measured from their own end
/// (`start + step·i` for `i < n/2`, `end − step·(n−1−i)` above). Torch's CPU kernel builds vector lanes as
/// `base + k·step` from each chunk's first element instead, which can differ in the last ulp.
fn linspace_f32(start: f64, end: f64, n: usize) -> Vec<f32> {
    let (start, end) = (start as f32, end as f32);
    if n < 2 {
        return vec![start; n];
    }
    let step = (end - start) / (n - 1) as f32;
    let halfway = n / 2;
    (0..n).map(|i| if i < halfway { start + step * i as f32 } else { end - step * (n - 1 - i) as f32 }).collect()
}

/// `torch.cumprod(1 − betas, 0)` on the CPU: the alphas `1 − β` are rounded to `f32`, the running product
/// is kept in `f64` and each prefix rounded to `f32` (a sequential `f32` product differs in 991 of 1000
/// entries of the cosine schedule by up to 4.8e-7, docs/math.md §11.1).
pub fn alphas_cumprod(betas: &[f32]) -> Vec<f32> {
    let mut product = 1.0f64;
    betas
        .iter()
        .map(|&beta| {
            product *= f64::from(1.0 - beta);
            product as f32
        })
        .collect()
}

/// The log signal-to-noise ratio `ln(ᾱ_t / (1 − ᾱ_t))` of each timestep (computed in `f64`), the x-axis
/// on which schedules are usually compared.
pub fn log_snr(alphas_cumprod: &[f32]) -> Vec<f32> {
    alphas_cumprod
        .iter()
        .map(|&ab| {
            let ab = f64::from(ab);
            (ab / (1.0 - ab)).ln() as f32
        })
        .collect()
}

#[cfg(test)]
// Spot values are quoted as printed in docs/math.md §11.1.
#[allow(clippy::excessive_precision)]
mod tests {
    use super::*;

    #[test]
    fn cosine_tables_match_spec_spot_values() {
        let b = betas(BetaSchedule::SquaredCosCapV2, 1000);
        assert_eq!(b.len(), 1000);
        assert_eq!(b[0], 4.1284224e-05);
        assert_eq!(b[999], 0.999);
        let ac = alphas_cumprod(&b);
        assert_eq!(ac[0], 0.99995869);
        assert_eq!(ac[500], 0.49228504);
        assert_eq!(ac[999], 2.4287350e-09);
    }

    #[test]
    fn linear_schedules_hit_their_endpoints() {
        let b = betas(BetaSchedule::Linear { beta_start: 0.0001, beta_end: 0.02 }, 1000);
        assert_eq!((b[0], b[999]), (0.0001, 0.02));
        assert!(b.windows(2).all(|w| w[0] < w[1]));
        let s = betas(BetaSchedule::ScaledLinear { beta_start: 0.00085, beta_end: 0.012 }, 1000);
        assert!((s[0] - 0.00085).abs() < 1e-9 && (s[999] - 0.012).abs() < 1e-9);
    }

    #[test]
    fn parses_config_names() {
        for name in ["linear", "scaled_linear", "squaredcos_cap_v2"] {
            assert_eq!(BetaSchedule::from_config(name, 1e-4, 0.02).map(|s| s.name()), Ok(name));
        }
        let err = BetaSchedule::from_config("cosine", 1e-4, 0.02).unwrap_err();
        assert!(err.to_string().contains("\"cosine\""));
    }

    #[test]
    fn log_snr_decreases_through_zero() {
        let ls = log_snr(&alphas_cumprod(&betas(BetaSchedule::SquaredCosCapV2, 1000)));
        assert!(ls.windows(2).all(|w| w[0] > w[1]));
        assert!(ls[0] > 0.0 && ls[999] < 0.0);
    }
}
