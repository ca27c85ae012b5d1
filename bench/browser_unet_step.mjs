// One decoder UNet step in headless Chromium, ours vs onnxruntime-web on the same weights and inputs (issue #4):
// our WebGPU backend vs ORT's WebGPU execution provider, our wasm CPU path vs ORT's wasm provider at 1, 2, … threads
// (ours: the shared-memory module's rayon pool; ORT: numThreads), in a cross-origin isolated page.
// Writes the `browser-unet-step` section of docs/benchmarks.md as ratios ours / ORT measured in the same run.
//
//   (cd bench && npm ci)          # onnxruntime-web, only for this benchmark (bench/package.json)
//   FEATURES=bench ./build.sh build   # the wasm modules in dist/pkg*, with the benchmark hooks
//   node bench/browser_unet_step.mjs [--preset full|cpu] [--runs 5] [--gpu-runs 3] [--threads 1,2] [--pkg dist/pkg] [--export]
//
// The model (bench/onnx/export_unet.py: the emoji decoder of train/models.py, random weights, seed 0) is exported
// once into target/unet-step/<preset>/ (diffusers folder, ONNX, fixed inputs + PyTorch's output) and converted
// to GGUF f32 by examples/convert_component.rs; `--export` redoes both.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { launch } from "../tests/browser/browser.mjs";
import { startServer } from "../tests/browser/server.mjs";
import { writeSection } from "./sections.mjs";

const ROOT = new URL("../", import.meta.url).pathname;
const { values: opt } = parseArgs({
  options: {
    preset: { type: "string", default: "full" },
    runs: { type: "string", default: "5" },
    "gpu-runs": { type: "string", default: "3" },
    threads: { type: "string", default: [...new Set([1, 2, availableParallelism()])].filter((n) => n <= availableParallelism()).join(",") },
    pkg: { type: "string", default: "dist/pkg" },
    export: { type: "boolean", default: false },
    only: { type: "string" }, // comma-separated subset, for trying things out (no section is written)
  },
});
const MODEL = `target/unet-step/${opt.preset}`;
const run = (cmd, args) => execFileSync(cmd, args, { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] });

// ---- the model, exported once
if (opt.export || !existsSync(`${ROOT}${MODEL}/unet.gguf`)) {
  const py = existsSync(`${ROOT}.venv/bin/python`) ? ".venv/bin/python" : "python3";
  run(py, ["bench/onnx/export_unet.py", MODEL, "--preset", opt.preset]);
  run("cargo", ["run", "--quiet", "--release", "--example", "convert_component", "--", `${MODEL}/unet`, `${MODEL}/unet.gguf`]);
}
for (const [path, hint] of [
  [`${opt.pkg}/unclip.js`, "run ./build.sh build first"],
  [`${opt.pkg}-threads/unclip.js`, "run ./build.sh build first"],
  ["bench/node_modules/onnxruntime-web/dist/ort.webgpu.min.mjs", "run (cd bench && npm ci) first"],
]) {
  if (!existsSync(`${ROOT}${path}`)) throw new Error(`${path} is missing: ${hint}`);
}
if (!readFileSync(`${ROOT}${opt.pkg}/unclip.js`, "utf8").includes("timeUnetStep")) {
  throw new Error(`${opt.pkg}/unclip.js has no timeUnetStep: rebuild it with the benchmark hooks (FEATURES=bench ./build.sh build)`);
}
const info = JSON.parse(readFileSync(`${ROOT}${MODEL}/inputs.json`, "utf8"));

// ---- a static server over the repository
const server = await startServer(ROOT);
const url = `${server.url}bench/unet_step.html?model=${MODEL}&pkg=${opt.pkg}&pkg_threads=${opt.pkg}-threads`;
const THREADS = opt.threads.split(",").map(Number);

// ---- one fresh page per measurement, CPU pair first, then the WebGPU pair
const browser = await launch();
const results = {};
// a measurement is "implementation@threads"
const order = [...THREADS.flatMap((n) => [`ours-cpu@${n}`, `ort-wasm@${n}`]), "ours-webgpu@1", "ort-webgpu@1"]
  .filter((w) => !opt.only || opt.only.split(",").includes(w.split("@")[0]));
for (const key of order) {
  const [which, threads] = [key.split("@")[0], Number(key.split("@")[1])];
  const page = await browser.newPage();
  page.on("console", (m) => m.type() === "error" && console.error(`[${which}] ${m.text()}`));
  page.on("pageerror", (e) => console.error(`[${which}] page error: ${e.message}`));
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.ready === "1");
  const runs = Number(which.endsWith("webgpu") ? opt["gpu-runs"] : opt.runs);
  const r = await page.evaluate(([w, n, t]) => window.bench(w, n, t), [which, runs, threads]);
  r.median = median(r.ms);
  results[key] = r;
  console.log(`${key}: median ${r.median.toFixed(1)} ms of ${r.ms.map((m) => m.toFixed(0)).join(", ")}; ` +
    `max |Δ| vs PyTorch ${r.maxDiffTorch.toExponential(2)}; whole measurement ${(r.totalMs / 1000).toFixed(1)} s`);
  await page.close();
}
await browser.close();
await server.close();

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
function maxAbsDiff(a, b) {
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}
if (opt.only) process.exit(0);

