//! One decoder UNet call (`UNet2DConditionModel` from a GGUF component file) timed on a backend: the benchmark
//! behind the page's `timeUnetStep` (bench/browser_unet_step.mjs, against onnxruntime-web) and
//! `unclip bench --unet-step` (natively, against PyTorch).

use crate::backend::{Backend, Tensor};
use crate::config::UNet2DConditionConfig;
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::models::unet_2d_condition::UNet2DConditionModel;
use crate::models::DecoderConditioning;
use crate::nn::Weights;
use crate::time::now_ms;

/// The inputs of one call.
pub struct Call {
    pub sample: Vec<f32>,
    pub timestep: usize,
    pub encoder_hidden_states: Vec<f32>,
    pub class_labels: Vec<f32>,
    pub mask: Vec<bool>,
}

/// Builds the UNet on `be`, runs it once to warm up and then `runs` times; each run uploads the inputs, calls
/// the model and reads the output back (the read-back is the synchronisation point on WebGPU).
pub async fn time_on<B: Backend>(be: B, file: &GgufFile, call: &Call, runs: u32) -> Result<(Vec<f64>, Vec<f32>)> {
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
        let cond = DecoderConditioning {
            encoder_hidden_states: be.tensor(call.encoder_hidden_states.clone(), &[n, len, cross])?,
            additive_time_emb: be.tensor(call.class_labels.clone(), &[n, n_time])?,
        };
        be.on_pool(|| unet.forward(&sample, call.timestep, &cond, &call.mask))?.to_vec().await
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
