//! `unclip bench --soak N`: N generations in one process (tiny settings), printing after each the resident memory
//! and the time as a JSON line, for bench/soak.mjs to put beside the browser's numbers in docs/soak.md. Memory that
//! grows after the first few runs is a leak.

use std::path::Path;

use unclip::backend::cpu::Cpu;
use unclip::manifest::open_model_dir;
use unclip::pipeline::{GenerateParams, Silent, UnCLIPPipeline};
use unclip::Result;

/// Resident set size in MiB, from /proc/self/statm (pages × page size).
fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
    pages * 4096.0 / (1024.0 * 1024.0)
}

pub fn soak(model: &Path, runs: usize) -> Result<()> {
    let (manifest, open) = open_model_dir(model)?;
    let pipeline = UnCLIPPipeline::load(&Cpu, manifest, open)?;
    for i in 0..runs {
        let params = GenerateParams {
            prompt: "horse".into(),
            seed: i as u64,
            prior_steps: 2,
            decoder_steps: 2,
            sr_steps: 2,
            ..Default::default()
        };
        let start = std::time::Instant::now();
        pollster::block_on(pipeline.generate(&params, &mut Silent))?;
        println!(
            "{}",
            serde_json::json!({"run": i + 1, "rss_mib": rss_mib(), "ms": start.elapsed().as_secs_f64() * 1000.0})
        );
    }
    Ok(())
}
