// Soak: 100 consecutive generations on the tiny model, in the browser (headless Chromium, the real page
// and worker, CPU backend) and natively (`unclip bench --soak`, one process), with memory recorded after each:
// the worker's WebAssembly memory and the page's JS heap, and the native resident set. Writes docs/soak.md.
//
//   ./build.sh build && cargo build --release --bin unclip && node bench/soak.mjs [RUNS]
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { launch, openPage, waitState } from "../tests/browser/browser.mjs";
import { startServer } from "../tests/browser/server.mjs";

const ROOT = new URL("../", import.meta.url).pathname;
const RUNS = Number(process.argv[2] ?? 100);
const MIB = 2 ** 20;

async function browserSoak() {
  const server = await startServer(join(ROOT, "dist"));
  const browser = await launch();
  const page = await openPage(await browser.newContext(), `${server.url}?model=tiny&prompt=horse&prior_steps=2&decoder_steps=2&sr_steps=2&backend=cpu`);
  if ((await waitState(page, ["ready", "error"])) !== "ready") throw new Error(await page.textContent("#error"));
  const worker = page.workers().find((w) => new URL(w.url()).pathname.endsWith("/js/worker.js"));
  const rows = [];
  await page.click("#settings summary");
  for (let run = 1; run <= RUNS; run++) {
    await page.fill("#seed", String(run));
    const start = Date.now();
    await page.click("#generate");
    if ((await waitState(page, ["done", "error"])) !== "done") throw new Error(await page.textContent("#error"));
    const wasm = await worker.evaluate(() => import("./wasm.js").then((m) => m.wasm.memoryBytes()));
    const heap = await page.evaluate(() => performance.memory?.usedJSHeapSize ?? NaN);
    rows.push({ run, wasm_mib: wasm / MIB, heap_mib: heap / MIB, ms: Date.now() - start });
  }
  await browser.close();
  await server.close();
  return rows;
}

function nativeSoak() {
  const out = execFileSync(join(ROOT, "target/release/unclip"), ["bench", "--soak", String(RUNS), "--model", join(ROOT, "dist/models/tiny")], { encoding: "utf8" });
  return out.trim().split("\n").map((l) => JSON.parse(l));
}

const at = (rows, key, run) => rows[run - 1][key];
const picks = [1, 2, 5, 10, 25, 50, 75, 100].filter((r) => r <= RUNS);
const browser = await browserSoak();
const native = nativeSoak();
const fmt = (v) => v.toFixed(1);
const grow = (rows, key) => fmt(at(rows, key, RUNS) - at(rows, key, Math.min(10, RUNS)));
const md = `# Soak: ${RUNS} generations in a row

\`node bench/soak.mjs\` (the tiny test model, 2/2/2 steps, a new seed each run), ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, on this
machine (2 cores, headless Chromium from Debian, CPU backend). Memory after run N, in MiB:

| run | browser: wasm memory | browser: page JS heap | native: resident set |
|---:|---:|---:|---:|
${picks.map((r) => `| ${r} | ${fmt(at(browser, "wasm_mib", r))} | ${fmt(at(browser, "heap_mib", r))} | ${fmt(at(native, "rss_mib", r))} |`).join("\n")}

Growth from run 10 to run ${RUNS}: wasm memory ${grow(browser, "wasm_mib")} MiB, page JS heap ${grow(browser, "heap_mib")} MiB, native resident set
${grow(native, "rss_mib")} MiB. WebAssembly memory never shrinks, so a leak in the engine would show as steps in its column; the page
heap holds the History (at most 60 entries, history.js) and is garbage-collected when V8 chooses. Median time per
image: browser ${[...browser].sort((a, b) => a.ms - b.ms)[browser.length >> 1].ms} ms (page round trip), native ${fmt([...native].sort((a, b) => a.ms - b.ms)[native.length >> 1].ms)} ms.
`;
writeFileSync(join(ROOT, "docs/soak.md"), md);
console.log(md);
