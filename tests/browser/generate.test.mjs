// The generate page in headless Chromium against a real HTTP server: streaming load with progress,
// generation with one event per step, the image equal to the native CLI's, the offline cache,
// every download fault with its message and a working retry, cancel, and determinism.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openPage, waitState, resultPixels, shot } from "./browser.mjs";
import { ROOT, serverAndBrowser } from "./setup.mjs";

// the tiny random test checkpoint (fast, and what the native goldens use); the bundled model has its own test
const SMALL = "model=tiny&prompt=horse&seed=0&prior_steps=2&decoder_steps=2&sr_steps=2";
const env = serverAndBrowser();

function readNpy(path) {
  const b = readFileSync(path);
  const headerLen = b.readUInt16LE(8);
  return new Float32Array(b.buffer.slice(b.byteOffset + 10 + headerLen, b.byteOffset + b.length));
}

test("loads with streamed progress, generates with one event per step, matches the native CLI", async () => {
  const context = await env.browser.newContext();
  const page = await openPage(context, `${env.server.url}?${SMALL}&autorun=1`);
  await shot(page, "loading");
  await waitState(page, ["running", "done", "error"]);
  await shot(page, "running");
  assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
  await shot(page, "generate-done");

  const log = await page.evaluate(() => window.__loadLog);
  assert.ok(log.some((t) => /decoder\.gguf: .* of .*MB, \d+ tensors/.test(t)), `byte-level progress with the parsed header: ${log.join(" | ")}`);
  assert.ok(log.some((t) => /ready/.test(t)));
  assert.equal(await page.evaluate(() => document.body.dataset.steps), String(2 + 2 + 2), "one step event per step");
  // --enable-unsafe-webgpu gives headless Chromium SwiftShader: the page says which backend runs and why
  assert.match(await page.textContent("#backend-status"), /Backend: cpu — .*WebGPU adapter .*software fallback.*runs on the CPU/);

  const tmp = mkdtempSync(join(tmpdir(), "unclip-"));
  execFileSync(join(ROOT, "target/debug/unclip"), ["generate", "--model", join(ROOT, "dist/models/tiny"), "--prompt", "horse", "--seed", "0",
    "--prior-steps", "2", "--decoder-steps", "2", "--sr-steps", "2", "--out-npy", join(tmp, "native.npy")], { stdio: "ignore" });
  const native = readNpy(join(tmp, "native.npy"));
  const { width, height, data } = await resultPixels(page);
  assert.equal(width * height * 3, native.length);
  let max = 0;
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) max = Math.max(max, Math.abs(data[p * 4 + c] / 255 - native[p * 3 + c]));
  }
  console.log(`browser (wasm CPU) vs native CLI: max abs diff ${max.toFixed(5)} (8-bit PNG: rounding alone allows 0.00196)`);
  assert.ok(max <= 2.5 / 255, `max abs diff ${max}`);
  assert.deepEqual(await page.evaluate(() => window.__cspViolations), [], "a whole generation runs under the page's CSP");
  await context.close();
});

