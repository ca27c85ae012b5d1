//! `unclip bench`: the whole pipeline natively, and diffusers/PyTorch on the same checkpoint in the
//! same run (bench/diffusers_bench.py, with the project's venv when there is one). Writes per-stage
//! milliseconds, the ratio ours / PyTorch and peak memory into a section of docs/benchmarks.md.
//! With `--backends`, the same pipeline on our WebGPU backend against our CPU backend instead.

use std::path::{Path, PathBuf};
use std::process::Command;

use unclip::backend::cpu::Cpu;
use unclip::backend::webgpu::WebGpu;
use unclip::backend::Backend;
use unclip::manifest::open_model_dir;
use unclip::pipeline::{Event, Flow, GenerateParams, Observer, Stage, UnCLIPPipeline};
use unclip::{Error, Result};

pub struct BenchArgs {
    pub model: PathBuf,
    pub diffusers: Option<PathBuf>,
    pub steps: [usize; 3],
    pub runs: usize,
    pub out: PathBuf,
}

#[derive(Default)]
struct StageTimes([f64; 4]);

impl<T> Observer<T> for StageTimes {
    async fn on_event(&mut self, event: Event<'_, T>) -> Flow {
        if let Event::StageEnd { stage, elapsed_ms } = event {
            let i = Stage::GENERATE.iter().position(|s| *s == stage).expect("a generation's stage");
            self.0[i] = elapsed_ms;
        }
        Flow::Continue
    }
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
}

pub(super) fn python() -> String {
    let venv = Path::new(".venv/bin/python");
    if venv.exists() {
        venv.display().to_string()
    } else {
        "python3".into()
    }
}

/// Runs the peer (its image goes to `npy`); Err with the reason when PyTorch/diffusers are missing.
fn run_peer(diffusers: &Path, a: &BenchArgs, npy: &Path) -> std::result::Result<serde_json::Value, String> {
    let steps = format!("{},{},{}", a.steps[0], a.steps[1], a.steps[2]);
    let out = Command::new(python())
        .args([
            "bench/diffusers_bench.py",
            &diffusers.display().to_string(),
            "--steps",
            &steps,
            "--runs",
            &a.runs.to_string(),
        ])
        .args(["--out-npy", &npy.display().to_string()])
        .output()
        .map_err(|e| format!("could not start {}: {e}", python()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("the PyTorch peer failed: {}", err.lines().last().unwrap_or("no output")));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .map_err(|e| format!("the PyTorch peer printed no JSON: {e}"))
}

/// The best of `a.runs` timed runs (after a warm-up) of the whole pipeline on `be`: (total ms, per stage,
/// the image, the model's name).
fn time_pipeline<B: Backend>(be: &B, a: &BenchArgs) -> Result<(f64, StageTimes, Vec<f32>, String)> {
    let (manifest, open) = open_model_dir(&a.model)?;
    let name = manifest.name.clone();
    let pipeline = UnCLIPPipeline::load(be, manifest, open)?;
    let params = GenerateParams {
        prompt: "horse".into(),
        prior_steps: a.steps[0],
        decoder_steps: a.steps[1],
        sr_steps: a.steps[2],
        ..Default::default()
    };
    let mut best: Option<(f64, StageTimes)> = None;
    let mut image = Vec::new();
    for run in 0..=a.runs {
        let mut times = StageTimes::default();
        let start = unclip::time::now_ms();
        image = pollster::block_on(pipeline.generate(&params, &mut times))?.image;
        let total = unclip::time::now_ms() - start;
        eprintln!("{} run {run}: {total:.0} ms{}", be.name(), if run == 0 { " (warm-up)" } else { "" });
        if run > 0 && best.as_ref().is_none_or(|(t, _)| total < *t) {
            best = Some((total, times));
        }
    }
    let (total, times) = best.expect("at least one timed run");
    Ok((total, times, image, name))
}

/// Our WebGPU backend (on whatever adapter wgpu picks: lavapipe on a machine without a GPU) against our
/// CPU backend, same model and settings, back to back.
pub fn backends(a: BenchArgs) -> Result<()> {
    let gpu = pollster::block_on(WebGpu::new())?;
    let adapter = gpu.adapter().clone();
    let (gpu_total, gpu_times, gpu_image, name) = time_pipeline(&gpu, &a)?;
    let (cpu_total, cpu_times, cpu_image, _) = time_pipeline(&Cpu, &a)?;
    let diffs: Vec<f32> = gpu_image.iter().zip(&cpu_image).map(|(x, y)| (x - y).abs()).collect();
    let mean = diffs.iter().sum::<f32>() / diffs.len().max(1) as f32;
    let off = diffs.iter().filter(|&&d| d > 0.05).count();
    let mut md = format!(
        "### {name}, {}/{}/{} steps: WebGPU on {} ({}, {}) vs our CPU backend (best of {})\n\n\
         | stage | WebGPU (ms) | CPU (ms) | WebGPU / CPU |\n|---|---|---|---|\n",
        a.steps[0], a.steps[1], a.steps[2], adapter.name, adapter.backend, adapter.device_type, a.runs
    );
    let row = |key: &str, g: f64, c: f64| format!("| {key} | {g:.1} | {c:.1} | **{:.2}×** |\n", g / c);
    for (i, key) in Stage::GENERATE.map(Stage::name).iter().enumerate() {
        md += &row(key, gpu_times.0[i], cpu_times.0[i]);
    }
    md += &row("**total**", gpu_total, cpu_total);
    md += &format!(
        "\nSame seed, the two images: mean abs difference {mean:.1e}, {off} of {} values off by more than 0.05 \
         (unCLIP's first step divides ε̂ by √ᾱ₉₉₉ ≈ 5e-5, so a value whose x̂0 is near 0 can clip to the other side).",
        diffs.len()
    );
    println!("{md}");
    write_section(&a.out, &format!("backends-{name}"), &md)
}

pub fn bench(a: BenchArgs) -> Result<()> {
    let (total, times, image, name) = time_pipeline(&Cpu, &a)?;
    let rss = peak_rss_mb();
    let npy = std::env::temp_dir().join(format!("unclip-bench-peer-{}.npy", std::process::id()));
    let peer = match &a.diffusers {
        Some(d) => run_peer(d, &a, &npy),
        None => Err("no --diffusers folder given".into()),
    };
    // the same seed must give the same image as diffusers (the torch-compatible RNG)
    let agreement = std::fs::read(&npy).ok().and_then(|b| {
        let _ = std::fs::remove_file(&npy);
        let header = u16::from_le_bytes([*b.get(8)?, *b.get(9)?]) as usize;
        let theirs: Vec<f32> =
            b.get(10 + header..)?.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        (theirs.len() == image.len())
            .then(|| image.iter().zip(&theirs).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max))
    });

    let mut md = format!(
        "### {name}, {}/{}/{} steps, CPU (best of {})\n\n| stage | ours (ms) | PyTorch (ms) | ours / PyTorch |\n|---|---|---|---|\n",
        a.steps[0], a.steps[1], a.steps[2], a.runs
    );
    let cell = |ours: f64, key: &str| match &peer {
        Ok(p) => match p[key].as_f64() {
            Some(theirs) => format!("{ours:.1} | {theirs:.1} | **{:.2}×**", ours / theirs),
            None => format!("{ours:.1} | – | –"),
        },
        Err(_) => format!("{ours:.1} | – | –"),
    };
    for (i, key) in Stage::GENERATE.map(Stage::name).iter().enumerate() {
        md += &format!("| {key} | {} |\n", cell(times.0[i], key));
    }
    md += &format!("| **total** | {} |\n", cell(total, "total"));
    md += &format!(
        "\nPeak resident memory: ours {}, PyTorch {}.",
        rss.map_or("n/a".into(), |m| format!("{m:.0} MB")),
        match &peer {
            Ok(p) => format!(
                "{:.0} MB (torch {})",
                p["peak_rss_mb"].as_f64().unwrap_or(0.0),
                p["torch"].as_str().unwrap_or("?")
            ),
            Err(why) => format!("not measured: {why}"),
        }
    );
    md += &match agreement {
        Some(e) => format!(" Same seed, same image: max abs difference ours vs diffusers {e:.1e}."),
        None => " The images were not compared (no peer image).".into(),
    };
    println!("{md}");
    write_section(&a.out, &format!("cpu-{name}"), &md)
}

