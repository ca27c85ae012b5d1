//! Benchmark hooks for bench/unet_step.html (issue #4): one decoder UNet call on either backend, timed in the
//! page against onnxruntime-web running the same weights. Not used by the app.

use js_sys::{Float32Array, Function, Reflect};
use wasm_bindgen::prelude::*;

use super::{js_err, obj};
use crate::backend::cpu::Cpu;
use crate::backend::webgpu::WebGpu;
use crate::backend::{Backend, Tensor};
use crate::config::UNet2DConditionConfig;
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::models::unet_2d_condition::UNet2DConditionModel;
use crate::nn::Weights;

/// performance.now() of the window or worker (sub-millisecond, unlike Date.now()).
fn now_ms() -> f64 {
    let perf = Reflect::get(&js_sys::global(), &"performance".into()).ok();
    let now =
        perf.as_ref().and_then(|p| Reflect::get(p, &"now".into()).ok()).and_then(|f| f.dyn_into::<Function>().ok());
    match (perf, now) {
        (Some(p), Some(f)) => f.call0(&p).ok().and_then(|v| v.as_f64()).unwrap_or_else(js_sys::Date::now),
        _ => js_sys::Date::now(),
    }
}

/// The inputs of one call, as the page passes them to both implementations.
struct Call {
    sample: Vec<f32>,
    timestep: usize,
    encoder_hidden_states: Vec<f32>,
    class_labels: Vec<f32>,
    mask: Vec<bool>,
}

/// Builds the UNet on `be`, runs it once to warm up and then `runs` times; each run uploads the inputs, calls
/// the model and reads the output back (the read-back is the synchronisation point on WebGPU).
async fn time_on<B: Backend>(be: B, file: &GgufFile, call: &Call, runs: u32) -> Result<(Vec<f64>, Vec<f32>)> {
    let config: UNet2DConditionConfig = serde_json::from_str(file.metadata_str("unclip.config")?)
        .map_err(|e| Error::Model(format!("the GGUF's unclip.config is not a UNet2DConditionModel config: {e}")))?;
    let (n_time, cin, size, cross) =
        (config.block_out_channels[0] * 4, config.in_channels, config.sample_size, config.cross_attention_dim);
    let n = call.class_labels.len() / n_time;
    let len = call.mask.len() / n.max(1);
    let ok = n > 0
        && call.class_labels.len() == n * n_time
        && call.sample.len() == n * cin * size * size
        && call.mask.len() == n * len
        && call.encoder_hidden_states.len() == n * len * cross;
    if !ok {
        return Err(Error::Model(format!(
            "inputs do not fit the config: sample {}, encoder_hidden_states {}, class_labels {}, mask {} values \
             for N×{cin}×{size}×{size}, N×L×{cross}, N×{n_time}, N×L",
            call.sample.len(),
            call.encoder_hidden_states.len(),
            call.class_labels.len(),
            call.mask.len()
        )));
    }
    let unet = UNet2DConditionModel::new(&Weights::new(file, &be, "decoder"), config)?;
    let once = || async {
        let sample = be.tensor(call.sample.clone(), &[n, cin, size, size])?;
        let ehs = be.tensor(call.encoder_hidden_states.clone(), &[n, len, cross])?;
        let cls = be.tensor(call.class_labels.clone(), &[n, n_time])?;
        unet.forward(&sample, call.timestep, &ehs, &cls, &call.mask)?.to_vec().await
    };
    let mut out = once().await?;
    let mut ms = Vec::with_capacity(runs as usize);
    for _ in 0..runs {
        let t0 = now_ms();
        out = once().await?;
        ms.push(now_ms() - t0);
    }
    Ok((ms, out))
}

/// One decoder UNet call (`UNet2DConditionModel` from a GGUF component file) timed on `backend` ("cpu" or
/// "webgpu"): inputs are sample (N,Cin,S,S), encoder_hidden_states (N,L,X), class_labels (N,4·C0) as f32 and
/// attention_mask (N,L) as 0/1 bytes. Returns {backend, adapter, ms: [per run], output: Float32Array}.
#[allow(clippy::too_many_arguments)]
#[wasm_bindgen(js_name = timeUnetStep)]
pub async fn time_unet_step(
    gguf: Vec<u8>,
    sample: Vec<f32>,
    timestep: u32,
    encoder_hidden_states: Vec<f32>,
    class_labels: Vec<f32>,
    attention_mask: Vec<u8>,
    backend: String,
    runs: u32,
) -> std::result::Result<JsValue, JsError> {
    let file = GgufFile::from_bytes(gguf).map_err(js_err)?;
    let call = Call {
        sample,
        timestep: timestep as usize,
        encoder_hidden_states,
        class_labels,
        mask: attention_mask.iter().map(|&m| m != 0).collect(),
    };
    let (adapter, (ms, out)) = match backend.as_str() {
        "cpu" => (JsValue::NULL, time_on(Cpu, &file, &call, runs).await.map_err(js_err)?),
        "webgpu" => {
            let gpu = WebGpu::new().await.map_err(js_err)?;
            let adapter = serde_wasm_bindgen::to_value(gpu.adapter()).unwrap_or_default();
            (adapter, time_on(gpu, &file, &call, runs).await.map_err(js_err)?)
        }
        other => return Err(JsError::new(&format!("backend `{other}`: expected cpu or webgpu"))),
    };
    let ms_js: js_sys::Array = ms.iter().map(|&v| JsValue::from_f64(v)).collect();
    Ok(obj(&[
        ("backend", JsValue::from_str(&backend)),
        ("adapter", adapter),
        ("ms", ms_js.into()),
        ("output", Float32Array::from(out.as_slice()).into()),
    ]))
}
