//! Benchmark hooks for bench/unet_step.html (issue #4): one decoder UNet call on either backend, timed in the
//! page against onnxruntime-web running the same weights. Not used by the app.

use js_sys::Float32Array;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::{js_error, to_js, JsResult};
use crate::backend::cpu::Cpu;
use crate::backend::webgpu::WebGpu;
use crate::gguf::GgufFile;
use crate::unet_step::{time_on, Call};
use crate::Error;

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
) -> JsResult<JsValue> {
    let call = Call {
        sample,
        timestep: timestep as usize,
        encoder_hidden_states,
        class_labels,
        mask: attention_mask.iter().map(|&m| m != 0).collect(),
    };
    let timed = async {
        let file = GgufFile::from_bytes(gguf)?;
        Ok(match backend.as_str() {
            "cpu" => (JsValue::NULL, time_on(Cpu, &file, &call, runs).await?),
            "webgpu" => {
                let gpu = WebGpu::new().await?;
                let adapter = serde_wasm_bindgen::to_value(gpu.adapter()).unwrap_or_default();
                (adapter, time_on(gpu, &file, &call, runs).await?)
            }
            other => return Err(Error::Settings(format!("backend `{other}`: expected cpu or webgpu"))),
        })
    };
    let (adapter, (ms, output)) = timed.await.map_err(js_error)?;
    to_js(&Timed { backend, adapter, ms, output: Float32Array::from(&output[..]) })
}

/// What `timeUnetStep` resolves to; `adapter` is null on the CPU.
#[derive(Serialize)]
struct Timed {
    backend: String,
    #[serde(with = "serde_wasm_bindgen::preserve")]
    adapter: JsValue,
    ms: Vec<f64>,
    #[serde(with = "serde_wasm_bindgen::preserve")]
    output: Float32Array,
}
