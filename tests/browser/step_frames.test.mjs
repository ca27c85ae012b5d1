// A run's steps as one picture (docs/formats.md, "Pictures") in real Chromium on the tiny model: the generate
// page's x̂0 frames of the decoder as an APNG whose frames are the ones the step canvases showed, the super-res x_t
// as a contact sheet of the same frames, each carrying the run's record; and the teaching page's SDEdit panel,
// whose strip of step canvases the saved APNG equals frame for frame.
import { test } from "node:test";
import assert from "node:assert/strict";
import { download, openPage, waitState } from "./browser.mjs";
import { decodePng, itxt } from "./png.mjs";
import { serverAndBrowser } from "./setup.mjs";

const env = serverAndBrowser();

/// Every picture put on the canvas `#id` (the page paints each step with putImageData): [{width, height, data}].
function recordPaints(context, ids) {
  return context.addInitScript((ids) => {
    window.__painted = Object.fromEntries(ids.map((id) => [id, []]));
    const put = CanvasRenderingContext2D.prototype.putImageData;
    CanvasRenderingContext2D.prototype.putImageData = function (image, ...rest) {
      window.__painted[this.canvas.id]?.push({ width: image.width, height: image.height, data: Array.from(image.data) });
      return put.call(this, image, ...rest);
    };
  }, ids);
}

/// The tiles of a contact sheet `sheet` ({width, frames: [rgba]}) of `n` w×h frames, `columns` to a row, `gap` apart.
function tiles({ width, frames: [rgba] }, n, w, h, columns, gap) {
  return Array.from({ length: n }, (_, k) => {
    const [x, y] = [(k % columns) * (w + gap), Math.floor(k / columns) * (h + gap)];
    const tile = [];
    for (let r = 0; r < h; r++) tile.push(...rgba.subarray(((y + r) * width + x) * 4, ((y + r) * width + x + w) * 4));
    return tile;
  });
}

test("the generate page saves the decoder's x̂0 as an APNG and the super-res x_t as a contact sheet, the canvases' frames", async () => {
  const started = Date.now();
  const context = await env.browser.newContext({ acceptDownloads: true });
  await recordPaints(context, ["xt", "x0"]);
  const page = await openPage(context, `${env.server.url}?model=tiny&prior_steps=2&decoder_steps=4&sr_steps=3&prompt=horse&seed=5`);
  assert.equal(await waitState(page, ["ready", "error"]), "ready", await page.textContent("#error"));
  assert.equal(await page.isHidden("#steps-save"), true, "nothing to save before a run");
  await page.click("#generate");
  assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
  const painted = await page.evaluate(() => window.__painted);
  assert.equal(painted.x0.length, 4 + 3, "one picture per decoder and super-res step");

  await page.selectOption("#steps-save-source", "decoder");
  await page.selectOption("#steps-save-image", "x0");
  const apng = await download(page, "#steps-save-apng");
  assert.equal(apng.name, "unclip-decoder-x0.png");
  const animation = decodePng(apng.bytes);
  assert.deepEqual(animation.frames.map((f) => Array.from(f)), painted.x0.slice(0, 4).map((p) => p.data), "the APNG's frames are the x̂0 canvas' frames");
  assert.deepEqual(animation.delays, [200, 200, 200, 200]);
  const record = JSON.parse(itxt(apng.bytes).unclip);
  assert.deepEqual([record.prompt, record.seed, record.decoder_steps, record.step_frames.stage, record.step_frames.image, record.step_frames.t.length], ["horse", 5, 4, "decoder", "x0", 4]);
  assert.equal(record.step_frames.columns, undefined);

  await page.selectOption("#steps-save-source", "super_res");
  await page.selectOption("#steps-save-image", "xt");
  const sheetFile = await download(page, "#steps-save-sheet");
  const sheet = JSON.parse(itxt(sheetFile.bytes).unclip).step_frames;
  const sr = painted.xt.slice(4);
  assert.deepEqual([sheet.stage, sheet.image, sheet.columns, sheet.frame_width], ["super_res", "xt", 2, sr[0].width]);
  assert.deepEqual(tiles(decodePng(sheetFile.bytes), 3, sr[0].width, sr[0].height, 2, 2), sr.map((p) => p.data), "the sheet's tiles are the x_t canvas' frames");
  await context.close();
  console.log(`steps (generate page) browser test: ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

test("the teaching page's SDEdit panel saves its steps as an APNG equal to its strip of step canvases", async () => {
  const started = Date.now();
  const context = await env.browser.newContext({ acceptDownloads: true });
  const page = await openPage(context, `${env.server.url}learn.html?model=tiny&prompt=horse&rseed=2&steps=5&t=700`);
  await waitState(page, "ready");
  await page.waitForFunction(() => !document.getElementById("sdedit-run").disabled, null, { timeout: 120_000 });
  await page.click("#sdedit-run");
  await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.sdedit), null, { timeout: 120_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.sdedit), "done", await page.textContent("#sdedit-status"));
  const strip = await page.$$eval("#sdedit-steps canvas", (cs) => cs.map((c) => Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data)));
  await page.selectOption("#sdedit-save-image", "xt");
  const file = await download(page, "#sdedit-save-apng");
  const frames = decodePng(file.bytes).frames.map((f) => Array.from(f));
  assert.ok(frames.length >= 2);
  assert.deepEqual(frames, strip.filter((_, k) => k % 2 === 0), "the x_t canvases of the strip, in order");
  const record = JSON.parse(itxt(file.bytes).unclip);
  assert.ok(record.edit && record.edit.strength > 0.6, "an SDEdit's steps say they were an img2img");
  await context.close();
  console.log(`steps (teaching page) browser test: ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

test("a save that waits on a worker the page replaced fails with a sentence instead of waiting for ever", async () => {
  const { stepsRequester } = await import("../../www/js/step-frames.js");
  const posted = [];
  const steps = stepsRequester((msg) => posted.push(msg));
  const first = steps.request({ type: "steps_png" });
  const second = steps.request({ type: "steps_png" });
  steps.reply({ type: "steps_png", id: posted[0].id, png: new Uint8Array([1]) });
  assert.deepEqual(await first, new Uint8Array([1]));
  steps.abandon("the engine restarted");
  await assert.rejects(second, /the engine restarted/);
  steps.reply({ type: "steps_png", id: posted[1].id, png: new Uint8Array([2]) }); // a late answer: nothing waits on it
});
