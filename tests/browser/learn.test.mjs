// The teaching page's forward-process panel: the noised image equals the formula computed here, the
// slider (by keyboard) moves it, the schedules come from wasm and match diffusers' tables, the language
// toggle switches every label, and the lesson lives in the URL.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, serverAndBrowser } from "./setup.mjs";
import { waitState, shot } from "./browser.mjs";
import { STRINGS } from "../../www/js/i18n.js";

const env = serverAndBrowser();

/// Max |canvas x_t − the formula| in 8-bit steps, with ε and ᾱ taken from the page's wasm module.
async function formulaError(page, schedule, t, seed) {
  return page.evaluate(async ({ schedule, t, seed }) => {
    const wasm = await import("./pkg/unclip.js");
    const eps = wasm.randn(BigInt(seed), 3 * 64 * 64);
    const abar = wasm.scheduleTables(schedule).alphasCumprod[t];
    const pixels = (id) => document.getElementById(id).getContext("2d").getImageData(0, 0, 64, 64).data;
    const [x0, xt] = [pixels("x0"), pixels("xt")];
    let max = 0;
    for (let p = 0; p < 64 * 64; p++) {
      for (let c = 0; c < 3; c++) {
        const v = Math.sqrt(abar) * (x0[p * 4 + c] / 127.5 - 1) + Math.sqrt(1 - abar) * eps[c * 4096 + p];
        const want = Math.min(255, Math.max(0, Math.round((v * 0.5 + 0.5) * 255)));
        max = Math.max(max, Math.abs(want - xt[p * 4 + c]));
      }
    }
    return max;
  }, { schedule, t, seed });
}

test("forward process: pixels follow the formula, the slider moves them, schedules match diffusers", async () => {
  const page = await env.browser.newPage();
  await page.goto(`${env.server.url}learn.html?model=tiny&image=dog-face.png&t=300&schedule=cosine&seed=0`);
  await waitState(page, "ready");
  assert.ok((await formulaError(page, "cosine", 300, 0)) <= 1);
  const before = await page.$eval("#xt", (c) => c.toDataURL());
  await shot(page, "learn-forward-t300");

  await page.focus("#t");
  await page.keyboard.press("End"); // the slider is keyboard-reachable
  assert.equal(await page.textContent("#t-out"), "999");
  assert.ok((await formulaError(page, "cosine", 999, 0)) <= 1);
  assert.notEqual(await page.$eval("#xt", (c) => c.toDataURL()), before, "moving the slider changes x_t");
  await page.selectOption("#schedule", "linear");
  assert.ok((await formulaError(page, "linear", 999, 0)) <= 1);

  const tables = await page.evaluate(async () => {
    const wasm = await import("./pkg/unclip.js");
    const pick = (k) => { const a = wasm.scheduleTables(k).alphasCumprod; return [a[0], a[500], a[999]]; };
    return { cosine: pick("cosine"), linear: pick("linear") };
  });
  // diffusers' squaredcos_cap_v2 values (docs/math.md §11.1), and DDPM's linear schedule computed here in f64
  const close = (a, b) => Math.abs(a - b) <= 1e-6 * Math.max(Math.abs(b), 1e-3);
  [0.99995869, 0.49228504, 2.4287350e-09].forEach((want, i) => assert.ok(Math.abs(tables.cosine[i] - want) <= 1e-7 * Math.max(1, want) + 1e-15, `cosine ${i}`));
  let ab = 1; const lin = [];
  for (let t = 0; t < 1000; t++) { ab *= 1 - (1e-4 + (0.02 - 1e-4) * t / 999); if ([0, 500, 999].includes(t)) lin.push(ab); }
  lin.forEach((want, i) => assert.ok(close(tables.linear[i], want), `linear ${i}: ${tables.linear[i]} vs ${want}`));
  assert.match(await page.textContent("#destroyed"), /t = \d+ with the linear schedule and at t = \d+ with the cosine/);
  assert.equal(await page.$$eval("#strip-linear canvas", (c) => c.length), 11);
  await page.close();
});

test("the language toggle switches every label, and the lesson is in the URL", async () => {
  const page = await env.browser.newPage();
  await page.goto(`${env.server.url}learn.html?model=tiny&image=rocket.png&t=600`);
  await waitState(page, "ready");
  await page.click("#lang");
  const labels = await page.$$eval("[data-i18n]", (els) => els.map((e) => [e.dataset.i18n, e.textContent]));
  for (const [key, text] of labels) assert.equal(text, STRINGS.zh[key], key);
  assert.match(await page.textContent("#destroyed"), /线性调度/);
  await shot(page, "learn-forward-zh");
  assert.match(page.url(), /image=rocket\.png/);
  assert.match(page.url(), /t=600/);
  assert.match(page.url(), /lang=zh/);
  await page.close();
});