test("a phone-sized screen and the keyboard alone are enough", async () => {
  const context = await env.browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
  const page = await openPage(context, `${env.server.url}?model=tiny&seed=1&prior_steps=2&decoder_steps=2&sr_steps=2`);
  await waitState(page, "ready");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling on a phone (${overflow}px)`);
  await page.focus("#prompt");
  await page.keyboard.type("horse");
  await page.keyboard.press("Enter"); // submits the form
  assert.equal(await waitState(page, ["done", "error"]), "done");
  await shot(page, "phone");
  await context.close();
});

test("a reload without network generates from the cache", async () => {
  const context = await env.browser.newContext();
  const page = await openPage(context, `${env.server.url}?${SMALL}`);
  await waitState(page, "ready");
  await page.evaluate(() => navigator.serviceWorker.ready);
  const hits = env.server.hits.get("decoder.gguf");
  await context.setOffline(true);
  await page.goto(`${env.server.url}?${SMALL}&autorun=1`).catch(() => {}); // the page itself comes from the HTTP cache or fails
  if (await page.evaluate(() => !document.body)) return assert.fail("the page did not load offline");
  assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error").catch(() => ""));
  assert.equal(env.server.hits.get("decoder.gguf"), hits, "no weight was fetched again");
  const log = await page.evaluate(() => window.__loadLog);
  assert.ok(log.some((t) => /from the cache/.test(t)), log.join(" | "));
  await shot(page, "offline-from-cache");
  await context.close();
});

for (const [fault, message] of [
  ["404", /decoder\.gguf: the server answered 404/],
  ["500", /decoder\.gguf: the server answered 500/],
  ["corrupt", /decoder\.gguf with sha256 .*hashed to/],
  ["truncate", /decoder\.gguf stopped after \d+ of \d+ bytes/],
  ["cut", /decoder\.gguf: the connection broke after \d+ of \d+ bytes|decoder\.gguf stopped after/],
]) {
  test(`a ${fault} download says so, caches nothing bad, and a retry works`, async () => {
    const context = await env.browser.newContext();
    env.server.faults.set("decoder.gguf", fault);
    const page = await openPage(context, `${env.server.url}?${SMALL}`);
    assert.equal(await waitState(page, ["ready", "error"]), "error");
    const error = await page.textContent("#error");
    assert.match(error, message);
    await shot(page, `fault-${fault}`);
    const cached = await page.evaluate(async () => (await (await caches.open("unclip-models-v1")).keys()).map((r) => r.url));
    assert.ok(!cached.some((u) => u.includes("decoder.gguf")), `no decoder entry cached: ${cached}`);
    env.server.faults.delete("decoder.gguf");
    await page.click("#retry-load");
    assert.equal(await waitState(page, ["ready", "error"]), "ready", await page.textContent("#error"));
    await context.close();
  });
}

test("a broken model.json says so, is never cached, and a retry works", async () => {
  const context = await env.browser.newContext();
  env.server.faults.set("model.json", "corrupt");
  const page = await openPage(context, `${env.server.url}?${SMALL}`);
  assert.equal(await waitState(page, ["ready", "error"]), "error");
  assert.match(await page.textContent("#error"), /model\.json is not a valid unclip model manifest/);
  const cached = await page.evaluate(async () => (await (await caches.open("unclip-models-v1")).keys()).map((r) => r.url));
  assert.ok(!cached.some((u) => u.includes("model.json")), `no bad manifest cached: ${cached}`);
  env.server.faults.delete("model.json");
  await page.click("#retry-load");
  assert.equal(await waitState(page, ["ready", "error"]), "ready", await page.textContent("#error"));
  await context.close();
});

test("a full storage quota warns and still generates", async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Storage.overrideQuotaForOrigin", { origin: env.server.url.replace(/\/$/, ""), quotaSize: 200_000 });
  await page.goto(`${env.server.url}?${SMALL}&autorun=1`);
  assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
  assert.match(await page.textContent("#warning"), /could not be stored for offline use/);
  await shot(page, "quota-full");
  await context.close();
});

test("cancel stops within one step; the same seed gives the same image twice", async () => {
  const context = await env.browser.newContext();
  const page = await openPage(context, `${env.server.url}?model=tiny&prompt=horse&seed=3&prior_steps=2&decoder_steps=50&sr_steps=2`);
  await waitState(page, "ready");
  await page.click("#generate");
  await page.waitForFunction(() => Number(document.body.dataset.steps) >= 4);
  const atClick = await page.evaluate(() => Number(document.body.dataset.steps));
  await page.click("#cancel");
  assert.equal(await waitState(page, ["ready", "done", "error"]), "ready");
  const after = await page.evaluate(() => Number(document.body.dataset.steps));
  // the step running when Cancel arrives finishes, and on a busy machine one more step's event may already be on
  // its way to the page when the click is counted: at most 2 of the 46 steps left
  assert.ok(after <= atClick + 2, `${after - atClick} steps ran after cancel`);
  await shot(page, "cancelled");

  await page.click("#settings > summary"); // keyboard/mouse users open the settings the same way
  const run = async () => {
    await page.fill("#decoder_steps", "2");
    await page.click("#generate");
    assert.equal(await waitState(page, ["done", "error"]), "done");
    const src = await page.getAttribute("#result", "src");
    await page.evaluate(() => { document.body.dataset.state = "ready"; });
    return src;
  };
  assert.equal(await run(), await run());
  assert.match(page.url(), /seed=3/, "settings live in the URL");
  await context.close();
});

/// A safetensors file's string metadata and one f32 tensor.
function readSafetensors(path, key) {
  const b = readFileSync(path);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString("utf8"));
  const [start, end] = header[key].data_offsets;
  const data = new Float32Array(b.buffer.slice(b.byteOffset + 8 + n + start, b.byteOffset + 8 + n + end));
  return { meta: header.__metadata__, data };
}

test("an empty prompt draws diffusers' unconditional sample; an over-long one names the words it dropped", async () => {
  const golden = join(ROOT, "tests/fixtures/golden/tiny_prompts_seed0_2-2-2.safetensors");
  const { meta, data: want } = readSafetensors(golden, "empty_cfg.image");
  const context = await env.browser.newContext();
  const page = await openPage(context, `${env.server.url}?model=tiny&prompt=&seed=0&prior_steps=2&decoder_steps=2&sr_steps=2&autorun=1`);
  assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
  assert.match(await page.textContent("#prompt-hint"), /empty for an unconditional sample/);
  const { width, height, data } = await resultPixels(page);
  let max = 0;
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) max = Math.max(max, Math.abs(data[p * 4 + c] / 255 - want[p * 3 + c]));
  }
  assert.ok(max <= 2.5 / 255, `empty prompt vs diffusers: max abs diff ${max}`);
  assert.equal(await page.getAttribute("#history li button", "title"), "(no prompt: unconditional) (seed 0)");

  await page.evaluate(() => { document.body.dataset.state = "ready"; });
  await page.fill("#prompt", meta.long_prompt);
  await page.click("#generate");
  assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
  const warning = await page.textContent("#warning");
  assert.ok(warning.includes("77 tokens") && warning.includes(meta.long_removed_text), warning);
  await shot(page, "long-prompt-warning");
  await context.close();
});

test("both pages have unique ids and a strict Content-Security-Policy that blocks nothing they do", async () => {
  const context = await env.browser.newContext();
  for (const path of ["index.html?model=tiny", "learn.html?model=tiny"]) {
    const page = await openPage(context, new URL(path, env.server.url).href);
    assert.equal(await waitState(page, ["ready", "error"]), "ready", path);
    const csp = await page.getAttribute('meta[http-equiv="Content-Security-Policy"]', "content");
    assert.match(csp, /default-src 'self'; script-src 'self' 'wasm-unsafe-eval';/, path);
    assert.deepEqual(await page.evaluate(() => window.__cspViolations), [], `${path}: blocked by the CSP`);
    const dupes = await page.evaluate(() => {
      const seen = new Map();
      for (const el of document.querySelectorAll("[id]")) seen.set(el.id, (seen.get(el.id) ?? 0) + 1);
      return [...seen].filter(([, n]) => n > 1).map(([id]) => id);
    });
    assert.deepEqual(dupes, [], `${path} repeats ids`);
    await page.close();
  }
  await context.close();
});

test("an interrupted model update keeps the last complete version offline; a complete one evicts it", async () => {
  // a model of its own (dist/models/update-<pid>) that this test moves from version 1 (f32) to version 2 (q8_0)
  const name = `update-${process.pid}`;
  const dir = join(ROOT, "dist/models", name);
  const convert = (dtype) => execFileSync(join(ROOT, "target/debug/unclip"),
    ["convert", join(ROOT, "tests/fixtures/tiny-unclip"), dir, "--dtype", dtype], { stdio: "ignore" });
  const cachedKeys = (page) => page.evaluate(async (n) => (await (await caches.open("unclip-models-v1")).keys())
    .map((r) => r.url).filter((u) => u.includes(`/models/${n}/`)), name);
  const url = `${env.server.url}?model=${name}&prompt=horse&seed=0&prior_steps=2&decoder_steps=2&sr_steps=2`;
  convert("f32");
  const context = await env.browser.newContext();
  try {
    const page = await openPage(context, url);
    assert.equal(await waitState(page, ["ready", "error"]), "ready", await page.textContent("#error"));
    await page.evaluate(() => navigator.serviceWorker.ready);
    const v1 = await cachedKeys(page);

    convert("q8_0"); // version 2 on the server; its download breaks off
    env.server.faults.set("decoder.gguf", "cut");
    await page.goto(url);
    assert.equal(await waitState(page, ["ready", "error"]), "error");
    env.server.faults.delete("decoder.gguf");

    await context.setOffline(true); // the next visit is offline: version 1, whole
    await page.goto(`${url}&autorun=1`).catch(() => {});
    assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error").catch(() => ""));

    await context.setOffline(false); // online again: version 2 completes and replaces version 1
    await page.goto(url);
    assert.equal(await waitState(page, ["ready", "error"]), "ready", await page.textContent("#error"));
    const v2 = await cachedKeys(page);
    assert.equal(v2.length, v1.length, `one version cached: ${v2.join(", ")}`);
    const weights = v1.filter((u) => u.includes(".gguf?sha256=")); // every component differs between f32 and q8_0
    assert.equal(weights.length, 7);
    assert.ok(weights.every((u) => !v2.includes(u)), `version 1's weights were evicted: ${v2.join(", ")}`);
  } finally {
    await context.close();
    execFileSync("rm", ["-rf", dir]);
  }
});

