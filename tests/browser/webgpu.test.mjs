// The WebGPU backend in headless Chromium (its adapter is SwiftShader, a software fallback): auto picks
// the CPU and says why; forcing WebGPU runs the whole pipeline on it and gives the CPU's image; switching
// backends needs no download; a GPU device lost mid-run falls back to the CPU, says so, and finishes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { openPage, waitState, resultPixels, shot } from "./browser.mjs";
import { serverAndBrowser } from "./setup.mjs";

const SMALL = "model=tiny&prompt=horse&seed=0&prior_steps=2&decoder_steps=2&sr_steps=2";
const env = serverAndBrowser();

/// The backend menu lives in the collapsed settings: open them the way a person would, then choose.
async function chooseBackend(page, value) {
  await page.evaluate(() => { document.getElementById("backend").closest("details").open = true; });
  await page.selectOption("#backend", value);
}

/// {mean, off}: mean |a − b| over the RGB values (0–255) and the share off by more than 0.05 (13/255).
/// As in tests/webgpu_pipeline.rs: unCLIP's first step amplifies the backends' ~1e-6 differences by
/// 1/√ᾱ₉₉₉ ≈ 2e4 before clipping x̂0, so a rare value may flip; the image as a whole must agree.
function compare(a, b) {
  assert.equal(a.data.length, b.data.length);
  let [sum, off, n] = [0, 0, 0];
  for (let i = 0; i < a.data.length; i++) {
    if (i % 4 === 3) continue;
    const d = Math.abs(a.data[i] - b.data[i]);
    sum += d; n++;
    if (d > 13) off++;
  }
  return { mean: sum / n, off: off / n };
}

/// From now on the worker keeps every GPU device it creates in self.__devices (to destroy them, as a driver reset would).
async function recordDevices(worker) {
  await worker.evaluate(() => {
    self.__devices = [];
    const request = GPUAdapter.prototype.requestDevice;
    GPUAdapter.prototype.requestDevice = async function (...args) {
      const device = await request.apply(this, args);
      self.__devices.push(device);
      return device;
    };
  });
}

test("forced WebGPU runs the pipeline on the GPU and gives the CPU's image; switching back needs no download", async () => {
  const context = await env.browser.newContext();
  const page = await openPage(context, `${env.server.url}?${SMALL}&backend=webgpu&autorun=1`);
  assert.equal(await waitState(page, ["done", "error"], 300_000), "done", await page.textContent("#error"));
  assert.match(await page.textContent("#backend-status"), /Backend: webgpu — you chose WebGPU: adapter .*software fallback/);
  await shot(page, "webgpu-done");
  const gpu = await resultPixels(page);

  const fetched = env.server.hits.get("decoder.gguf");
  await chooseBackend(page, "cpu");
  await waitState(page, "ready");
  assert.match(await page.textContent("#backend-status"), /Backend: cpu — you chose the CPU backend/);
  assert.equal(env.server.hits.get("decoder.gguf"), fetched, "no weight was fetched again");
  await page.click("#generate");
  assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
  const cpu = await resultPixels(page);
  const { mean, off } = compare(gpu, cpu);
  console.log(`browser WebGPU (SwiftShader) vs wasm CPU: mean diff ${mean.toFixed(4)} of 255, share off by > 13: ${off}`);
  assert.ok(mean <= 0.2 && off <= 1e-3, `the WebGPU and CPU images differ: mean ${mean}, share off ${off}`);
  await context.close();
});

test("a GPU device lost during a run falls back to the CPU, says so, and finishes", async () => {
  const context = await env.browser.newContext();
  const page = await openPage(context, `${env.server.url}?${SMALL}&backend=cpu`);
  await waitState(page, "ready");
  const worker = page.workers()[0];
  await recordDevices(worker); // then switch to WebGPU
  await chooseBackend(page, "webgpu");
  await page.waitForFunction(() => /Backend: webgpu/.test(document.getElementById("backend-status").textContent));
  await waitState(page, "ready");
  await page.click("#generate");
  await waitState(page, ["running", "done", "error"]);
  assert.equal(await worker.evaluate(() => { self.__devices.forEach((d) => d.destroy()); return self.__devices.length; }), 1);
  assert.equal(await waitState(page, ["done", "error"], 300_000), "done", await page.textContent("#error"));
  assert.match(await page.textContent("#backend-status"), /Backend: cpu — the GPU failed during a run/);
  assert.match(await page.textContent("#warning"), /WebGPU failed.*switching to the CPU backend/);
  await shot(page, "webgpu-lost-device");
  await context.close();
});

test("a backend switch during the first load downloads nothing twice and leaves one working engine", async () => {
  const context = await env.browser.newContext();
  env.server.faults.set("decoder.gguf", "slow");
  const before = env.server.hits.get("decoder.gguf") ?? 0;
  try {
    const page = await openPage(context, `${env.server.url}?${SMALL}&backend=cpu`);
    await page.waitForFunction(() => /decoder\.gguf/.test(document.getElementById("load-text").textContent));
    await chooseBackend(page, "webgpu"); // while decoder.gguf is still arriving
    await page.waitForFunction(() => /Backend: webgpu/.test(document.getElementById("backend-status").textContent), null, { timeout: 120_000 });
    await waitState(page, "ready");
    assert.equal((env.server.hits.get("decoder.gguf") ?? 0) - before, 1, "the second load found the first one's files in the cache");
    await page.click("#generate");
    assert.equal(await waitState(page, ["done", "error"], 300_000), "done", await page.textContent("#error"));
  } finally {
    env.server.faults.delete("decoder.gguf");
    await context.close();
  }
});

test("a GPU lost during a remix falls back to the CPU and the remix finishes; a backend switch waits for it", async () => {
  const context = await env.browser.newContext();
  const page = await openPage(context, `${env.server.url}?${SMALL}&backend=cpu`);
  await waitState(page, "ready");
  const worker = page.workers()[0];
  await recordDevices(worker);
  await chooseBackend(page, "webgpu");
  await page.waitForFunction(() => /Backend: webgpu/.test(document.getElementById("backend-status").textContent));
  await waitState(page, "ready");
  await page.setInputFiles("#remix-file", new URL("../../www/gallery/dog-face.png", import.meta.url).pathname);
  await page.waitForFunction(() => document.getElementById("remix").dataset.image === "dog-face.png");
  await page.fill("#remix-count", "2");
  await page.waitForFunction(() => !document.getElementById("remix-variations").disabled);
  await page.click("#remix-variations");
  await page.waitForFunction(() => document.getElementById("remix").dataset.state === "running");
  assert.equal(await worker.evaluate(() => { self.__devices.forEach((d) => d.destroy()); return self.__devices.length; }), 1);
  await chooseBackend(page, "cpu"); // a load queued behind the remix: it must not free the engine the remix runs on
  await page.waitForFunction(() => ["done", "error"].includes(document.getElementById("remix").dataset.state), null, { timeout: 300_000 });
  assert.equal(await page.evaluate(() => document.getElementById("remix").dataset.state), "done", await page.textContent("#remix-error"));
  assert.equal(await page.locator("ol#remix-frames > li img").count(), 2);
  await page.waitForFunction(() => /Backend: cpu — you chose the CPU backend/.test(document.getElementById("backend-status").textContent), null, { timeout: 120_000 });
  await shot(page, "webgpu-lost-during-remix");
  await context.close();
});
