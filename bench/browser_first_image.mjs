// Time to first image in headless Chromium on the CPU (wasm simd128) path, for the bundled default
// model at diffusers' default steps, with a cold cache (download included) and a warm one; plus the
// wasm sizes. Writes a section of docs/benchmarks.md. Run after `./build.sh build`:
//     node bench/browser_first_image.mjs
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { startServer } from "../tests/browser/server.mjs";
import { launch, waitState } from "../tests/browser/browser.mjs";
import { writeSection } from "./sections.mjs";

const ROOT = new URL("../", import.meta.url).pathname;
const server = await startServer(`${ROOT}dist`);
const browser = await launch();
const context = await browser.newContext();
const page = await context.newPage();

async function firstImage(query) {
  const t0 = Date.now();
  await page.goto(`${server.url}?${query}&autorun=1`);
  const state = await waitState(page, ["done", "error"], 600_000);
  if (state !== "done") throw new Error(await page.textContent("#error"));
  const stages = await page.$$eval(".stage small", (els) => els.map((e) => e.textContent));
  return { ms: Date.now() - t0, stages };
}

const query = "prompt=a%20happy%20dog&seed=0";
const cold = await firstImage(query);
const warm = await firstImage(query);
await browser.close();
await server.close();

const wasm = readFileSync(`${ROOT}dist/pkg/unclip_bg.wasm`);
const info = JSON.parse(readFileSync(`${ROOT}dist/pkg/build-info.json`, "utf8"));
const model = JSON.parse(readFileSync(`${ROOT}dist/models/default/model.json`, "utf8"));
const body = `### Browser, CPU path (wasm simd128, headless Chromium)

| what | value |
|---|---|
| wasm after wasm-bindgen (before wasm-opt) | ${(info.wasm_raw_bytes / 1e6).toFixed(2)} MB |
| wasm after \`wasm-opt -O3\` | ${(wasm.length / 1e6).toFixed(2)} MB (${(gzipSync(wasm).length / 1e6).toFixed(2)} MB gzipped) |
| model | ${model.name} ${model.version}, ${(Object.values(model).filter((c) => c?.bytes).reduce((a, c) => a + c.bytes, 0) / 1e6 + model.tokenizer.bytes / 1e6).toFixed(1)} MB |
| time to first image, cold cache (download from localhost + 25/25/7 steps) | ${(cold.ms / 1000).toFixed(1)} s |
| time to first image, warm cache | ${(warm.ms / 1000).toFixed(1)} s |
| stages (warm) | ${warm.stages.join("; ")} |
`;
console.log(body);
writeSection(`${ROOT}docs/benchmarks.md`, "browser-cpu", body);