test("a model's recommended settings fill the form where the URL sets nothing, say so, and run", async () => {
  // a model of its own (dist/models/recommended-<pid>): the tiny checkpoint, recommending 2/3/2 steps and guidance 3
  const name = `recommended-${process.pid}`;
  const dir = join(ROOT, "dist/models", name);
  execFileSync(join(ROOT, "target/debug/unclip"), ["convert", join(ROOT, "tests/fixtures/tiny-unclip"), dir, "--dtype", "f32"], { stdio: "ignore" });
  const manifest = JSON.parse(readFileSync(join(dir, "model.json"), "utf8"));
  manifest.recommended = { prior_steps: 2, decoder_steps: 3, sr_steps: 2, decoder_guidance: 3 };
  writeFileSync(join(dir, "model.json"), JSON.stringify(manifest));
  const context = await env.browser.newContext();
  try {
    const page = await openPage(context, `${env.server.url}?model=${name}&prompt=horse&seed=0&decoder_guidance=5`);
    assert.equal(await waitState(page, ["ready", "error"]), "ready", await page.textContent("#error"));
    assert.equal(await page.inputValue("#decoder_steps"), "3");
    assert.equal(await page.inputValue("#prior_steps"), "2");
    assert.equal(await page.inputValue("#decoder_guidance"), "5", "the URL overrides a recommendation");
    assert.equal(await page.inputValue("#prior_guidance"), "4", "what the model does not recommend stays diffusers'");
    const note = await page.$eval("#recommended-note", (e) => (e.hidden ? "" : e.textContent));
    assert.match(note, /recommends prior steps 2, decoder steps 3, sr steps 2;/);
    await page.click("#generate");
    assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
    assert.equal(await page.evaluate(() => document.body.dataset.steps), String(2 + 3 + 2), "the run used the recommended steps");
    const q = new URL(page.url()).searchParams;
    assert.equal(q.get("decoder_guidance"), "5");
    assert.ok(!q.has("decoder_steps"), `a recommended value is the model's default, left out of the URL: ${q}`);
  } finally {
    await context.close();
    execFileSync("rm", ["-rf", dir]);
  }
});

