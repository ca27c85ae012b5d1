// The X/Y grid (docs/formats.md, "Pictures") in real Chromium on the tiny model at 2 steps per stage: a 2 × 3 grid
// of seed × decoder guidance fills in cell by cell, its cells equal the single runs with their settings pixel for
// pixel, and the grid downloads as one labelled PNG whose record places every cell, which `unclip info` prints.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ARTIFACTS, download, openPage, resultPixels, shotOf, waitState } from "./browser.mjs";
import { decodePng, itxt } from "./png.mjs";
import { ROOT, serverAndBrowser } from "./setup.mjs";

const env = serverAndBrowser();

test("a 2 × 3 grid: cells fill in as they finish, each is its single run, the PNG carries the grid", async () => {
  const started = Date.now();
  const context = await env.browser.newContext({ acceptDownloads: true, viewport: { width: 900, height: 700 } });
  const page = await openPage(context, `${env.server.url}?model=tiny&prior_steps=2&decoder_steps=2&sr_steps=2&prompt=horse`);
  assert.equal(await waitState(page, ["ready", "error"]), "ready", await page.textContent("#error"));
  await page.click("#grid > summary");
  await page.selectOption("#grid-x", "seed");
  await page.fill("#grid-x-values", "1, 2, 3");
  await page.selectOption("#grid-y", "decoder_guidance");
  await page.fill("#grid-y-values", "2 8");
  await page.evaluate(() => { // how many cells were drawn each time one was
    window.__filled = [];
    new MutationObserver(() => window.__filled.push(document.querySelectorAll("#grid-table canvas[data-done]").length))
      .observe(document.getElementById("grid-table"), { subtree: true, attributes: true, attributeFilter: ["data-done"] });
  });
  await page.click("#grid-run");
  await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.grid), null, { timeout: 120_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.grid), "done", await page.textContent("#grid-status"));
  assert.deepEqual(await page.evaluate(() => window.__filled), [1, 2, 3, 4, 5, 6], "one cell at a time, as each finished");
  const cells = await page.$$eval("#grid-table canvas", (cs) => cs.map((c) => ({
    col: Number(c.dataset.col), row: Number(c.dataset.row), width: c.width, height: c.height,
    data: Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data),
  })));
  assert.equal(cells.length, 6);
  await shotOf(page.locator("#grid"), "grid");

  // the PNG: labelled margins, every cell where the record says, the record the engine checks
  const file = await download(page, "#grid-download");
  writeFileSync(join(ARTIFACTS, "grid-download.png"), file.bytes);
  const { unclip, parameters } = itxt(file.bytes);
  const record = JSON.parse(unclip);
  assert.deepEqual([record.grid.x, record.grid.y], [{ setting: "seed", values: [1, 2, 3] }, { setting: "decoder_guidance", values: [2, 8] }]);
  assert.equal(record.prompt, "horse");
  assert.match(parameters, /Grid: seed × decoder guidance, Grid X: "1, 2, 3", Grid Y: "2, 8"/);
  const { width, frames: [grid] } = decodePng(file.bytes);
  const { left, top, cell_width: cw, cell_height: ch } = record.grid;
  assert.ok(left > 0 && top > 0, "room for the labels");
  for (const c of cells) {
    assert.deepEqual([c.width, c.height], [cw, ch]);
    const crop = [];
    for (let y = 0; y < ch; y++) crop.push(...grid.subarray(((top + c.row * ch + y) * width + left + c.col * cw) * 4, ((top + c.row * ch + y) * width + left + (c.col + 1) * cw) * 4));
    assert.deepEqual(crop, c.data, `cell (${c.col}, ${c.row}) in the grid PNG`);
  }
  const dir = mkdtempSync(join(tmpdir(), "unclip-grid-"));
  writeFileSync(join(dir, "grid.png"), file.bytes);
  const info = execFileSync(join(ROOT, "target/debug/unclip"), ["info", join(dir, "grid.png")], { encoding: "utf8" });
  assert.match(info, /an X\/Y grid of seed \(3\) × decoder guidance \(2\)/);

  // each cell is the single run with its settings: all six differ, and two cells that share neither a column nor a
  // row (so a cell drawn in another's place would show) are redrawn alone (each run costs ~0.8 s here)
  assert.equal(new Set(cells.map((c) => c.data.join())).size, 6, "every cell differs");
  await page.click("#settings > summary");
  for (const c of cells.filter((c) => (c.col === 2 && c.row === 0) || (c.col === 0 && c.row === 1))) {
    await page.fill("#seed", String([1, 2, 3][c.col]));
    await page.fill("#decoder_guidance", String([2, 8][c.row]));
    await page.click("#generate");
    assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
    assert.deepEqual((await resultPixels(page)).data, c.data, `cell (${c.col}, ${c.row}) = the single run`);
  }
  await context.close();
  console.log(`grid browser test: ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
