// A first visit says its size first (docs/architecture.md, "The pages"): on a fresh profile the bundled model's
// weights are not fetched before the first Generate, the page gives their size from model.json, the click
// downloads them and draws the image, and the next visit loads them from the cache at once; where the browser asks
// to save data, not even a small model or an autorun link fetches a byte without a click, on either page.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { openPage, resultPixels, waitState } from "./browser.mjs";
import { ROOT, serverAndBrowser } from "./setup.mjs";

const env = serverAndBrowser();

/// The files of a served model (model.json's components) and their total size.
function modelFiles(name) {
  const m = JSON.parse(readFileSync(join(ROOT, "dist/models", name, "model.json"), "utf8"));
  const files = Object.values(m).filter((v) => v && typeof v === "object" && typeof v.file === "string");
  return { names: files.map((f) => f.file), bytes: files.reduce((s, f) => s + f.bytes, 0) };
}

/// How many requests the server answered for each of `names` (tests/browser/server.mjs counts by file name).
const fetched = (names) => names.filter((n) => env.server.hits.get(n));

/// The page gives the download's size and waits; no model file was asked for.
async function offers(page, model, state = () => document.body.dataset.state === "unloaded", line = "#load-text") {
  await page.waitForFunction(state, null, { timeout: 60_000 });
  await page.waitForTimeout(300); // a load that would start late starts here
  assert.deepEqual(fetched(model.names), [], "no model file is fetched before a click");
  const text = await page.textContent(line);
  assert.ok(text.includes(`${(model.bytes / 1e6).toFixed(1)} MB download`), `the size is shown: ${text}`);
  return text;
}

test("a fresh profile fetches no weights before the first Generate, which downloads them and draws; the next visit loads from the cache", async () => {
  const model = modelFiles("default");
  env.server.hits.clear();
  const context = await env.browser.newContext();
  const url = `${env.server.url}?prompt=a%20red%20heart&seed=3&prior_steps=2&decoder_steps=2&sr_steps=2&prior_best_of=1&backend=cpu`;
  const page = await openPage(context, url);
  await offers(page, model);
  assert.equal(await page.isEnabled("#generate"), true);
  await page.click("#generate");
  assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
  assert.deepEqual(fetched(model.names), model.names, "the click downloaded every file");
  const { width, data } = await resultPixels(page);
  assert.ok(width > 0 && new Set(data).size > 16, "an image is drawn");
  env.server.hits.clear();
  await page.goto(url); // cached now: loaded at once, without a click and without the network
  assert.equal(await waitState(page, ["ready", "unloaded", "error"]), "ready", await page.textContent("#error"));
  assert.deepEqual(fetched(model.names.filter((n) => n.endsWith(".gguf"))), []);
  await context.close();
});

test("with saveData nothing is fetched without a click, not even a small model or an autorun link, on either page", async () => {
  const model = modelFiles("tiny"); // small enough to load at once (PRELOAD_BYTES) where data is not saved
  env.server.hits.clear();
  const context = await env.browser.newContext();
  await context.addInitScript(() => Object.defineProperty(Navigator.prototype, "connection", { get: () => ({ saveData: true }) }));
  const page = await openPage(context, `${env.server.url}?model=tiny&prompt=horse&seed=0&prior_steps=2&decoder_steps=2&sr_steps=2&autorun=1`);
  assert.match(await offers(page, model), /save data/);
  await page.click("#generate");
  assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
  assert.deepEqual(fetched(model.names), model.names);

  // the teaching page, in a context of its own (nothing cached): its panels wait too, and the first run downloads
  const learnContext = await env.browser.newContext();
  await learnContext.addInitScript(() => Object.defineProperty(Navigator.prototype, "connection", { get: () => ({ saveData: true }) }));
  env.server.hits.clear();
  const learn = await learnContext.newPage();
  await learn.goto(`${env.server.url}learn.html?model=tiny&prompt=horse&rseed=2&steps=5`);
  await offers(learn, model, () => document.body.dataset.prior === "ready", "#rev-status");
  await learn.click("#prior-run");
  await learn.waitForFunction(() => ["done", "error"].includes(document.body.dataset.prior), null, { timeout: 60_000 });
  assert.equal(await learn.evaluate(() => document.body.dataset.prior), "done", await learn.textContent("#prior-status"));
  assert.deepEqual(fetched(model.names), model.names);
  await learnContext.close();
  await context.close();
});