test("a result is labelled with the settings it ran with, even if the form changed during the run", async () => {
  const context = await env.browser.newContext();
  const page = await openPage(context, `${env.server.url}?model=tiny&prompt=horse&seed=5&prior_steps=2&decoder_steps=40&sr_steps=2`);
  await waitState(page, "ready");
  await page.click("#generate");
  await page.waitForFunction(() => Number(document.body.dataset.steps) >= 3);
  await page.fill("#prompt", "a cat");
  await page.click("#settings > summary");
  await page.fill("#seed", "9");
  assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
  assert.equal(await page.getAttribute("#history li button", "title"), "horse (seed 5)");
  assert.equal(await page.getAttribute("#download", "download"), "unclip-horse-5.png");
  await context.close();
});

test("a negative prompt is a setting in the URL and gives the native CLI's image", async () => {
  const context = await env.browser.newContext();
  const page = await openPage(context, `${env.server.url}?${SMALL}&negative_prompt=a%20dog%20in%20the%20snow&autorun=1`);
  assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
  assert.equal(await page.inputValue("#negative_prompt"), "a dog in the snow");
  const tmp = mkdtempSync(join(tmpdir(), "unclip-"));
  execFileSync(join(ROOT, "target/debug/unclip"), ["generate", "--model", join(ROOT, "dist/models/tiny"), "--prompt", "horse",
    "--negative-prompt", "a dog in the snow", "--prior-steps", "2", "--decoder-steps", "2", "--sr-steps", "2",
    "--out-npy", join(tmp, "native.npy")], { stdio: "ignore" });
  const native = readNpy(join(tmp, "native.npy"));
  const { width, height, data } = await resultPixels(page);
  let max = 0;
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) max = Math.max(max, Math.abs(data[p * 4 + c] / 255 - native[p * 3 + c]));
  }
  assert.ok(max <= 2.5 / 255, `browser vs native with a negative prompt: max abs diff ${max}`);
  await context.close();
});

