//! diffusers `UnCLIPScheduler` (`schedulers/scheduling_unclip.py`), the DDPM-style ancestral sampler
//! shared by unCLIP's prior, decoder and super-resolution stages (docs/math.md §11).
//!
//! `step` is split into [`UnCLIPScheduler::step_coefficients`], which does all of diffusers' scalar
//! arithmetic (0-d `f32` tensors there, `f32` scalars here, in the same order), and the caller's
//! elementwise application of the returned [`StepCoefficients`].
//!
//! Against the golden diffusers run, x̂₀ is bit-exact except where torch's own scalar math is not
//! correctly rounded: its CPU `sqrt` of `f32` tensors (most likely MKL VML in the reference build) gives
//! √ᾱ_t or √(1−ᾱ_t) one ulp away from the correctly rounded value at 8 of the 25 decoder timesteps, which
//! moves x̂₀ by up to 6.1e-7 there. `prev_sample` also carries the noise's randn difference (≤ 4.8e-7,
//! see [`crate::rng`]). The golden tests below measure and bound both.

use serde::{Deserialize, Serialize};

use super::betas::{alphas_cumprod, betas, BetaSchedule};
use super::{NoiseScale, SchedulerError, StepCoefficients, MAX_TRAIN_TIMESTEPS};

/// A scheduler's `scheduler_config.json`, with the defaults of `UnCLIPScheduler.__init__`.
/// Keys it does not know (`_class_name`, `_diffusers_version`) are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UnCLIPSchedulerConfig {
    pub num_train_timesteps: usize,
    /// `"fixed_small_log"` or `"learned_range"`.
    pub variance_type: String,
    pub clip_sample: bool,
    pub clip_sample_range: f32,
    /// `"epsilon"` or `"sample"`.
    pub prediction_type: String,
    /// `"squaredcos_cap_v2"` in every unCLIP checkpoint. diffusers' UnCLIPScheduler rejects anything else;
    /// this port also accepts `"linear"` and `"scaled_linear"` so schedules can be compared.
    pub beta_schedule: String,
    /// `DDPMScheduler`'s key and default; read only by the linear schedules.
    pub beta_start: f64,
    /// `DDPMScheduler`'s key and default; read only by the linear schedules.
    pub beta_end: f64,
}

impl Default for UnCLIPSchedulerConfig {
    fn default() -> Self {
        Self {
            num_train_timesteps: 1000,
            variance_type: "fixed_small_log".to_string(),
            clip_sample: true,
            clip_sample_range: 1.0,
            prediction_type: "epsilon".to_string(),
            beta_schedule: "squaredcos_cap_v2".to_string(),
            beta_start: 0.0001,
            beta_end: 0.02,
        }
    }
}

/// The value a config string names, from (diffusers name, value) pairs.
fn named<T: Copy>(name: &str, names: &[(&str, T)]) -> Option<T> {
    names.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
}

/// How the noise of a step is chosen (`variance_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarianceType {
    /// `"fixed_small_log"`: σ² = the posterior variance β̃_t, through `exp(0.5·log(max(β̃_t, 1e-20)))`.
    FixedSmallLog,
    /// `"learned_range"`: the model outputs `2C` channels; the last `C` interpolate log σ² between
    /// `ln β̃_t` and `ln β_t` (Improved DDPM).
    LearnedRange,
}

/// What the model predicts (`prediction_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredictionType {
    /// `"epsilon"`: the added noise ε (decoder, super-resolution).
    Epsilon,
    /// `"sample"`: the clean sample x₀ directly (the prior).
    Sample,
}

/// `x_t = sqrt_alpha_prod · x₀ + sqrt_one_minus_alpha_prod · ε` (diffusers `DDPMScheduler.add_noise`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AddNoiseCoefficients {
    pub sqrt_alpha_prod: f32,
    pub sqrt_one_minus_alpha_prod: f32,
}

/// ᾱ at both ends of a step, read the way `UnCLIPScheduler.step` reads them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepAlphas {
    pub alpha_prod_t: f32,
    /// `alphas_cumprod[prev]`, or 1 when the step goes to "before timestep 0".
    pub alpha_prod_prev: f32,
    /// The step is `t → t−1` (diffusers' `prev_timestep == t - 1`, which includes `0 → −1`).
    pub consecutive: bool,
}

