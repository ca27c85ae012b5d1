// The app installs: both pages link a web app manifest whose icons load, Chromium reports no installability
// error, and the service worker's offline shell lists every file the site is made of.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { tmpdir } from "node:os";
import { launchWithProfile, waitState } from "./browser.mjs";
import { ROOT, serverAndBrowser } from "./setup.mjs";

const env = serverAndBrowser();

test("both pages are installable: a manifest with loadable icons and no installability error", async () => {
  const context = await launchWithProfile(mkdtempSync(join(tmpdir(), "unclip-profile-"))); // installing needs a profile
  for (const path of ["?model=tiny", "learn.html?model=tiny"]) {
    const page = await context.newPage();
    await page.goto(`${env.server.url}${path}`);
    await waitState(page, ["ready", "error"]);
    const manifest = await page.evaluate(async () => {
      const m = await (await fetch(document.querySelector('link[rel="manifest"]').href)).json();
      const icons = await Promise.all(m.icons.map(async (i) => {
        const img = new Image();
        img.src = new URL(i.src, document.querySelector('link[rel="manifest"]').href).href;
        await img.decode();
        return { sizes: i.sizes, width: img.naturalWidth, height: img.naturalHeight };
      }));
      return { ...m, icons };
    });
    assert.equal(manifest.short_name, "unclip");
    assert.equal(manifest.display, "standalone");
    for (const i of manifest.icons.filter((i) => i.sizes !== "any")) assert.equal(`${i.width}x${i.height}`, i.sizes);
    const cdp = await context.newCDPSession(page);
    const { installabilityErrors } = await cdp.send("Page.getInstallabilityErrors");
    assert.deepEqual(installabilityErrors, [], `${path}: ${JSON.stringify(installabilityErrors)}`);
    await page.close();
  }
  await context.close();
});

test("the service worker's offline shell lists every file of the site", () => {
  const www = join(ROOT, "www");
  const walk = (d) => readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : [join(d, f)]));
  const site = walk(www).map((f) => relative(www, f)).filter((f) => f !== "sw.js").sort();
  const shell = JSON.parse(readFileSync(join(www, "sw.js"), "utf8").match(/const FILES = (\[[^\]]*\])/)[1]);
  const missing = site.filter((f) => !shell.includes(f));
  assert.deepEqual(missing, [], "files the offline app would lack");
  assert.ok(shell.includes("pkg/unclip_bg.wasm") && shell.includes("./"));
});
