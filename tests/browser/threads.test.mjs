// Every core: the page is cross-origin isolated — by the server's COOP/COEP headers, or on a plain static
// host by the service worker after one reload — and then runs the CPU backend on the threaded wasm module with one
// thread per core; the threaded and single-threaded modules draw the same image; where isolation is impossible the
// page says why it uses one thread; ?threads=N overrides.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { launch, openPage, waitState, resultPixels } from "./browser.mjs";
import { startServer } from "./server.mjs";
import { ROOT } from "./setup.mjs";

// the bundled model (real conv and attention sizes), few steps, on the CPU backend
const RUN = "prompt=a%20red%20heart&seed=3&prior_steps=2&decoder_steps=3&sr_steps=2&backend=cpu";
// the tests that only load: the tiny model, which loads at once (the bundled one waits for the first Generate:
// docs/architecture.md, "The pages")
const LOAD = "model=tiny&backend=cpu";
const env = {};
before(async () => {
  env.isolating = await startServer(join(ROOT, "dist"));
  env.plain = await startServer(join(ROOT, "dist"), { isolate: false });
  env.browser = await launch();
});
after(async () => {
  await env.browser?.close();
  await env.isolating?.close();
  await env.plain?.close();
});

/// Opens `url`, generates, and returns what the page used and drew.
async function generate(context, url) {
  const page = await openPage(context, url);
  assert.equal(await waitState(page, ["done", "error"], 300_000), "done", await page.textContent("#error"));
  const out = await page.evaluate(() => ({
    isolated: self.crossOriginIsolated,
    threads: document.body.dataset.threads,
    cores: navigator.hardwareConcurrency,
    backendLine: document.getElementById("backend-status").textContent,
    warnings: document.getElementById("warning").textContent,
    ms: Number(document.body.dataset.ms),
  }));
  out.pixels = await resultPixels(page);
  out.page = page;
  return out;
}

test("served with COOP/COEP: isolated at once, one thread per core, and the same picture as one thread", async () => {
  const context = await env.browser.newContext();
  const many = await generate(context, `${env.isolating.url}?${RUN}&autorun=1`);
  assert.equal(many.isolated, true);
  const want = Math.min(many.cores, 8);
  assert.ok(want >= 2, `this test needs a machine with 2 or more cores (navigator.hardwareConcurrency = ${many.cores})`);
  assert.equal(many.threads, String(want), "one pool thread per core (capped at 8)");
  assert.match(many.backendLine, new RegExp(`Backend: cpu — .*; ${want} threads \\(shared-memory wasm\\)`));

  const one = await generate(context, `${env.isolating.url}?${RUN}&threads=1&autorun=1`);
  assert.equal(one.threads, "1");
  assert.match(one.backendLine, /; 1 thread: you asked for one \(\?threads=1\)/);
  let max = 0, sum = 0, off = 0;
  for (let i = 0; i < one.pixels.data.length; i++) {
    const d = Math.abs(one.pixels.data[i] - many.pixels.data[i]);
    max = Math.max(max, d); sum += d; off += d > 2;
  }
  const mean = sum / one.pixels.data.length;
  console.log(`threaded (${want}) vs single-threaded module: max abs pixel diff ${max}/255, mean ${mean.toFixed(3)}/255, ${off} of ${one.pixels.data.length} values off by more than 2/255`);
  // one GEMM part per thread: the gemm crate blocks k by the part's shape, so some sums round differently, and
  // unCLIP's first decoder step (÷ √ᾱ ≈ 5e-5) amplifies that at a few pixels; the picture is the same
  assert.ok(max <= 12 && mean <= 0.25 && off <= one.pixels.data.length / 500, "the threaded and single-threaded modules draw the same image");
  await context.close();
});

test("a plain static host (no headers): the service worker isolates the page after one reload", async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  let loads = 0;
  page.on("load", () => { loads++; });
  await page.goto(`${env.plain.url}?${LOAD}`);
  await page.waitForFunction(() => self.crossOriginIsolated && document.body.dataset.state === "ready", null, { timeout: 180_000 });
  assert.equal(loads, 2, "one reload, under the service worker's headers");
  const threads = await page.evaluate(() => document.body.dataset.threads);
  assert.ok(Number(threads) >= 2, `threads in use: ${threads}`);
  // the documents themselves came without the headers: it is the service worker that isolates
  const res = await fetch(env.plain.url);
  assert.equal(res.headers.get("cross-origin-embedder-policy"), null);
  await context.close();
});

test("where isolation is impossible the page runs on one thread and says why", async () => {
  const context = await env.browser.newContext({ serviceWorkers: "block" });
  const page = await openPage(context, `${env.plain.url}?${LOAD}`);
  await waitState(page, "ready", 180_000);
  assert.equal(await page.evaluate(() => self.crossOriginIsolated), false);
  assert.equal(await page.evaluate(() => document.body.dataset.threads), "1");
  assert.match(await page.textContent("#backend-status"), /; 1 thread: the page is not cross-origin isolated \(the server sends no COOP\/COEP headers\)/);
  await context.close();
});

test("?threads= out of range or not a number: one sentence, and the default or the cap", async () => {
  const context = await env.browser.newContext();
  const page = await openPage(context, `${env.isolating.url}?${LOAD}&threads=lots`);
  await waitState(page, "ready", 180_000);
  assert.match(await page.textContent("#warning"), /\?threads=lots is not a whole number of threads from 1 to 8, so this uses the default/);
  const cores = await page.evaluate(() => Math.min(navigator.hardwareConcurrency, 8));
  assert.equal(await page.evaluate(() => document.body.dataset.threads), String(cores));
  const big = await openPage(context, `${env.isolating.url}?${LOAD}&threads=64`);
  await waitState(big, "ready", 180_000);
  assert.match(await big.textContent("#warning"), /\?threads=64 is more than the 8 this page uses at most/);
  assert.equal(await big.evaluate(() => document.body.dataset.threads), "8");
  await context.close();
});