test("reverse process: one frame per step, DDPM and DDIM start from the same noise and then part, deterministically", async () => {
  const page = await env.browser.newPage();
  await page.goto(`${env.server.url}learn.html?model=tiny&prompt=horse&rseed=4&steps=5`);
  await page.waitForFunction(() => document.body.dataset.reverse === "ready", null, { timeout: 120_000 });
  const run = async () => {
    await page.click("#rev-run");
    await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.reverse), null, { timeout: 120_000 });
    assert.equal(await page.evaluate(() => document.body.dataset.reverse), "done", await page.textContent("#rev-status"));
  };
  await run();
  assert.equal(await page.$eval("#rev-step", (e) => e.max), "4", "5 decoder steps → 5 frames");
  const frame = (id) => page.$eval(`#${id}`, (c) => c.toDataURL());
  assert.equal(await frame("ddpm-xt"), await frame("ddim-xt"), "step 1: the same x_T for both samplers");
  assert.equal(await frame("ddpm-x0"), await frame("ddim-x0"), "step 1: the same prediction");
  await page.focus("#rev-step");
  await page.keyboard.press("End");
  assert.equal(await page.textContent("#rev-i"), "5/5");
  const last = { ddpm: await frame("ddpm-x0"), ddim: await frame("ddim-x0") };
  assert.notEqual(last.ddpm, last.ddim, "DDPM and DDIM end in different places");
  await shot(page, "learn-reverse");
  await run(); // the same seed again: the same frames
  await page.focus("#rev-step");
  await page.keyboard.press("End");
  assert.equal(await frame("ddpm-x0"), last.ddpm);
  assert.equal(await frame("ddim-x0"), last.ddim);
  assert.match(page.url(), /rseed=4/);
  // panel 5: this model's shapes (tiny fixture: 77 tokens + 4 extra, 100-d cross-attention) and the run's values
  assert.equal(await page.textContent('#hier-stages li[data-stage="text_proj"] .out'), "(2, 81, 100) + (2, 128)");
  assert.equal(await page.textContent('#hier-stages li[data-stage="decoder"] .out'), "(2, 6, 32, 32)");
  assert.match(await page.textContent("#hier-embedding"), /‖z‖ = [\d.]+; z = \[.*\] \(32 numbers\)/);
  // the panels run with the recommended prior and super-res steps: the final picture is the CLI's
  const tmp = mkdtempSync(join(tmpdir(), "unclip-learn-"));
  const cliPixels = (sampler) => page.evaluate(async (b64) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.width; c.height = img.height;
    c.getContext("2d").drawImage(img, 0, 0);
    return Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data);
  }, (execFileSync(join(ROOT, "target/debug/unclip"), ["generate", "--model", join(ROOT, "dist/models/tiny"), "--prompt",
    "horse", "--seed", "4", "--prior-steps", "25", "--decoder-steps", "5", "--sr-steps", "7", "--sampler", sampler, "--out",
    join(tmp, `${sampler}.png`)], { stdio: "ignore" }), readFileSync(join(tmp, `${sampler}.png`)).toString("base64")));
  const cli = await cliPixels("ddim"); // panel 2 runs DDPM, then DDIM: panel 5 shows the last run
  const panel = await page.$eval("#hier-final", (c) => Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data));
  const off = Math.max(...panel.map((v, i) => Math.abs(v - cli[i])));
  assert.ok(panel.length === cli.length && off <= 2, `the panel's final picture is the CLI's (max 8-bit difference ${off})`);
  // the lesson on super-res steps: 2 and 7 steps side by side; on this ε-predicting model 2 steps are noise
  await page.click("#hier-steps-run");
  await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.srSteps), null, { timeout: 120_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.srSteps), "done", await page.textContent("#hier-steps-status"));
  const sr7 = await page.$eval("#hier-sr7", (c) => Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data));
  const ddpm = await cliPixels("ddpm");
  assert.ok(Math.max(...sr7.map((v, i) => Math.abs(v - ddpm[i]))) <= 2, "7 steps: the CLI's picture (DDPM, diffusers' sampler)");
  const sr2 = await page.$eval("#hier-sr2", (c) => Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data));
  const saturated = sr2.filter((v, i) => i % 4 !== 3 && (v === 0 || v === 255)).length / (sr2.length * 0.75);
  assert.ok(saturated > 0.5, `2 steps of an ε super-res pin pixels to 0 or 255 (${(100 * saturated).toFixed(0)} % of them)`);
  await shot(page, "learn-sr-steps");
  await page.close();
});

