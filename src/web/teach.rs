//! The teaching page's exports (www/learn.html): noise schedules, the forward process, cosines and torch's normal
//! draws, each from the code the pipeline runs.

use js_sys::Float32Array;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::{js_error, to_js, JsResult};
use crate::schedulers::{log_snr, UnCLIPScheduler, UnCLIPSchedulerConfig};
use crate::Error;

/// The scheduler behind a teaching-page schedule: "linear" (DDPM, β from 1e-4 to 0.02) or "cosine"
/// (Improved DDPM, `squaredcos_cap_v2`, what unCLIP uses).
fn teaching_scheduler(kind: &str) -> crate::Result<UnCLIPScheduler> {
    let beta_schedule = match kind {
        "linear" => "linear",
        "cosine" => "squaredcos_cap_v2",
        other => return Err(Error::Settings(format!("unknown schedule `{other}` (expected linear or cosine)"))),
    };
    let config = UnCLIPSchedulerConfig {
        beta_schedule: beta_schedule.into(),
        beta_start: 1e-4,
        beta_end: 0.02,
        ..Default::default()
    };
    Ok(UnCLIPScheduler::new(config)?)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ScheduleTables {
    #[serde(with = "serde_wasm_bindgen::preserve")]
    betas: Float32Array,
    #[serde(with = "serde_wasm_bindgen::preserve")]
    alphas_cumprod: Float32Array,
    #[serde(with = "serde_wasm_bindgen::preserve")]
    log_snr: Float32Array,
}

/// β, ᾱ and log-SNR over the 1000 training steps, from the scheduler code the pipeline runs.
#[wasm_bindgen(js_name = scheduleTables)]
pub fn schedule_tables(kind: &str) -> JsResult<JsValue> {
    let s = teaching_scheduler(kind).map_err(js_error)?;
    to_js(&ScheduleTables {
        betas: Float32Array::from(s.betas()),
        alphas_cumprod: Float32Array::from(s.alphas_cumprod()),
        log_snr: Float32Array::from(&log_snr(s.alphas_cumprod())[..]),
    })
}

/// The forward process x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε (the scheduler's `add_noise`).
#[wasm_bindgen(js_name = addNoise)]
pub fn add_noise(kind: &str, t: usize, x0: &[f32], eps: &[f32]) -> JsResult<Float32Array> {
    let c = teaching_scheduler(kind).and_then(|s| Ok(s.add_noise_coefficients(t)?)).map_err(js_error)?;
    let xt: Vec<f32> =
        x0.iter().zip(eps).map(|(x, e)| c.sqrt_alpha_prod * x + c.sqrt_one_minus_alpha_prod * e).collect();
    Ok(Float32Array::from(&xt[..]))
}

/// cos ∠(a, b), the engine's own (`latent::cosine_similarity`), for the teaching page's nearest concepts.
#[wasm_bindgen(js_name = cosineSimilarity)]
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> JsResult<f32> {
    crate::latent::cosine_similarity(a, b).map_err(js_error)
}

/// `torch.randn(n, generator=torch.Generator().manual_seed(seed))`: the noise ε of the forward process.
#[wasm_bindgen]
pub fn randn(seed: u64, n: usize) -> Float32Array {
    Float32Array::from(&crate::rng::TorchGenerator::new(seed).randn(n)[..])
}
