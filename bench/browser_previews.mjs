// What reading step previews back costs (docs/architecture.md, "Step previews"): one generation with every preview
// at every step, with the generate page's x_t and x̂0, and with none, back to back in one worker, on the CPU path
// (the single-threaded wasm module) and on WebGPU (SwiftShader in headless Chromium), in turn within each round
// after a warm-up run, best of --runs: the whole run's time (the worker's `done` ms), and each stage's time (its
// stage_end) over its steps.
// Writes the `browser-previews` section of docs/benchmarks.md. Run after `./build.sh build`:
//     node bench/browser_previews.mjs [--model tiny] [--steps 25,25,7] [--runs 3] [--backends cpu,webgpu]
import { parseArgs } from "node:util";
import { startServer } from "../tests/browser/server.mjs";
import { launch } from "../tests/browser/browser.mjs";
import { writeSection } from "./sections.mjs";

const ROOT = new URL("../", import.meta.url).pathname;
const { values: opt } = parseArgs({
  options: {
    model: { type: "string", default: "tiny" },
    steps: { type: "string", default: "25,25,7" },
    runs: { type: "string", default: "3" },
    backends: { type: "string", default: "cpu,webgpu" },
  },
});
const [prior, decoder, sr] = opt.steps.split(",").map(Number);
const RUNS = Number(opt.runs);
const PARAMS = { prompt: "a happy dog", seed: 0, prior_steps: prior, decoder_steps: decoder, sr_steps: sr, prior_guidance: 4, decoder_guidance: 8, prior_best_of: 1 };
const MODES = [
  ["all", { kinds: ["xt", "x0", "eps", "embedding"], every: 1 }],
  ["page", { kinds: ["xt", "x0"], every: 1 }],
  ["none", { kinds: [], every: 0 }],
];
const STAGES = ["prior", "decoder", "super_res"];

const server = await startServer(`${ROOT}dist`);
const browser = await launch();
const results = [];
for (const backend of opt.backends.split(",")) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  await page.goto(`${server.url}js/protocol.js`); // a same-origin document to start the app's worker from
  const out = await page.evaluate(async ({ backend, model, params, modes, runs }) => {
    const worker = new Worker(new URL("/js/worker.js?threads=1", location.href), { type: "module" });
    let handle = null;
    worker.onmessage = ({ data }) => handle?.(data);
    const until = (type, onOther = () => {}) => new Promise((resolve, reject) => {
      handle = (m) => {
        if (m.type === "error") reject(new Error(m.message));
        else if (m.type === type) resolve(m);
        else onOther(m);
      };
    });
    const ready = until("ready");
    worker.postMessage({ type: "load", source: { kind: "url", base: `/models/${model}/` }, backend });
    const info = (await ready).info;
    const run = async (previews) => {
      const ms = {};
      let readBack = 0;
      const done = until("done", (m) => {
        if (m.type === "stage_end") ms[m.stage] = m.ms;
        if (m.type === "step") readBack += ["xt", "x0", "eps", "eps_uncond", "eps_cond", "embedding"].filter((k) => m[k]).length;
      });
      worker.postMessage({ type: "generate", params, previews });
      const d = await done;
      return { ms, readBack, total: d.ms, png: Array.from(d.png).join(",") };
    };
    await run(modes[0][1]); // warm-up
    const rounds = [];
    for (let r = 0; r < runs; r++) for (const [name, previews] of modes) rounds.push({ name, ...(await run(previews)) });
    worker.terminate();
    return { rounds, adapter: info.adapter, backend: info.backend, chrome: (navigator.userAgent.match(/Chrome\/([\d.]+)/) ?? [])[1] };
  }, { backend, model: opt.model, params: PARAMS, modes: MODES, runs: RUNS });
  if (out.backend !== backend) throw new Error(`asked for ${backend}, the worker runs ${out.backend}`);
  if (new Set(out.rounds.map((r) => r.png)).size !== 1) throw new Error(`${backend}: the previews changed the picture`);
  for (const [name] of MODES) {
    const rounds = out.rounds.filter((r) => r.name === name);
    const perStep = Object.fromEntries(STAGES.map((s) => [s, Math.min(...rounds.map((r) => r.ms[s] / PARAMS[`${s === "super_res" ? "sr" : s}_steps`]))]));
    const total = Math.min(...rounds.map((r) => r.total));
    results.push({ backend, name, perStep, total, readBack: rounds[0].readBack, every: rounds.map((r) => Math.round(r.total)) });
    console.log(`${backend} ${name}: ${STAGES.map((s) => `${s} ${perStep[s].toFixed(1)} ms/step`).join(", ")}; whole run best ${total.toFixed(0)} ms (${rounds[0].readBack} read-backs)`);
  }
  results.adapter ??= out.adapter;
  results.chrome = out.chrome;
  await context.close();
}
await browser.close();
await server.close();

const of = (backend, name) => results.find((r) => r.backend === backend && r.name === name);
const rows = results.map((r) => {
  const all = of(r.backend, "all");
  const ratio = (s) => `${r.perStep[s].toFixed(1)} (${(r.perStep[s] / all.perStep[s]).toFixed(2)}×)`;
  return `| ${r.backend === "cpu" ? "wasm CPU, 1 thread" : "WebGPU"} | ${r.name} | ${r.readBack} | ${STAGES.map(ratio).join(" | ")} | ${(r.total / 1000).toFixed(2)} (**${(r.total / all.total).toFixed(2)}×**) | ${r.every.join(", ")} |`;
});
const adapter = results.adapter ? `${results.adapter.name || "unnamed"} (${results.adapter.backend}, ${results.adapter.device_type}${results.adapter.software ? ", software" : ""})` : "–";
const body = `### Browser, step previews on demand: every preview vs the page's vs none (headless Chromium ${results.chrome})

The ${opt.model === "tiny" ? "tiny random test model (\`tests/fixtures/tiny-unclip\`)" : `\`${opt.model}\` model`}, "a happy dog", seed 0, ${prior}/${decoder}/${sr} steps, guidance 4 and 8, in the app's worker (\`www/js/worker.js\`) on one thread or on WebGPU; the same run asking for \`previews\` all (x_t, x̂0, ε̂ and its two parts, the prior's embedding: what every run read back before, which then also encoded the prompt a second time, not counted here), the generate page's (x_t, x̂0) and none; the three in turn in each of ${RUNS} round(s) after a warm-up, best of ${RUNS}. The whole run (text to PNG) is the time to compare; in brackets, each time over the same one with every preview. Per step: the stage's time over its steps. On WebGPU a stage without read-backs only queues its work, which the run's end then waits for, so its per-step time there is the time to encode and submit a step, not to run it. The PNG is byte-identical across all of them (checked).

| backend | previews | read-backs | prior (ms/step) | decoder (ms/step) | super-res (ms/step) | whole run (s) | every run (ms) |
|---|---|---|---|---|---|---|---|
${rows.join("\n")}

- WebGPU adapter: ${adapter}: headless Chromium here only has SwiftShader, a CPU implementation of Vulkan, where a sync costs little beside the work; no real GPU measured.
- Read-backs: the step tensors each run copied to the host (an RGBA image or a float array each).
- Reproduce: \`./build.sh build && node bench/browser_previews.mjs --model ${opt.model} --steps ${opt.steps} --runs ${RUNS} --backends ${opt.backends}\`.
`;
writeSection(`${ROOT}docs/benchmarks.md`, "browser-previews", body);
console.log(body);