test("too few super-res steps on an ε-predicting model get a warning that says why, and only for that run", async () => {
  const context = await env.browser.newContext();
  const page = await openPage(context, `${env.server.url}?${SMALL}&autorun=1`); // sr_steps=2, the tiny ε model
  assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
  assert.match(await page.textContent("#warning"), /super-res runs only 2 steps .* t = 999 to t = 0.* use 5 or more/);
  await page.click("#settings summary");
  await page.fill("#sr_steps", "5");
  await page.click("#generate");
  assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
  assert.doesNotMatch(await page.textContent("#warning"), /super-res runs only/);
  await context.close();
});

test("an engine crash (a panic, or memory that cannot grow) is one sentence, and the page restarts the engine", async () => {
  const context = await env.browser.newContext();
  const page = await openPage(context, `${env.server.url}?${SMALL}`);
  assert.equal(await waitState(page, ["ready", "error"]), "ready", await page.textContent("#error"));
  for (const [kind, message] of [
    ["panic", /the engine failed \(panicked at .*the crash drill panicked on purpose\); the page started a new engine/],
    ["oom", /the engine ran out of memory or crashed \(.*its WebAssembly memory had grown to \d+ MiB of at most 4096 MiB\)/],
  ]) {
    // the current engine worker (a replaced one may still be listed for a moment)
    const worker = page.workers().filter((w) => new URL(w.url()).pathname.endsWith("/js/worker.js")).at(-1);
    await worker.evaluate((kind) => self.onmessage({ data: { type: "crash_drill", kind } }), kind);
    await page.waitForFunction(() => !document.getElementById("error").hidden);
    assert.match(await page.textContent("#error"), message);
    assert.equal(await waitState(page, ["ready"], 120_000), "ready", "a new engine, the model loaded again");
    await page.click("#generate");
    assert.equal(await waitState(page, ["done", "error"]), "done", `after the ${kind}: ${await page.textContent("#error")}`);
  }
  await context.close();
});

test("History survives a reload, puts a result's settings back on click, and deletes entries one by one", async () => {
  const context = await env.browser.newContext();
  const page = await openPage(context, `${env.server.url}?${SMALL}`);
  assert.equal(await waitState(page, ["ready", "error"]), "ready", await page.textContent("#error"));
  const run = async () => {
    await page.click("#generate");
    assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
  };
  await run();
  await page.click("#settings summary");
  await page.fill("#seed", "7");
  await run();
  await page.reload();
  assert.equal(await waitState(page, ["ready", "error"]), "ready", await page.textContent("#error"));
  await page.waitForFunction(() => document.getElementById("history").dataset.count === "2");
  assert.equal(await page.evaluate(() => document.getElementById("history").dataset.storage), "indexeddb");
  const titles = await page.$$eval("#history li > button:first-child", (bs) => bs.map((b) => b.title));
  assert.deepEqual(titles, ["horse (seed 7)", "horse (seed 0)"]);
  await page.click("#history li:nth-child(2) > button:first-child");
  assert.equal(await page.inputValue("#seed"), "0", "the older result's seed is back");
  assert.doesNotMatch(page.url(), /seed=7/, "the URL holds the restored settings (seed 0 is the default, so unnamed)");
  assert.ok(!(await page.isHidden("#result")), "and its picture shows");
  await page.click("#history li:nth-child(1) .history-delete");
  await page.waitForFunction(() => document.getElementById("history").dataset.count === "1");
  await page.reload();
  assert.equal(await waitState(page, ["ready", "error"]), "ready");
  await page.waitForFunction(() => document.getElementById("history").dataset.count === "1");
  assert.equal(await page.getAttribute("#history li > button:first-child", "title"), "horse (seed 0)");
  await context.close();
});

test("generation after generation, the engine's WebAssembly memory stops growing after the first run", async () => {
  const context = await env.browser.newContext();
  const page = await openPage(context, `${env.server.url}?${SMALL}`);
  assert.equal(await waitState(page, ["ready", "error"]), "ready", await page.textContent("#error"));
  const worker = page.workers().find((w) => new URL(w.url()).pathname.endsWith("/js/worker.js"));
  const wasm = () => worker.evaluate(() => import("./wasm.js").then((m) => m.wasm.memoryBytes()));
  await page.click("#settings summary");
  const sizes = [];
  for (let run = 1; run <= 12; run++) {
    await page.fill("#seed", String(run));
    await page.click("#generate");
    assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
    sizes.push(await wasm());
  }
  // (bench/soak.mjs runs 100 and writes docs/soak.md)
  assert.ok(sizes.slice(2).every((s) => s === sizes[1]), `wasm memory after each run: ${sizes.map((s) => (s / 2 ** 20).toFixed(1)).join(", ")} MiB`);
  await context.close();
});
