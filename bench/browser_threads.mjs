// A whole image on the page's CPU path at 1, 2, … threads, in headless Chromium on a cross-origin
// isolated page: the bundled model, diffusers' default steps, the time the worker reports for the generation
// (model already loaded), best of --runs after a warm-up generation, every thread count back to back in one run.
// Writes the `browser-threads` section of docs/benchmarks.md. Run after `./build.sh build`:
//     node bench/browser_threads.mjs [--threads 1,2] [--runs 3]
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { startServer } from "../tests/browser/server.mjs";
import { launch, waitState } from "../tests/browser/browser.mjs";
import { writeSection } from "./sections.mjs";

const ROOT = new URL("../", import.meta.url).pathname;
const cores = availableParallelism();
const { values: opt } = parseArgs({
  options: {
    threads: { type: "string", default: [...new Set([1, 2, cores])].filter((n) => n <= Math.max(2, cores)).join(",") },
    runs: { type: "string", default: "3" },
  },
});
const THREADS = opt.threads.split(",").map(Number);
const RUNS = Number(opt.runs);
// diffusers' defaults, given explicitly: the page would otherwise use the model's recommended settings (a prior
// best-of 2 doubles the prior's batch), and the workload would move with each model release
const QUERY = "prompt=a%20happy%20dog&seed=0&backend=cpu&prior_steps=25&decoder_steps=25&sr_steps=7&prior_guidance=4&decoder_guidance=8&prior_best_of=1";

const server = await startServer(`${ROOT}dist`);
const browser = await launch();
const results = [];
for (const threads of THREADS) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  await page.goto(`${server.url}?${QUERY}&threads=${threads}&autorun=1`);
  const ms = [];
  const stages = [];
  for (let run = 0; run <= RUNS; run++) {
    if (run > 0) await page.click("#generate");
    await page.waitForFunction(() => document.body.dataset.state === "running" || document.body.dataset.state === "error", null, { timeout: 300_000 }).catch(() => {});
    const state = await waitState(page, ["done", "error"], 600_000);
    if (state !== "done") throw new Error(await page.textContent("#error"));
    if (run > 0) ms.push(Number(await page.evaluate(() => document.body.dataset.ms))); // run 0 warms up
    if (run > 0) stages.push(await page.$$eval(".stage", (els) => els.filter((e) => e.querySelector("small")?.textContent).map((e) => `${e.dataset.stage} ${e.querySelector("small").textContent.replace("done in ", "")}`).join(", ")));
  }
  const used = await page.evaluate(() => ({ threads: Number(document.body.dataset.threads), isolated: self.crossOriginIsolated,
    line: document.getElementById("backend-status").textContent, chrome: (navigator.userAgent.match(/Chrome\/([\d.]+)/) ?? [])[1] }));
  if (used.threads !== threads) throw new Error(`asked for ${threads} threads, the page used ${used.threads}: ${used.line}`);
  const best = Math.min(...ms);
  const stagesOfBest = stages[ms.indexOf(best)];
  results.push({ threads, ms, best, stages: stagesOfBest, ...used });
  console.log(`${threads} thread(s): best ${best} ms of ${ms.join(", ")} (${stagesOfBest}) — ${used.line}`);
  await context.close();
}
await browser.close();
await server.close();

const one = results.find((r) => r.threads === 1);
const rows = results.map((r) => `| ${r.threads} | ${(r.best / 1000).toFixed(2)} | ${one ? `**${(r.best / one.best).toFixed(2)}×**` : "–"} | ${r.stages} | ${r.ms.join(", ")} |`);
const body = `### Browser, whole image on the CPU path at 1, 2, … threads (headless Chromium ${results[0].chrome})

The bundled model, "a happy dog", seed 0, diffusers' defaults (25 prior, 25 decoder, 7 super-res steps, guidance 4 and 8, prior best-of 1; set in the URL), the CPU
backend; time = the whole generation as the worker reports it (model loaded; best of ${RUNS} after a warm-up
generation), each thread count in a fresh page of a cross-origin isolated site (COOP/COEP from the server), back
to back in one run on this ${cores}-core machine. 1 thread is the single-threaded module (\`pkg/\`), N > 1 the
shared-memory module (\`pkg-threads/\`) with a rayon pool of N Web Workers.

| threads | whole image (s) | time / 1 thread | stages of the best run | every run (ms) |
|---|---|---|---|---|
${rows.join("\n")}

- Reproduce: \`./build.sh build && node bench/browser_threads.mjs --threads ${opt.threads} --runs ${RUNS}\`.
`;
console.log(body);
writeSection(`${ROOT}docs/benchmarks.md`, "browser-threads", body);
