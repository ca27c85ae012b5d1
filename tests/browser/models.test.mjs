// Your own model in the page, in headless Chromium against a real HTTP server: a folder `unclip convert` wrote
// is opened (the <input webkitdirectory> path), verified, stored under its name, chosen in the model menu and kept
// in the URL, draws what the same model served by URL draws, reopens from storage after a reload, and is deleted
// from the Storage panel; a corrupted file, a folder without model.json, a model too big for a web page and a URL
// on another site each get one sentence.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openPage, waitState, resultPixels, shot } from "./browser.mjs";
import { ROOT, serverAndBrowser } from "./setup.mjs";

const SETTINGS = "prompt=horse&seed=0&prior_steps=2&decoder_steps=2&sr_steps=2";
const env = serverAndBrowser();

/// A copy of the served tiny model's folder, changed by `edit(dir)`.
function folder(edit = () => {}) {
  const dir = join(mkdtempSync(join(tmpdir(), "unclip-own-")), "my-model");
  cpSync(join(ROOT, "dist/models/tiny"), dir, { recursive: true });
  edit(dir);
  return dir;
}

async function openFolder(page, dir) {
  await page.setInputFiles("#model-folder-input", dir);
  return waitState(page, ["ready", "error"]);
}

async function generate(page) {
  await page.click("#generate");
  assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
  return (await resultPixels(page)).data;
}

test("a model folder opens, is verified and stored under its name, runs, reopens after a reload and is deleted", async () => {
  const context = await env.browser.newContext();
  const page = await openPage(context, `${env.server.url}?model=tiny&${SETTINGS}`);
  assert.equal(await waitState(page, ["ready", "error"]), "ready", await page.textContent("#error"));
  const served = await generate(page);
  const name = JSON.parse(readFileSync(join(ROOT, "dist/models/tiny/model.json"), "utf8")).name;

  await page.click("#settings summary");
  assert.equal(await openFolder(page, folder()), "ready", await page.textContent("#error"));
  assert.match(await page.textContent("#load-text"), new RegExp(`${name} .* ready`));
  assert.match(page.url(), new RegExp(`local=${name}`));
  assert.doesNotMatch(page.url(), /model=tiny/);
  assert.equal(await page.$eval("#model-menu", (s) => s.value), `local:${name}`);
  assert.deepEqual(await generate(page), served, "the same weights from a folder draw the same picture");
  assert.match(page.url(), new RegExp(`local=${name}.*prompt=horse`), "a run keeps the model in the URL");

  await page.click("#storage summary");
  const row = page.locator(`#storage-models li[data-name="${name}"]`, { hasText: "your folder" });
  await row.waitFor();
  assert.match(await row.textContent(), /\d+\.\d MB in 9 files \(your folder, licence: /); // 8 listed files + model.json
  await shot(page, "own-model-stored");

  // a reload opens it from this browser's storage, with no folder
  await page.reload();
  assert.equal(await waitState(page, ["ready", "error"]), "ready", await page.textContent("#error"));
  assert.match(await page.textContent("#load-text"), new RegExp(`${name} .* ready`));
  assert.ok((await page.evaluate(() => window.__loadLog)).some((t) => /from the cache/.test(t)));

  // the menu goes back to the served model; Storage deletes the stored folder
  await page.click("#settings summary");
  await page.selectOption("#model-menu", "model:default");
  assert.equal(await waitState(page, ["ready", "error"]), "ready", await page.textContent("#error"));
  assert.doesNotMatch(page.url(), /local=/);
  await page.click("#storage summary");
  await page.locator(`#storage-models li[data-name="${name}"]`, { hasText: "your folder" }).getByRole("button", { name: `Delete ${name}` }).click();
  await page.waitForFunction((n) => ![...document.querySelectorAll("#storage-models li")].some((li) => li.dataset.name === n && /your folder/.test(li.textContent)), name);
  await page.goto(`${env.server.url}?local=${name}&${SETTINGS}`);
  assert.equal(await waitState(page, ["ready", "error"]), "error");
  assert.match(await page.textContent("#error"), new RegExp(`“${name}” is not stored in this browser .* open its folder again`));
  await context.close();
});

test("a corrupted file, a folder without model.json, a model too big and another site's URL are refused with a sentence", async () => {
  const context = await env.browser.newContext();
  const page = await openPage(context, `${env.server.url}?model=tiny&${SETTINGS}`);
  assert.equal(await waitState(page, ["ready", "error"]), "ready", await page.textContent("#error"));
  await page.click("#settings summary");

  const corrupt = folder((dir) => {
    const bytes = readFileSync(join(dir, "decoder.gguf"));
    bytes[bytes.length - 10] ^= 0xff;
    writeFileSync(join(dir, "decoder.gguf"), bytes);
  });
  assert.equal(await openFolder(page, corrupt), "error");
  assert.match(await page.textContent("#error"), /decoder\.gguf with sha256 .*hashed to/);
  await page.click("#storage summary");
  await page.waitForFunction(() => document.getElementById("storage-text").textContent !== "…");
  assert.doesNotMatch(await page.textContent("#storage-models"), /your folder/, "nothing of it is stored");

  assert.equal(await openFolder(page, folder((dir) => rmSync(join(dir, "model.json")))), "error");
  assert.match(await page.textContent("#error"), /the folder has no model\.json: choose a folder that `unclip convert` wrote/);

  const huge = folder((dir) => {
    const m = JSON.parse(readFileSync(join(dir, "model.json"), "utf8"));
    m.decoder.bytes = 3 * 1024 ** 3;
    writeFileSync(join(dir, "model.json"), JSON.stringify(m));
  });
  assert.equal(await openFolder(page, huge), "error");
  assert.match(await page.textContent("#error"), /has \d+ MiB of weights, more than the 2048 MiB a web page can load .* --dtype q8_0/);

  await page.fill("#model-url", "https://example.com/models/x/");
  await page.click("#model-url-load");
  assert.equal(await waitState(page, ["ready", "error"]), "error");
  assert.match(await page.textContent("#error"), /is on another site: this page loads models only from its own/);

  await page.fill("#model-url", "models/tiny/");
  await page.click("#model-url-load");
  assert.equal(await waitState(page, ["ready", "error"]), "ready", await page.textContent("#error"));
  assert.match(page.url(), /model_url=models%2Ftiny%2F/);
  await context.close();
});