test("guidance: the scales render side by side, and the unconditional, conditional and guided ε̂ are shown", async () => {
  const page = await env.browser.newPage();
  await page.goto(`${env.server.url}learn.html?model=tiny&prompt=horse&rseed=2&steps=5`);
  await page.waitForFunction(() => document.body.dataset.guidance === "ready", null, { timeout: 120_000 });
  await page.click("#cfg-run");
  await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.guidance), null, { timeout: 180_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.guidance), "done", await page.textContent("#cfg-status"));
  const img = (id) => page.$eval(`#${id}`, (c) => (c.width ? c.toDataURL() : ""));
  const decoded = await Promise.all([1, 3, 8].map((g) => img(`cfg-decoder-${g}`)));
  assert.ok(decoded.every((d) => d.length > 100), "every decoder scale rendered");
  assert.equal(new Set(decoded).size, 3, "each guidance scale gives a different image");
  // Both prior scales ran and drew their image embedding. (Whether they differ is the model's business:
  // the random tiny fixture's prior saturates its ±5 clip, so its guidance changes nothing visible.)
  for (const id of ["cfg-prior-1", "cfg-prior-4", "cfg-prior-emb-1", "cfg-prior-emb-4"]) assert.ok((await img(id)).length > 100, id);
  assert.equal(await page.$eval("#cfg-prior-emb-4", (c) => c.width), 32, "one cell per embedding dimension");
  assert.equal(await page.$eval("#cfg-step", (e) => e.max), "4", "one set of predictions per decoder step");
  const parts = await Promise.all(["cfg-uncond", "cfg-cond", "cfg-guided"].map(img));
  assert.equal(new Set(parts).size, 3, "uncond, cond and guided predictions differ");
  await page.locator("#guidance").screenshot({ path: `${new URL("../../test-results/", import.meta.url).pathname}learn-guidance.png` });
  await page.close();
});

test("the prior: one cosine per step from wasm, the path projected on the concept map, the nearest concepts", async () => {
  // the default model (unclip-emoji) ships its concept map: the page's projection and ranking are checked
  // against the same formulas computed here from that file
  const { readFileSync } = await import("node:fs");
  const { join } = await import("node:path");
  const { ROOT } = await import("./setup.mjs");
  const map = JSON.parse(readFileSync(join(ROOT, "dist/models/default/concept-map.json"), "utf8"));
  const page = await env.browser.newPage();
  await page.goto(`${env.server.url}learn.html?prompt=a%20happy%20dog&rseed=1&steps=5`);
  await page.waitForFunction(() => document.body.dataset.prior === "ready", null, { timeout: 120_000 });
  assert.equal(await page.isHidden("#prior-nomap"), true, "the map was found");
  await page.click("#prior-run");
  await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.prior), null, { timeout: 120_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.prior), "done", await page.textContent("#prior-status"));
  const r = await page.evaluate(() => window.__prior);
  assert.equal(r.steps.length, 25, "one point per prior step");
  const dot = (a, b) => a.reduce((s, v, i) => s + v * b[i], 0);
  const cos = (a, b) => dot(a, b) / Math.sqrt(dot(a, a) * dot(b, b));
  for (const s of r.steps) assert.ok(Math.abs(s.cosine - cos(s.z, s.zt)) < 1e-5, `wasm cosine ${s.cosine} vs ${cos(s.z, s.zt)}`);
  // the last step's guess, de-normalised in wasm, is the embedding the decoder was given
  const last = r.steps.at(-1).z;
  assert.ok(Math.max(...last.map((v, i) => Math.abs(v - r.embedding[i]))) < 1e-4, "final ẑ = the image embedding");
  r.steps.forEach((s, i) => {
    const n = Math.sqrt(dot(s.z, s.z));
    const centred = s.z.map((v, k) => v / n - map.mean[k]);
    const want = map.components.map((axis) => dot(centred, axis));
    assert.ok(Math.hypot(r.path[i][0] - want[0], r.path[i][1] - want[1]) < 1e-9, `step ${i}: ${r.path[i]} vs ${want}`);
  });
  const ranked = map.concepts.map((label, k) => ({ label, c: cos(last, map.embeddings[k]) })).sort((a, b) => b.c - a.c);
  assert.deepEqual(r.nearest.map((n) => n.label), ranked.slice(0, 5).map((x) => x.label));
  assert.equal(await page.$$eval("#prior-nearest li", (li) => li.length), 5);
  await shot(page, "learn-prior");
  // the same seed again: the same path (the prior is deterministic for a seed)
  await page.evaluate(() => { window.__prior = null; });
  await page.click("#prior-run");
  await page.waitForFunction(() => document.body.dataset.prior === "done" && window.__prior, null, { timeout: 120_000 });
  const again = await page.evaluate(() => window.__prior.steps.map((s) => s.cosine));
  assert.deepEqual(again, r.steps.map((s) => s.cosine));
  await page.close();
});

