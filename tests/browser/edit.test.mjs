// The Edit panel in headless Chromium on the tiny test model, against a real HTTP server: img2img at strength 0
// returns the chosen picture; the brush, eraser, undo and clear change the mask; inpainting keeps every pixel the
// brush did not touch and repaints the others; the mistakes a person can make get a sentence.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { openPage, waitState, resultPixels, shot } from "./browser.mjs";
import { ROOT, serverAndBrowser } from "./setup.mjs";

const SMALL = "model=tiny&prompt=horse&seed=0&prior_steps=2&decoder_steps=3&sr_steps=2";
const env = serverAndBrowser();

/// The RGBA bytes of a PNG file, decoded in the page as the page decodes a chosen file.
async function filePixels(page, path) {
  return page.evaluate(async (b64) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const bitmap = await createImageBitmap(img);
    const c = document.createElement("canvas");
    c.width = bitmap.width; c.height = bitmap.height;
    const g = c.getContext("2d");
    g.drawImage(bitmap, 0, 0);
    return Array.from(g.getImageData(0, 0, c.width, c.height).data);
  }, (await import("node:fs")).readFileSync(path).toString("base64"));
}

const columns = (rgba, width, from, to) => rgba.filter((_, i) => { const x = (i >> 2) % width; return x >= from && x < to; });
const maskPixels = (page) => page.evaluate(() => Number(document.getElementById("edit").dataset.maskPixels));
const setRange = (page, id, v) => page.$eval(`#${id}`, (el, v) => { el.value = v; el.dispatchEvent(new Event("input")); }, String(v));

async function run(page) {
  await page.click("#generate");
  assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
}

/// A stroke across the mask canvas, in fractions of its displayed size.
async function stroke(page, [x0, y0], [x1, y1]) {
  const box = await page.locator("#edit-mask").boundingBox();
  await page.mouse.move(box.x + x0 * box.width, box.y + y0 * box.height);
  await page.mouse.down();
  await page.mouse.move(box.x + x1 * box.width, box.y + y1 * box.height, { steps: 12 });
  await page.mouse.up();
}

test("img2img at strength 0 gives the picture back; inpainting keeps what the brush left alone", async () => {
  const context = await env.browser.newContext();
  const page = await openPage(context, `${env.server.url}?${SMALL}`);
  assert.equal(await waitState(page, ["ready", "error"]), "ready", await page.textContent("#error"));
  const dog = join(ROOT, "www/gallery/dog-face.png");
  const want = await filePixels(page, dog);

  await page.click("#edit summary");
  await page.check('input[name="edit_mode"][value="img2img"]');
  await page.click("#generate");
  await page.waitForFunction(() => !document.getElementById("error").hidden);
  assert.match(await page.textContent("#error"), /choose a picture to edit first/);

  await page.setInputFiles("#edit-file", dog);
  await page.waitForFunction(() => document.getElementById("edit").dataset.image === "dog-face.png");
  await setRange(page, "strength", 0);
  await run(page);
  assert.deepEqual((await resultPixels(page)).data, want, "strength 0 returns the picture, pixel for pixel");
  assert.match(page.url(), /edit_mode=img2img/);
  assert.match(page.url(), /strength=0(&|$)/);

  await page.check('input[name="edit_mode"][value="inpaint"]');
  await page.click("#generate");
  await page.waitForFunction(() => /brush over/.test(document.getElementById("error").textContent));
  // brush, undo, eraser, clear
  await stroke(page, [0.1, 0.1], [0.3, 0.9]);
  const painted = await maskPixels(page);
  assert.ok(painted > 100, `the stroke painted ${painted} mask pixels`);
  await page.click("#edit-undo");
  assert.equal(await maskPixels(page), 0, "undo removes the stroke");
  await stroke(page, [0.1, 0.1], [0.3, 0.9]);
  await page.click("#edit-eraser");
  await stroke(page, [0.2, 0.0], [0.2, 1.0]);
  const erased = await maskPixels(page);
  assert.ok(erased < painted && erased > 0, `the eraser took pixels away: ${painted} -> ${erased}`);
  await page.click("#edit-clear");
  assert.equal(await maskPixels(page), 0, "clear empties the mask");
  await page.click("#edit-undo");
  assert.equal(await maskPixels(page), erased, "and undo brings it back");
  await page.click("#edit-clear");
  await page.click("#edit-brush");
  await stroke(page, [0.1, 0.1], [0.3, 0.9]);

  await setRange(page, "strength", 1);
  await run(page);
  await shot(page, "edit-inpaint");
  const got = (await resultPixels(page)).data;
  // the stroke covers x ≤ 0.3·64 + the brush radius (3 px); columns from 32 on are untouched
  assert.deepEqual(columns(got, 64, 32, 64), columns(want, 64, 32, 64), "kept pixels are the picture's");
  const left = columns(got, 64, 6, 18), wantLeft = columns(want, 64, 6, 18);
  const diff = left.reduce((s, v, i) => s + Math.abs(v - wantLeft[i]), 0) / left.length;
  assert.ok(diff > 5, `the brushed part is repainted (mean difference ${diff})`);
  const title = await page.getAttribute("#history li:first-child button", "title");
  assert.match(title, /repainted in dog-face\.png/);
  await context.close();
});
