// A picture carries its settings (docs/formats.md, "Pictures") in real Chromium on the tiny model at 2 steps per
// stage: Ctrl+Enter generates, Download saves a PNG whose `parameters` and `unclip` chunks (read here by the test's
// own chunk walker) hold the run's settings and the model's identity; dropped on a fresh page's prompt it restores
// the form, and Generate then writes the same file byte for byte; Esc cancels; pasting restores; a plain PNG is
// just a picture; a hostile chunk is one sentence; a picture from another model says so.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { download, openPage, waitState, shot } from "./browser.mjs";
import { itxt, withSettings } from "./png.mjs";
import { ROOT, serverAndBrowser } from "./setup.mjs";

const env = serverAndBrowser();
const STEPS = "model=tiny&prior_steps=2&decoder_steps=2&sr_steps=2";

/// Drops (or pastes) `bytes` as a file named `name` on the page's prompt area, as a person's drag or Ctrl+V does.
async function give(page, how, bytes, name) {
  await page.evaluate(async ({ how, b64, name }) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], name, { type: "image/png" }));
    const event = how === "drop" ? new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true })
      : new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true });
    document.getElementById(how === "drop" ? "prompt-area" : "prompt").dispatchEvent(event);
  }, { how, b64: Buffer.from(bytes).toString("base64"), name });
}

/// The next line #restored says after `act`.
async function restoredAfter(page, act) {
  await page.evaluate(() => { const r = document.getElementById("restored"); r.textContent = ""; });
  await act();
  await page.waitForFunction(() => document.getElementById("restored").textContent !== "");
  return page.textContent("#restored");
}

const FORM = ["prompt", "negative_prompt", "seed", "prior_steps", "decoder_steps", "sr_steps", "prior_guidance", "decoder_guidance", "prior_best_of"];
const form = (page) => page.evaluate((ids) => Object.fromEntries(ids.map((id) => [id, document.getElementById(id).value])), FORM);

test("a downloaded PNG carries its settings; dropped back it restores the form and Generate redraws it byte for byte", async () => {
  const started = Date.now();
  const context = await env.browser.newContext({ acceptDownloads: true });
  const page = await openPage(context, `${env.server.url}?${STEPS}&prompt=horse&negative_prompt=a%20dog&seed=3&prior_guidance=3`);
  assert.equal(await waitState(page, ["ready", "error"]), "ready", await page.textContent("#error"));
  await page.focus("#prompt");
  await page.keyboard.press("Control+Enter");
  assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
  const original = await download(page);
  const made = await form(page);

  const texts = itxt(original.bytes);
  assert.deepEqual(Object.keys(texts), ["parameters", "unclip"]);
  const lines = texts.parameters.split("\n");
  assert.deepEqual(lines.slice(0, 2), ["horse", "Negative prompt: a dog"]);
  for (const pair of ["Prior steps: 2", "Decoder steps: 2", "Super-res steps: 2", "Prior guidance: 3", "Decoder guidance: 8", "Prior best of: 1", "Sampler: DDPM", "Seed: 3", "Size: 64x64", "Model: tiny-unclip 0", "Version: unclip "]) {
    assert.ok(lines[2].includes(pair), `${pair} in ${lines[2]}`);
  }
  const record = JSON.parse(texts.unclip);
  const modelJson = readFileSync(join(ROOT, "dist/models/tiny/model.json"));
  assert.equal(record.model.sha256, createHash("sha256").update(modelJson).digest("hex"));
  assert.deepEqual([record.prompt, record.negative_prompt, record.seed, record.prior_steps, record.prior_guidance, record.sampler], ["horse", "a dog", 3, 2, 3, "ddpm"]);

  // a fresh page at the defaults takes the settings back from the dropped file
  const fresh = await openPage(context, `${env.server.url}?model=tiny`);
  assert.equal(await waitState(fresh, ["ready", "error"]), "ready");
  assert.notDeepEqual(await form(fresh), made);
  const said = await restoredAfter(fresh, () => give(fresh, "drop", original.bytes, original.name));
  assert.equal(said, `Restored from ${original.name}: “horse”, not “a dog”, seed 3, steps 2/2/2, guidance 3/8, best of 1.`);
  assert.deepEqual(await form(fresh), made);
  await fresh.click("#settings > summary");
  await fresh.focus("#seed"); // Ctrl+Enter from any field of the form
  await fresh.keyboard.press("Control+Enter");
  assert.equal(await waitState(fresh, ["done", "error"]), "done", await fresh.textContent("#error"));
  const again = await download(fresh);
  assert.ok(again.bytes.equals(original.bytes), "the regenerated PNG is the downloaded one, byte for byte");
  await shot(fresh, "png-settings-restored");

  // Esc cancels a run
  await fresh.fill("#decoder_steps", "40");
  await fresh.keyboard.press("Control+Enter");
  await fresh.waitForFunction(() => Number(document.body.dataset.steps) >= 3);
  await fresh.keyboard.press("Escape");
  assert.equal(await waitState(fresh, ["ready", "done", "error"]), "ready", "Esc cancelled the run");

  // pasting restores too
  await fresh.fill("#seed", "9");
  assert.match(await restoredAfter(fresh, () => give(fresh, "paste", original.bytes, "image.png")), /^Restored from image\.png: “horse”/);
  assert.deepEqual(await form(fresh), made);

  // a PNG without our chunks is just a picture; a hostile one is one sentence; both leave the form alone
  await fresh.fill("#seed", "9");
  const plain = readFileSync(join(ROOT, "www/gallery/cat-face.png"));
  assert.equal(await restoredAfter(fresh, () => give(fresh, "drop", plain, "cat-face.png")), "cat-face.png carries no unclip settings: it is just a picture (open it in Edit or Remix to use it).");
  const hostile = withSettings(original.bytes, texts.unclip.replace("\"prior_guidance\":3.0", "\"prior_guidance\":NaN"));
  assert.match(await restoredAfter(fresh, () => give(fresh, "drop", hostile, "nan.png")), /^nan\.png's unclip settings are not the record unclip writes \(expected value at line 1 column \d+\): the file was changed or made by another program, so give the settings as flags instead$/);
  const absurd = withSettings(original.bytes, texts.unclip.replace("\"decoder_steps\":2", "\"decoder_steps\":99999"));
  assert.match(await restoredAfter(fresh, () => give(fresh, "drop", absurd, "steps.png")), /steps\.png's unclip settings cannot be used: decoder steps must be between 2 and 1000 \(got 99999\)/);
  assert.equal(await fresh.inputValue("#seed"), "9");

  // a picture from another model restores, and says the picture will differ
  const other = withSettings(original.bytes, JSON.stringify({ ...record, model: { ...record.model, name: "other-model", sha256: "0".repeat(64) } }));
  assert.match(await restoredAfter(fresh, () => give(fresh, "drop", other, "other.png")), /seed 3, .*; it was drawn by other-model 0 and this page runs tiny-unclip 0, so the picture will differ\.$/);
  await context.close();
  console.log(`png settings browser test: ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