test("an empty prompt is an unconditional sample on the teaching page too: the prior panel plots it", async () => {
  const page = await env.browser.newPage();
  await page.goto(`${env.server.url}learn.html?prompt=&rseed=2&steps=5`);
  await page.waitForFunction(() => document.body.dataset.prior === "ready", null, { timeout: 120_000 });
  assert.equal(await page.inputValue("#rev-prompt"), "");
  assert.match(await page.textContent("#rev-prompt-hint"), /unconditional sample/);
  await page.click("#prior-run");
  await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.prior), null, { timeout: 120_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.prior), "done", await page.textContent("#prior-status"));
  assert.equal(await page.evaluate(() => window.__prior.steps.length), 25, "one point per prior step, against the empty caption");
  await page.close();
});

test("a lesson link with settings the page cannot use says which, instead of loading forever", async () => {
  const context = await env.browser.newContext();
  for (const [query, needle] of [
    ["seed=1.5", "?seed=1.5 is not a whole number from 0 to 4294967295"],
    ["image=typo", "?image=typo is not one of the gallery's images"],
    ["t=1000&steps=7", "?t=1000 is not a whole number from 0 to 999; ?steps=7 is not one of 5, 10, 25, 50"],
  ]) {
    const page = await context.newPage();
    await page.goto(new URL(`learn.html?${query}`, env.server.url).href);
    assert.equal(await waitState(page, ["ready", "error"]), "error", query);
    const text = await page.textContent("#error");
    assert.ok(text.includes(needle), `${query}: ${text}`);
    assert.equal(await page.getAttribute("#error a", "href"), "learn.html");
    await page.close();
  }
  await context.close();
});

test("SDEdit from the forward panel: t = 0 gives the image back, t = 500 runs the last half of the decoder's steps", async () => {
  const page = await env.browser.newPage();
  await page.goto(`${env.server.url}learn.html?model=tiny&image=dog-face.png&t=0&prompt=horse&steps=10`);
  await waitState(page, "ready");
  const run = async () => {
    await page.waitForFunction(() => !document.getElementById("sdedit-run").disabled, null, { timeout: 120_000 });
    await page.click("#sdedit-run");
    await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.sdedit), null, { timeout: 120_000 });
    assert.equal(await page.evaluate(() => document.body.dataset.sdedit), "done", await page.textContent("#sdedit-status"));
    await page.evaluate(() => { document.body.dataset.sdedit = ""; });
  };
  const pixels = (id) => page.$eval(`#${id}`, (c) => Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data));
  await run();
  assert.deepEqual(await pixels("sdedit-result"), await pixels("x0"), "t = 0: the image itself");
  assert.equal(await page.evaluate(() => document.body.dataset.sdeditSteps), "0");
  await page.$eval("#t", (el) => { el.value = "500"; el.dispatchEvent(new Event("input")); });
  await page.selectOption("#sdedit-sampler", "ddim");
  await run();
  assert.equal(await page.evaluate(() => document.body.dataset.sdeditSteps), "5", "int(10 · 500/999) = 5 decoder steps");
  assert.match(await page.textContent("#sdedit-status"), /Started at t = (\d+): the last 5 of 10/);
  assert.ok(Number((await page.textContent("#sdedit-status")).match(/t = (\d+)/)[1]) <= 500);
  assert.equal(await page.locator("#sdedit-steps canvas").count(), 10, "x_t and x̂0 for each of the 5 steps");
  const result = await pixels("sdedit-result"), image = await pixels("x0");
  assert.ok(result.some((v, i) => Math.abs(v - image[i]) > 8), "t = 500 changes the picture");
  await shot(page, "learn-sdedit");
  await page.close();
});
