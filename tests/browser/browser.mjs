// Headless Debian Chromium driven by playwright-core (never a downloaded browser).
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";

export const ARTIFACTS = new URL("../../test-results/", import.meta.url).pathname;
mkdirSync(ARTIFACTS, { recursive: true });

const OPTIONS = {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--enable-unsafe-webgpu"],
};

export async function launch() {
  return chromium.launch(OPTIONS);
}

/// A browser with a profile on disk (not incognito: what installing an app needs), as one context.
export async function launchWithProfile(dir) {
  return chromium.launchPersistentContext(dir, OPTIONS);
}

/// A new page that records every text #load-text shows (the streaming progress) in window.__loadLog.
export async function openPage(context, url) {
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.addInitScript(() => {
    window.__loadLog = [];
    window.__cspViolations = []; // what the page's Content-Security-Policy blocked
    addEventListener("securitypolicyviolation", (e) => window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
    addEventListener("DOMContentLoaded", () => {
      const el = document.getElementById("load-text");
      if (el) new MutationObserver(() => window.__loadLog.push(el.textContent)).observe(el, { childList: true, characterData: true, subtree: true });
    });
  });
  await page.goto(url);
  return page;
}

export async function waitState(page, states, timeout = 120_000) {
  const want = [].concat(states);
  await page.waitForFunction((w) => w.includes(document.body.dataset.state), want, { timeout });
  return page.evaluate(() => document.body.dataset.state);
}

/// The result image as RGBA bytes.
export async function resultPixels(page) {
  return page.evaluate(async () => {
    const img = document.getElementById("result");
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    return { width: c.width, height: c.height, data: Array.from(g.getImageData(0, 0, c.width, c.height).data) };
  });
}

export async function shot(page, name) {
  await page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true });
}

/// The file a click on `selector` downloads: {name, bytes} (the context needs acceptDownloads).
export async function download(page, selector = "#download") {
  const [file] = await Promise.all([page.waitForEvent("download"), page.click(selector)]);
  return { name: file.suggestedFilename(), bytes: readFileSync(await file.path()) };
}

/// A screenshot of one element, or of a page's viewport only: a small PNG in test-results/.
export async function shotOf(target, name) {
  await target.screenshot({ path: `${ARTIFACTS}${name}.png` });
}