/// diffusers `UnCLIPScheduler`: the β / ᾱ tables plus the parsed config.
#[derive(Debug, Clone)]
pub struct UnCLIPScheduler {
    config: UnCLIPSchedulerConfig,
    beta_schedule: BetaSchedule,
    variance_type: VarianceType,
    prediction_type: PredictionType,
    betas: Vec<f32>,
    alphas: Vec<f32>,
    alphas_cumprod: Vec<f32>,
}

impl UnCLIPScheduler {
    /// Builds the tables of docs/math.md §11.1 after checking every config string.
    pub fn new(config: UnCLIPSchedulerConfig) -> Result<Self, SchedulerError> {
        let beta_schedule = BetaSchedule::from_config(&config.beta_schedule, config.beta_start, config.beta_end)?;
        let variances =
            [("fixed_small_log", VarianceType::FixedSmallLog), ("learned_range", VarianceType::LearnedRange)];
        let variance_type = named(&config.variance_type, &variances)
            .ok_or_else(|| SchedulerError::UnknownVarianceType(config.variance_type.clone()))?;
        let predictions = [("epsilon", PredictionType::Epsilon), ("sample", PredictionType::Sample)];
        let prediction_type = named(&config.prediction_type, &predictions)
            .ok_or_else(|| SchedulerError::UnknownPredictionType(config.prediction_type.clone()))?;
        if !(2..=MAX_TRAIN_TIMESTEPS).contains(&config.num_train_timesteps) {
            return Err(SchedulerError::TrainTimestepsOutOfRange(config.num_train_timesteps));
        }
        let range = config.clip_sample_range;
        if config.clip_sample && !(range.is_finite() && range > 0.0) {
            return Err(SchedulerError::InvalidClipRange(range));
        }
        let betas = betas(beta_schedule, config.num_train_timesteps);
        let alphas = betas.iter().map(|&b| 1.0 - b).collect();
        let alphas_cumprod = alphas_cumprod(&betas);
        Ok(Self { config, beta_schedule, variance_type, prediction_type, betas, alphas, alphas_cumprod })
    }

    pub fn config(&self) -> &UnCLIPSchedulerConfig {
        &self.config
    }

    pub fn beta_schedule(&self) -> BetaSchedule {
        self.beta_schedule
    }

    pub fn variance_type(&self) -> VarianceType {
        self.variance_type
    }

    pub fn prediction_type(&self) -> PredictionType {
        self.prediction_type
    }

    pub fn num_train_timesteps(&self) -> usize {
        self.config.num_train_timesteps
    }

    /// β_t for every training timestep.
    pub fn betas(&self) -> &[f32] {
        &self.betas
    }

    /// ᾱ_t for every training timestep.
    pub fn alphas_cumprod(&self) -> &[f32] {
        &self.alphas_cumprod
    }

    /// The timesteps of an `n`-step sampling run, first (999) to last (0) (docs/math.md §11.2):
    /// `round_half_even(i · (T−1)/(n−1))` for `i = n−1, …, 0`. Unlike diffusers this stores nothing;
    /// pass `timesteps[i + 1]` (or `None` on the last step) as `prev_t` to [`Self::step_coefficients`].
    pub fn set_timesteps(&self, n: usize) -> Result<Vec<usize>, SchedulerError> {
        let train = self.config.num_train_timesteps;
        if n < 2 {
            return Err(SchedulerError::TooFewSteps(n));
        }
        if n > train {
            return Err(SchedulerError::TooManySteps { steps: n, num_train_timesteps: train });
        }
        let step_ratio = (train - 1) as f64 / (n - 1) as f64;
        Ok((0..n).rev().map(|i| (i as f64 * step_ratio).round_ties_even() as usize).collect())
    }

