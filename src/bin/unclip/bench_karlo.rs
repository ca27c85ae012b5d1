//! `unclip bench --karlo-decoder DIR`: one denoising step of a Karlo-size decoder UNet (the config and
//! state-dict key list in DIR, e.g. bench/karlo/) on the WebGPU backend, with random weights stored as
//! the converter would store them at q4_0. Checks that every buffer fits WebGPU's default limits and
//! reports the step's time and the GPU memory it used. No Karlo checkpoint is reachable here, so the
//! weights are random: the time and memory are real, the image is not.

use std::path::Path;

use unclip::backend::webgpu::WebGpu;
use unclip::backend::{Backend, Tensor};
use unclip::config::UNet2DConditionConfig;
use unclip::convert::storage;
use unclip::gguf::{GgmlType, GgufFile, GgufWriter};
use unclip::models::unet_2d_condition::UNet2DConditionModel;
use unclip::models::DecoderConditioning;
use unclip::nn::Weights;
use unclip::{Error, Result};

use super::bench::{read_key_list, write_section};

/// Deterministic uniform values in [-a, a] (weights only need to be finite and of a plausible size).
fn uniform(seed: &mut u64, n: usize, a: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((*seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * a
        })
        .collect()
}

pub fn karlo_decoder_step(dir: &Path, out: &Path) -> Result<()> {
    let config_path = dir.join("decoder_config.json");
    let config: UNet2DConditionConfig = serde_json::from_slice(
        &std::fs::read(&config_path).map_err(|e| Error::io(&config_path, e))?,
    )
    .map_err(|source| Error::Json {
        path: config_path.display().to_string(),
        what: "a UNet2DConditionModel config",
        source,
    })?;
    let keys = read_key_list(&dir.join("decoder_state_dict_keys.txt"))?;

    eprintln!("building {} random q4_0 tensors …", keys.len());
    let mut w = GgufWriter::new();
    let (mut seed, mut params) = (7u64, 0usize);
    for (name, shape) in &keys {
        let (dtype, stored) = storage(name, shape, GgmlType::Q4_0);
        let n: usize = shape.iter().product();
        params += n;
        let values = if name.ends_with("norm.weight") || name.contains("norm1.weight") || name.contains("norm2.weight")
        {
            vec![1.0; n]
        } else {
            uniform(&mut seed, n, 0.02)
        };
        w.add_tensor(name, &stored, dtype, &values)?;
    }
    let mut bytes = Vec::new();
    w.write(&mut bytes).map_err(|e| Error::Model(format!("writing the random decoder: {e}")))?;
    let file = GgufFile::from_bytes(bytes)?;

    let gpu = pollster::block_on(WebGpu::new())?;
    let adapter = gpu.adapter().clone();
    eprintln!("uploading to {} …", adapter.name);
    let unet = UNet2DConditionModel::new(&Weights::new(&file, &gpu, "decoder"), config.clone())?;
    let (n, s, l) = (2, config.sample_size, 77 + 4); // CFG batch; CLIP's 77 tokens + text_proj's 4 extra
    let t_dim = 4 * config.block_out_channels[0];
    let mut inputs = 11u64;
    let sample = gpu.tensor(uniform(&mut inputs, n * 3 * s * s, 1.0), &[n, 3, s, s])?;
    let x = config.cross_attention_dim;
    let cond = DecoderConditioning {
        encoder_hidden_states: gpu.tensor(uniform(&mut inputs, n * l * x, 1.0), &[n, l, x])?,
        additive_time_emb: gpu.tensor(uniform(&mut inputs, n * t_dim, 1.0), &[n, t_dim])?,
    };
    let mask = vec![true; n * l];

    let mut times = Vec::new();
    for run in 0..2 {
        let start = unclip::time::now_ms();
        let y = unet.forward(&sample, 999, &cond, &mask)?;
        let out = pollster::block_on(y.to_vec())?;
        let ms = unclip::time::now_ms() - start;
        eprintln!("run {run}: {ms:.0} ms ({} outputs, finite: {})", out.len(), out.iter().all(|v| v.is_finite()));
        times.push(ms);
    }
    let mem = gpu.memory();
    let md = format!(
        "### Karlo-size decoder UNet, one step (batch 2 = CFG, {s}×{s}), WebGPU on {} ({}, {})\n\n\
         {:.0} M parameters from `bench/karlo/` (config + key list), random weights stored as the converter stores \
         q4_0. Every buffer fits WebGPU's default limits (the backend refuses any over 128 MiB): largest weight buffer \
         {:.1} MiB, largest activation buffer {:.1} MiB. GPU memory: weights {:.0} MiB, activation buffers {:.0} MiB \
         (pooled). One step: {:.0} ms (first run, with kernel compilation: {:.0} ms).\n",
        adapter.name,
        adapter.backend,
        adapter.device_type,
        params as f64 / 1e6,
        mem.largest_weight as f64 / 1048576.0,
        mem.largest_activation as f64 / 1048576.0,
        mem.weights as f64 / 1048576.0,
        mem.activations as f64 / 1048576.0,
        times[1],
        times[0],
    );
    println!("{md}");
    write_section(out, "karlo-decoder-webgpu", &md)
}