/// Replaces (or appends) the section between `<!-- bench:KEY -->` markers.
pub fn write_section(path: &Path, key: &str, body: &str) -> Result<()> {
    let (open, close) = (format!("<!-- bench:{key} -->"), format!("<!-- /bench:{key} -->"));
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".into());
    let section = format!("{open}\n{body}\n{close}");
    let new = match (old.find(&open), old.find(&close)) {
        (Some(s), Some(e)) if e > s => format!("{}{section}{}", &old[..s], &old[e + close.len()..]),
        _ => format!("{}\n{section}\n", old.trim_end()),
    };
    crate::files::write_bytes(path, new.as_bytes())
}

/// A state-dict key list: one "name<TAB>(d0, d1, …)" per line.
pub fn read_key_list(path: &Path) -> Result<Vec<(String, Vec<usize>)>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (name, dims) = line
                .split_once('\t')
                .ok_or_else(|| Error::Settings(format!("{}: `{line}` is not `name<TAB>(shape)`", path.display())))?;
            let shape = dims
                .trim_matches(|c| c == '(' || c == ')' || c == ' ')
                .split(',')
                .filter_map(|d| d.trim().parse().ok());
            Ok((name.to_string(), shape.collect()))
        })
        .collect()
}

/// Weight memory of a model given as state-dict key lists ("name<TAB>(d0, d1, …)" per line, one file
/// per component, e.g. Karlo's in bench/karlo/), under the converter's storage rules; writes a section
/// of docs/benchmarks.md. Activations are not counted.
pub fn weight_memory(keys_dir: &Path, out: &Path) -> Result<()> {
    use unclip::convert::stored_bytes;
    use unclip::gguf::GgmlType;
    let mut files: Vec<PathBuf> = std::fs::read_dir(keys_dir)
        .map_err(|e| Error::io(keys_dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with("_state_dict_keys.txt"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Settings(format!("{} has no *_state_dict_keys.txt files", keys_dir.display())));
    }
    let mut md = String::from("### Weight memory from state-dict key lists (converter's storage rules)\n\n| component | params | f32 | q8_0 | q4_0 |\n|---|---|---|---|---|\n");
    let mb = |b: u64| format!("{:.0} MB", b as f64 / (1 << 20) as f64);
    for path in files {
        let (mut params, mut bytes) = (0u64, [0u64; 3]);
        for (name, shape) in read_key_list(&path)? {
            params += shape.iter().product::<usize>() as u64;
            for (i, ty) in [GgmlType::F32, GgmlType::Q8_0, GgmlType::Q4_0].into_iter().enumerate() {
                bytes[i] += stored_bytes(&name, &shape, ty);
            }
        }
        let component =
            path.file_name().map(|f| f.to_string_lossy().replace("_state_dict_keys.txt", "")).unwrap_or_default();
        md += &format!("| {component} | {params} | {} | {} | {} |\n", mb(bytes[0]), mb(bytes[1]), mb(bytes[2]));
    }
    println!("{md}");
    write_section(
        out,
        &format!("weights-{}", keys_dir.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default()),
        &md,
    )
}