    /// ᾱ_t and ᾱ_prev of the step `t → prev_t` (`prev_t = None` means `t − 1`, and "before 0" for t = 0).
    pub(crate) fn step_alphas(&self, t: usize, prev_t: Option<usize>) -> Result<StepAlphas, SchedulerError> {
        let train = self.config.num_train_timesteps;
        if t >= train {
            return Err(SchedulerError::TimestepOutOfRange { t, num_train_timesteps: train });
        }
        let prev = match prev_t {
            Some(prev_t) if prev_t >= t => return Err(SchedulerError::PrevTimestepNotBefore { t, prev_t }),
            Some(prev_t) => Some(prev_t),
            None => t.checked_sub(1),
        };
        Ok(StepAlphas {
            alpha_prod_t: self.alphas_cumprod[t],
            alpha_prod_prev: prev.map_or(1.0, |p| self.alphas_cumprod[p]),
            consecutive: prev.is_none_or(|p| p + 1 == t),
        })
    }

    /// `(x0_sample, x0_model, x0_denominator)` of [`StepCoefficients`] for `prediction_type` at ᾱ_t.
    pub(crate) fn x0_coefficients(&self, alpha_prod_t: f32) -> (f32, f32, f32) {
        match self.prediction_type {
            PredictionType::Epsilon => (1.0, -(1.0 - alpha_prod_t).sqrt(), alpha_prod_t.sqrt()),
            PredictionType::Sample => (0.0, 1.0, 1.0),
        }
    }

    /// `clip_sample_range` when `clip_sample` is on.
    pub(crate) fn clip(&self) -> Option<f32> {
        self.config.clip_sample.then_some(self.config.clip_sample_range)
    }

    /// `UnCLIPScheduler.step(model_output, t, sample, prev_timestep=prev_t)` as scalars (docs/math.md §11.3).
    ///
    /// `prev_t` is the next entry of [`Self::set_timesteps`], `None` on the last step (t = 0), as the
    /// pipeline passes it. For skipped timesteps β is recomputed as `1 − ᾱ_t/ᾱ_prev`. Noise (and the
    /// generator draw that goes with it) only when `t > 0`.
    pub fn step_coefficients(&self, t: usize, prev_t: Option<usize>) -> Result<StepCoefficients, SchedulerError> {
        let StepAlphas { alpha_prod_t, alpha_prod_prev, consecutive } = self.step_alphas(t, prev_t)?;
        let beta_prod_t = 1.0 - alpha_prod_t;
        let beta_prod_prev = 1.0 - alpha_prod_prev;
        let (beta, alpha) = if consecutive {
            (self.betas[t], self.alphas[t])
        } else {
            let beta = 1.0 - alpha_prod_t / alpha_prod_prev;
            (beta, 1.0 - beta)
        };
        let (x0_sample, x0_model, x0_denominator) = self.x0_coefficients(alpha_prod_t);
        let noise = (t > 0).then(|| {
            // `_get_variance`: the posterior variance β̃_t of the (possibly skipping) step.
            let variance = beta_prod_prev / beta_prod_t * beta;
            match self.variance_type {
                VarianceType::FixedSmallLog => NoiseScale::Fixed { sigma: (0.5 * variance.max(1e-20).ln()).exp() },
                VarianceType::LearnedRange => NoiseScale::LearnedRange { log_min: variance.ln(), log_max: beta.ln() },
            }
        });
        Ok(StepCoefficients {
            x0_sample,
            x0_model,
            x0_denominator,
            clip: self.clip(),
            mean_x0: alpha_prod_prev.sqrt() * beta / beta_prod_t,
            mean_sample: alpha.sqrt() * beta_prod_prev / beta_prod_t,
            noise,
        })
    }

    /// The forward process `q(x_t | x₀)` at timestep `t`, for showing what the model learns to undo.
    pub fn add_noise_coefficients(&self, t: usize) -> Result<AddNoiseCoefficients, SchedulerError> {
        let alpha_prod_t = self.step_alphas(t, None)?.alpha_prod_t;
        Ok(AddNoiseCoefficients {
            sqrt_alpha_prod: alpha_prod_t.sqrt(),
            sqrt_one_minus_alpha_prod: (1.0 - alpha_prod_t).sqrt(),
        })
    }
}