// ---- the section
const pairs = [["WebGPU", "ours-webgpu@1", "ort-webgpu@1"],
  ...THREADS.map((n) => [`wasm CPU, ${n} thread${n > 1 ? "s" : ""}`, `ours-cpu@${n}`, `ort-wasm@${n}`])];
const rows = pairs.map(([name, o, t]) => {
  const [a, b] = [results[o], results[t]];
  const diff = maxAbsDiff(a.output, b.output);
  if (!(diff < 1e-2)) throw new Error(`${o} and ${t} disagree: max abs diff ${diff}`);
  return `| ${name} | ${a.median.toFixed(1)} | ${b.median.toFixed(1)} | **${(a.median / b.median).toFixed(2)}×** | ${diff.toExponential(1)} |`;
});
const adapter = results["ort-webgpu@1"].adapter ?? {};
const ours = results["ours-webgpu@1"].detail ?? {};
const ortWasm = results[`ort-wasm@${THREADS.at(-1)}`].detail;
const scaling = THREADS.map((n) => `${n}: ours ${(results[`ours-cpu@${n}`].median / results["ours-cpu@1"].median).toFixed(2)}×, ORT ${(results[`ort-wasm@${n}`].median / results["ort-wasm@1"].median).toFixed(2)}×`).join("; ");
const chrome = (results["ours-cpu@1"].userAgent.match(/Chrome\/([\d.]+)/) ?? [])[1] ?? "?";
const c = info.config;
const body = `### Browser, one decoder UNet step: ours vs onnxruntime-web (headless Chromium ${chrome})

The emoji decoder (\`train/models.py\` preset \`${info.preset}\`: block_out_channels ${JSON.stringify(c.block_out_channels)}, ` +
`${c.layers_per_block} layers per block, cross-attention ${c.cross_attention_dim}; ${(info.params / 1e6).toFixed(2)} M parameters, random ` +
`weights, seed ${info.seed}), one guided call: sample 2×3×32×32, timestep ${info.timestep}, encoder_hidden_states ` +
`2×${info.tensors.find((t) => t.name === "encoder_hidden_states").shape.slice(1).join("×")}, class_labels ` +
`2×${info.tensors.find((t) => t.name === "class_labels").shape[1]}, attention mask 2×${info.tensors.find((t) => t.name === "attention_mask").shape[1]}. ` +
`Same f32 weights on both sides (ours: GGUF f32 converted from the safetensors; theirs: ONNX opset ${info.onnx.opset}, ` +
`${info.onnx.exporter} exporter, torch ${info.onnx.torch}), same input arrays. A run = upload the inputs, one call, ` +
`read the output back; median of ${opt["gpu-runs"]} (WebGPU) and ${opt.runs} (wasm) runs after one warm-up call, ` +
`each implementation in a fresh page, back to back.

| providers | ours (ms) | onnxruntime-web ${ortWasm.version ?? ""} (ms) | ours / ORT | max abs diff ours vs ORT |
|---|---|---|---|---|
${rows.join("\n")}

- WebGPU adapter: ${[adapter.vendor, adapter.architecture, adapter.device, adapter.description].filter(Boolean).join(" / ") || "?"}` +
`${adapter.isFallbackAdapter ? " (fallback adapter)" : ""}; wgpu sees backend ${ours.backend ?? "?"}${ours.name ? ` \`${ours.name}\`` : ""}, ` +
`software: ${ours.software ?? "?"}. Headless Chromium here only has SwiftShader, a CPU implementation of Vulkan: the ` +
`WebGPU row measures kernel and dispatch design on a software GPU, not GPU throughput.
- wasm at N threads, each side's time over its own 1-thread time: ${scaling} (${availableParallelism()} cores on this machine). ` +
`ORT wasm: \`${ortWasm.bundle}\`, SIMD build, \`numThreads\` N (crossOriginIsolated ${ortWasm.crossOriginIsolated}); ours: wasm ` +
`simd128, 1 thread = the single-threaded module (\`pkg/\`), N > 1 = the shared-memory module (\`pkg-threads/\`) with a pool ` +
`of N Web Workers. Both run on the page's main thread.
- Every run (ms): ${order.map((w) => `${w} ${results[w].ms.map((m) => m.toFixed(0)).join(", ")}`).join("; ")}.
- Both against PyTorch's output on the same inputs (max abs diff): ` +
pairs.flatMap(([, o, t]) => [o, t]).map((w) => `${w} ${results[w].maxDiffTorch.toExponential(1)}`).join(", ") +
`; the ONNX file itself vs PyTorch in onnxruntime (CPU): ${info.onnx.onnxruntime_check.toExponential(1)}.
- Reproduce: \`(cd bench && npm ci) && FEATURES=bench ./build.sh build && node bench/browser_unet_step.mjs --preset ${info.preset} ` +
`--runs ${opt.runs} --gpu-runs ${opt["gpu-runs"]} --threads ${opt.threads}\`.
`;
console.log(body);
writeFileSync(`${ROOT}${MODEL}/results.json`, JSON.stringify(Object.fromEntries(order.map((k) => [k, { ...results[k], output: undefined }])), null, 1));
writeSection(`${ROOT}docs/benchmarks.md`, "browser-unet-step", body);
