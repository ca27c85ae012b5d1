//! `unclip bench --unet-step DIR`: one decoder UNet call natively on our WebGPU and CPU backends and in PyTorch
//! (bench/torch_unet_step.py; CUDA when there is a GPU) on the same weights and inputs. DIR is what
//! bench/onnx/export_unet.py writes (inputs.bin/json, the diffusers folder) plus `unet.gguf`, the same weights
//! converted by examples/convert_component.rs (bench/browser_unet_step.mjs makes both). Reports each side's
//! time, its achieved FLOP/s (PyTorch's FLOP count of the call) and, on the device PyTorch ran on, the share of
//! the f32 peak PyTorch measures there with large matmuls; writes the `native-unet-step` section.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use unclip::backend::cpu::Cpu;
use unclip::backend::webgpu::WebGpu;
use unclip::gguf::GgufFile;
use unclip::unet_step::{time_on, Call};
use unclip::{Error, Result};

use super::bench::{python, write_section};

/// A whole number inputs.json must hold at `v`.
fn count(v: &Value, what: &str) -> Result<usize> {
    v.as_u64().map(|n| n as usize).ok_or_else(|| {
        Error::Settings(format!("inputs.json has no whole number `{what}`; re-run bench/onnx/export_unet.py"))
    })
}

/// The named f32 array of inputs.bin, laid out as inputs.json says.
fn array(layout: &Value, blob: &[u8], name: &str) -> Result<Vec<f32>> {
    let t = layout["tensors"].as_array().and_then(|ts| ts.iter().find(|t| t["name"] == name)).ok_or_else(|| {
        Error::Settings(format!("inputs.json has no tensor `{name}`; re-run bench/onnx/export_unet.py"))
    })?;
    let (offset, bytes) = (count(&t["offset"], "offset")?, count(&t["bytes"], "bytes")?);
    let raw = blob.get(offset..offset + bytes).ok_or_else(|| {
        Error::Settings(format!("inputs.bin is shorter than inputs.json says (`{name}` at {offset}+{bytes})"))
    })?;
    Ok(raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

fn median(xs: &[f64]) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

/// PyTorch's run of the same call: {device, torch, ms, flops, peak_flops, max_diff_expected}.
fn torch_peer(dir: &Path, runs: usize) -> Result<Value> {
    let out = Command::new(python())
        .args(["bench/torch_unet_step.py", &dir.display().to_string(), "--runs", &runs.to_string()])
        .output()
        .map_err(|e| Error::Settings(format!("could not start {}: {e}", python())))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Settings(format!(
            "bench/torch_unet_step.py failed ({}); it needs PyTorch and diffusers (./build.sh bench makes .venv)",
            err.lines().last().unwrap_or("no output")
        )));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .map_err(|e| Error::Settings(format!("bench/torch_unet_step.py printed no JSON: {e}")))
}

pub fn unet_step(dir: &Path, runs: usize, out: &Path) -> Result<()> {
    let read = |name: &str| {
        std::fs::read(dir.join(name)).map_err(|e| {
            Error::Settings(format!(
                "{}: {e}; make it with `node bench/browser_unet_step.mjs --export` (or bench/onnx/export_unet.py \
                 and examples/convert_component.rs)",
                dir.join(name).display()
            ))
        })
    };
    let layout: Value = serde_json::from_slice(&read("inputs.json")?)
        .map_err(|e| Error::Settings(format!("{}/inputs.json is not JSON: {e}", dir.display())))?;
    let blob = read("inputs.bin")?;
    let file = GgufFile::from_bytes(read("unet.gguf")?)?;
    let call = Call {
        sample: array(&layout, &blob, "sample")?,
        timestep: count(&layout["timestep"], "timestep")?,
        encoder_hidden_states: array(&layout, &blob, "encoder_hidden_states")?,
        class_labels: array(&layout, &blob, "class_labels")?,
        mask: array(&layout, &blob, "attention_mask")?.iter().map(|&m| m != 0.0).collect(),
    };
    let expected = array(&layout, &blob, "expected")?;

    eprintln!("PyTorch …");
    let peer = torch_peer(dir, runs)?;
    let peer_ms: Vec<f64> =
        peer["ms"].as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default();
    let (flops, peak) = (peer["flops"].as_f64().unwrap_or(0.0), peer["peak_flops"].as_f64().unwrap_or(0.0));
    let device = peer["device"].as_str().unwrap_or("?").to_string();
    let on_cuda = !device.starts_with("CPU");
    eprintln!("our CPU backend …");
    let (cpu_ms, cpu_out) = pollster::block_on(time_on(Cpu, &file, &call, runs as u32))?;
    let gpu = pollster::block_on(WebGpu::new())?;
    let adapter = gpu.adapter().clone();
    eprintln!("our WebGPU backend on {} …", adapter.name);
    let (gpu_ms, gpu_out) = pollster::block_on(time_on(gpu, &file, &call, runs as u32))?;
    eprintln!("where the WebGPU time goes …");
    let profiled = pollster::block_on(WebGpu::new())?.with_profiling()?;
    pollster::block_on(time_on(profiled.clone(), &file, &call, 1))?; // a warm-up call and one more
    let profile = profiled.profile();
    let profile_total: f64 = profile.iter().map(|r| r.2).sum();
    let profile_rows: Vec<String> = profile
        .iter()
        .take(8)
        .map(|(kernel, n, ms)| {
            format!("| `{kernel}` | {} | {:.1} | {:.0}% |", n / 2, ms / 2.0, 100.0 * ms / profile_total)
        })
        .collect();

    let torch_median = median(&peer_ms);
    // the share of the peak is given where a row ran on the device the peak was measured on
    let row = |name: &str, ms: f64, same_device: bool, diff: f64| {
        let rate = flops / (ms / 1000.0);
        let share = if same_device && peak > 0.0 { format!("{:.1}%", 100.0 * rate / peak) } else { "—".into() };
        format!("| {name} | {ms:.1} | {:.2} | {share} | **{:.2}×** | {diff:.1e} |", rate / 1e9, ms / torch_median)
    };
    let c = &layout["config"];
    let md = format!(
        "### Native, one decoder UNet step: ours vs PyTorch ({device})\n\n\
         The emoji decoder of `bench/browser_unet_step.mjs` (preset `{}`: block_out_channels {}, random weights, seed {}), \
         one guided call, same f32 weights and inputs on every side; {:.2} GFLOP per call (PyTorch's FlopCounterMode, \
         2 per multiply-add). Median of {runs} runs after a warm-up; a run = upload the inputs, one call, read the \
         output back (PyTorch: one call and a device synchronisation). The peak is this run's best f32 matmul in \
         PyTorch on {device} (TF32 off): {:.1} GFLOP/s; a library that runs a 3 × 3 conv as Winograd does fewer \
         multiplications than counted, so its share can pass 100%.\n\n\
         | implementation | ms | GFLOP/s | of the peak | / PyTorch | max abs diff vs PyTorch's output |\n\
         |---|---|---|---|---|---|\n{}\n{}\n{}\n\n\
         Where the WebGPU time goes (a separate profiled pass: every dispatch submitted and waited for on its own, \
         {:.0} ms per call in all; the 8 slowest kernels, per call):\n\n\
         | kernel (WGSL file, entry, override constants) | dispatches | ms | share |\n|---|---|---|---|\n{}\n\n\
         - Every run (ms): WebGPU {}; CPU {}; PyTorch {}.\n\
         - Reproduce: `./build.sh bench`, or, once bench/browser_unet_step.mjs has exported the model, \
         `./target/release/unclip bench --unet-step target/unet-step/{} --runs {runs}`.\n",
        layout["preset"].as_str().unwrap_or("?"),
        c["block_out_channels"],
        layout["seed"],
        flops / 1e9,
        peak / 1e9,
        row(
            &format!("ours, WebGPU on {} ({}, {})", adapter.name, adapter.backend, adapter.device_type),
            median(&gpu_ms),
            on_cuda != adapter.software,
            max_abs_diff(&gpu_out, &expected) as f64
        ),
        row("ours, CPU backend", median(&cpu_ms), !on_cuda, max_abs_diff(&cpu_out, &expected) as f64),
        row(
            &format!("PyTorch {}", peer["torch"].as_str().unwrap_or("?")),
            torch_median,
            true,
            peer["max_diff_expected"].as_f64().unwrap_or(f64::NAN)
        ),
        profile_total / 2.0,
        profile_rows.join("\n"),
        gpu_ms.iter().map(|m| format!("{m:.0}")).collect::<Vec<_>>().join(", "),
        cpu_ms.iter().map(|m| format!("{m:.0}")).collect::<Vec<_>>().join(", "),
        peer_ms.iter().map(|m| format!("{m:.0}")).collect::<Vec<_>>().join(", "),
        layout["preset"].as_str().unwrap_or("full"),
    );
    println!("{md}");
    write_section(out, "native-unet-step", &md)
}