#[cfg(test)]
// Spot values are quoted as printed in docs/math.md §11.1.
#[allow(clippy::excessive_precision)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use safetensors::{Dtype, SafeTensors};

    use super::*;
    use crate::rng::TorchGenerator;

    /// The three `scheduler_config.json` files of `fixtures/tiny-unclip` (identical to Karlo's).
    pub(crate) const PRIOR_CONFIG: &str = r#"{"_class_name": "UnCLIPScheduler", "_diffusers_version": "0.42.1",
        "beta_schedule": "squaredcos_cap_v2", "clip_sample": true, "clip_sample_range": 5.0,
        "num_train_timesteps": 1000, "prediction_type": "sample", "variance_type": "fixed_small_log"}"#;
    pub(crate) const DECODER_CONFIG: &str = r#"{"_class_name": "UnCLIPScheduler", "_diffusers_version": "0.42.1",
        "beta_schedule": "squaredcos_cap_v2", "clip_sample": true, "clip_sample_range": 1.0,
        "num_train_timesteps": 1000, "prediction_type": "epsilon", "variance_type": "learned_range"}"#;
    pub(crate) const SUPER_RES_CONFIG: &str = r#"{"_class_name": "UnCLIPScheduler", "_diffusers_version": "0.42.1",
        "beta_schedule": "squaredcos_cap_v2", "clip_sample": true, "clip_sample_range": 1.0,
        "num_train_timesteps": 1000, "prediction_type": "epsilon", "variance_type": "fixed_small_log"}"#;

    pub(crate) fn scheduler(json: &str) -> UnCLIPScheduler {
        UnCLIPScheduler::new(serde_json::from_str(json).expect("config parses")).expect("config is valid")
    }

    /// Applies a step's coefficients to flat `f32` slices, elementwise in diffusers' order.
    /// `v` is the learned-range variance channels, `z` the step's noise draw. Returns `(x0, prev)`.
    pub(crate) fn apply_step(
        c: &StepCoefficients,
        sample: &[f32],
        model_output: &[f32],
        v: Option<&[f32]>,
        z: Option<&[f32]>,
    ) -> (Vec<f32>, Vec<f32>) {
        let x0: Vec<f32> = sample
            .iter()
            .zip(model_output)
            .map(|(&s, &m)| {
                let x0 = (c.x0_sample * s + c.x0_model * m) / c.x0_denominator;
                c.clip.map_or(x0, |r| x0.clamp(-r, r))
            })
            .collect();
        let prev = (0..sample.len())
            .map(|i| {
                let mean = c.mean_x0 * x0[i] + c.mean_sample * sample[i];
                match (c.noise, z) {
                    (None, _) => mean,
                    (Some(NoiseScale::Fixed { sigma }), Some(z)) => mean + sigma * z[i],
                    (Some(NoiseScale::LearnedRange { log_min, log_max }), Some(z)) => {
                        let v = v.expect("learned_range needs the variance channels");
                        let frac = (v[i] + 1.0) / 2.0;
                        let log_variance = frac * log_max + (1.0 - frac) * log_min;
                        mean + (0.5 * log_variance).exp() * z[i]
                    }
                    (Some(_), None) => panic!("a noisy step needs a noise draw"),
                }
            })
            .collect();
        (x0, prev)
    }

    #[test]
    fn timesteps_match_spec() {
        let s = scheduler(SUPER_RES_CONFIG);
        assert_eq!(s.set_timesteps(2).unwrap(), [999, 0]);
        assert_eq!(s.set_timesteps(7).unwrap(), [999, 832, 666, 500, 333, 166, 0]);
        assert_eq!(
            s.set_timesteps(25).unwrap(),
            [
                999, 957, 916, 874, 832, 791, 749, 708, 666, 624, 583, 541, 500, 458, 416, 375, 333, 291, 250, 208,
                166, 125, 83, 42, 0
            ]
        );
        assert_eq!(
            s.set_timesteps(50).unwrap(),
            [
                999, 979, 958, 938, 917, 897, 877, 856, 836, 816, 795, 775, 754, 734, 714, 693, 673, 652, 632, 612,
                591, 571, 550, 530, 510, 489, 469, 449, 428, 408, 387, 367, 347, 326, 306, 285, 265, 245, 224, 204,
                183, 163, 143, 122, 102, 82, 61, 41, 20, 0
            ]
        );
        assert_eq!(s.set_timesteps(1000).unwrap(), (0..1000).rev().collect::<Vec<_>>());
    }

    #[test]
    fn tables_match_spec_spot_values() {
        let s = scheduler(PRIOR_CONFIG);
        assert_eq!(s.betas()[0], 4.1284224e-05);
        assert_eq!(s.betas()[999], 0.999);
        assert_eq!(s.alphas_cumprod()[0], 0.99995869);
        assert_eq!(s.alphas_cumprod()[500], 0.49228504);
        assert_eq!(s.alphas_cumprod()[999], 2.4287350e-09);
    }

    #[test]
    fn rejects_bad_configs_and_calls_with_clear_errors() {
        let s = scheduler(DECODER_CONFIG);
        let msg = s.set_timesteps(1).unwrap_err().to_string();
        assert_eq!(msg, "num_inference_steps must be ≥ 2 for UnCLIPScheduler (got 1): its step ratio divides by n-1");
        assert!(matches!(s.set_timesteps(1001), Err(SchedulerError::TooManySteps { steps: 1001, .. })));
        assert!(matches!(s.step_coefficients(1000, None), Err(SchedulerError::TimestepOutOfRange { t: 1000, .. })));
        assert!(matches!(s.step_coefficients(500, Some(500)), Err(SchedulerError::PrevTimestepNotBefore { .. })));
        for (key, value, want) in [
            ("variance_type", "\"fixed_large\"", "unknown variance_type \"fixed_large\""),
            ("prediction_type", "\"v_prediction\"", "unknown prediction_type \"v_prediction\""),
            ("beta_schedule", "\"sigmoid\"", "unknown beta_schedule \"sigmoid\""),
            ("clip_sample_range", "0.0", "clip_sample_range must be a positive"),
        ] {
            let json = format!("{{\"{key}\": {value}}}");
            let config: UnCLIPSchedulerConfig = serde_json::from_str(&json).unwrap();
            let msg = UnCLIPScheduler::new(config).unwrap_err().to_string();
            assert!(msg.starts_with(want), "{msg}");
        }
    }

    #[test]
    fn config_defaults_are_diffusers_defaults() {
        let s = scheduler("{}");
        assert_eq!(s.variance_type(), VarianceType::FixedSmallLog);
        assert_eq!(s.prediction_type(), PredictionType::Epsilon);
        assert_eq!(s.beta_schedule(), BetaSchedule::SquaredCosCapV2);
        assert_eq!((s.num_train_timesteps(), s.clip()), (1000, Some(1.0)));
        assert_eq!(scheduler(DECODER_CONFIG).variance_type(), VarianceType::LearnedRange);
        assert_eq!(scheduler(PRIOR_CONFIG).clip(), Some(5.0));
    }

    #[test]
    fn last_step_is_noiseless_and_consecutive_steps_use_the_table_beta() {
        let s = scheduler(SUPER_RES_CONFIG);
        let last = s.step_coefficients(0, None).unwrap();
        assert_eq!(last.noise, None);
        assert_eq!(last.mean_sample, 0.0);
        assert!((last.mean_x0 - 1.0).abs() < 1e-3);
        // t → t−1 given explicitly or implicitly is the same step.
        assert_eq!(s.step_coefficients(500, Some(499)).unwrap(), s.step_coefficients(500, None).unwrap());
        let c = s.add_noise_coefficients(500).unwrap();
        let ab = s.alphas_cumprod()[500];
        assert_eq!(c.sqrt_alpha_prod, ab.sqrt());
        assert_eq!(c.sqrt_one_minus_alpha_prod, (1.0 - ab).sqrt());
    }

    /// The golden tensors of a real diffusers run (docs/math.md §15.3).
    pub(crate) struct Golden {
        tensors: HashMap<String, (Vec<usize>, Vec<u8>, Dtype)>,
    }

    impl Golden {
        pub(crate) fn load(file: &str) -> Self {
            let path = format!("{}/tests/fixtures/golden/{file}", env!("CARGO_MANIFEST_DIR"));
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let st = SafeTensors::deserialize(&bytes).expect("valid safetensors");
            let tensors = st
                .tensors()
                .into_iter()
                .map(|(name, view)| {
                    let entry = (view.shape().to_vec(), view.data().to_vec(), view.dtype());
                    (name, entry)
                })
                .collect();
            Self { tensors }
        }

        pub(crate) fn has(&self, name: &str) -> bool {
            self.tensors.contains_key(name)
        }

        pub(crate) fn f32(&self, name: &str) -> (Vec<usize>, Vec<f32>) {
            let (shape, data, dtype) = &self.tensors[name];
            assert_eq!(*dtype, Dtype::F32, "{name}");
            let values = data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            (shape.clone(), values)
        }

        pub(crate) fn i64(&self, name: &str) -> i64 {
            let (_, data, dtype) = &self.tensors[name];
            assert_eq!(*dtype, Dtype::I64, "{name}");
            i64::from_le_bytes(data[..8].try_into().unwrap())
        }
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    /// Largest errors of one scheduler over a run.
    #[derive(Debug, Default)]
    struct StageErrors {
        latents: f32,
        x0: f32,
        prev: f32,
    }

    /// Replays every scheduler step of a golden run: the caller's inputs (`sample`, `model_output`)
    /// come from the golden file, the noise from `TorchGenerator::new(0)` in the pipeline's draw order
    /// (docs/math.md §13), and `pred_original_sample` / `prev_sample` are compared.
    fn replay(file: &str) -> Vec<(&'static str, StageErrors)> {
        let golden = Golden::load(file);
        let mut generator = TorchGenerator::new(0);
        let stages = [
            ("prior_scheduler", PRIOR_CONFIG, "prior.0.in.arg0"),
            ("decoder_scheduler", DECODER_CONFIG, "decoder.0.in.sample"),
            ("super_res_scheduler", SUPER_RES_CONFIG, "super_res_scheduler.0.sample"),
        ];
        let mut report = Vec::new();
        for (name, config, initial) in stages {
            let s = scheduler(config);
            let steps = (0..).take_while(|i| golden.has(&format!("{name}.{i}.t"))).count();
            let timesteps = s.set_timesteps(steps).unwrap();
            let golden_t: Vec<usize> = (0..steps).map(|i| golden.i64(&format!("{name}.{i}.t")) as usize).collect();
            assert_eq!(timesteps, golden_t, "{name} timesteps");

            let mut errors = StageErrors::default();
            let (_, sample0) = golden.f32(&format!("{name}.0.sample"));
            let latents = generator.randn(sample0.len());
            // With CFG the model's input is [x; x]: the first batch entry is the latents.
            let (_, initial) = golden.f32(initial);
            errors.latents = max_abs_diff(&latents, &initial[..latents.len()]);

            for (i, &t) in timesteps.iter().enumerate() {
                let key = |k: &str| format!("{name}.{i}.{k}");
                let (_, sample) = golden.f32(&key("sample"));
                let (_, model_output) = golden.f32(&key("model_output"));
                let c = s.step_coefficients(t, timesteps.get(i + 1).copied()).unwrap();
                // Batch 1: channels 0..C (ε) and C..2C (v) are the two contiguous halves.
                let learned = s.variance_type() == VarianceType::LearnedRange;
                let (model_output, v) = if learned && model_output.len() == 2 * sample.len() {
                    let (eps, v) = model_output.split_at(sample.len());
                    (eps, Some(v))
                } else {
                    (&model_output[..], None)
                };
                let z = c.noise.map(|_| generator.randn(sample.len()));
                let (x0, prev) = apply_step(&c, &sample, model_output, v, z.as_deref());
                let (_, want_x0) = golden.f32(&key("pred_original_sample"));
                let (_, want_prev) = golden.f32(&key("prev_sample"));
                errors.x0 = errors.x0.max(max_abs_diff(&x0, &want_x0));
                errors.prev = errors.prev.max(max_abs_diff(&prev, &want_prev));
            }
            report.push((name, errors));
        }
        report
    }

    fn check_golden(file: &str) {
        for (name, e) in replay(file) {
            eprintln!("{file} {name}: {e:?}");
            assert!(e.latents <= 1e-6, "{name} initial latents: {e:?}");
            assert!(e.x0 <= 1e-6, "{name} pred_original_sample: {e:?}");
            assert!(e.prev <= 1.5e-6, "{name} prev_sample: {e:?}");
        }
    }

    #[test]
    fn golden_steps_2_2_2() {
        check_golden("tiny_horse_seed0_2-2-2.safetensors");
    }

    #[test]
    fn golden_steps_25_25_7() {
        check_golden("tiny_horse_seed0_25-25-7.safetensors");
    }
}
