// The npm package from other origins (README, "Use it in your own page"): the packed tarball's contents served
// from origin A (a CDN), the models and pictures from origin C, and a plain page on origin B (not cross-origin
// isolated, under the CSP the README gives) whose <unclip-generate … autorun> draws the same pixels as the app for
// the same settings, says it runs one thread and why, and keeps the weights in B's cache; <unclip-forward> draws the
// lesson's x_t; on an isolated host it runs on every core; the API refuses bad settings with the engine's code,
// edits and varies; a run reads back only the step previews it asks for; the .d.ts type-checks a small consumer (tsc --noEmit).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, openPage, waitState, shotOf } from "./browser.mjs";
import { decodePng, itxt } from "./png.mjs";
import { startServer } from "./server.mjs";
import { ROOT } from "./setup.mjs";
import { pack } from "../../package/build.mjs";

// the tiny random checkpoint at the fast settings of generate.test.mjs; the app at one thread, as the plain host
const RUN = { prompt: "horse", seed: 0, prior_steps: 2, decoder_steps: 2, sr_steps: 2 };
const env = {};

before(async () => {
  env.tmp = mkdtempSync(join(tmpdir(), "unclip-package-test-"));
  const started = Date.now();
  env.tarball = pack(env.tmp);
  const unpacked = join(env.tmp, "node_modules", "unclip");
  mkdirSync(unpacked, { recursive: true });
  execFileSync("tar", ["xzf", env.tarball, "-C", unpacked, "--strip-components=1"]);
  console.log(`packed and unpacked ${env.tarball} in ${Date.now() - started} ms`);
  env.cdn = await startServer(unpacked, { isolate: false, cors: true }); // origin A
  env.models = await startServer(join(ROOT, "dist"), { isolate: false, cors: true }); // origin C
  env.hostDir = join(env.tmp, "host");
  mkdirSync(env.hostDir);
  env.host = await startServer(env.hostDir, { isolate: false }); // origin B: a plain static host
  env.isolatedDir = join(env.tmp, "isolated");
  mkdirSync(env.isolatedDir);
  env.isolated = await startServer(env.isolatedDir); // origin B': a host sending COOP/COEP
  env.app = await startServer(join(ROOT, "dist"));
  env.browser = await launch();
});
after(async () => {
  await env.browser?.close();
  for (const s of [env.cdn, env.models, env.host, env.isolated, env.app]) await s?.close();
  if (env.tmp) rmSync(env.tmp, { recursive: true, force: true });
});

const origin = (s) => s.url.replace(/\/$/, "");
const attrs = (settings) => Object.entries(settings).map(([k, v]) => `${k.replaceAll("_", "-")}="${v}"`).join(" ");

/// The host page of origin B: the README's CSP with A and C in it, the elements, and a script recording their events.
function hostPage(dir = env.hostDir, elements = null) {
  const [a, c] = [origin(env.cdn), origin(env.models)];
  const csp = `default-src 'self'; script-src 'self' ${a} 'wasm-unsafe-eval'; worker-src blob:; connect-src 'self' ${a} ${c}; img-src 'self' ${c} blob:`;
  writeFileSync(join(dir, "host.js"), `window.__steps = 0;
document.addEventListener("unclip-step", () => window.__steps++);
document.addEventListener("unclip-done", async (e) => { window.__done = Array.from(new Uint8Array(await e.detail.blob.arrayBuffer())); });
document.addEventListener("unclip-error", (e) => { window.__error = e.detail; });
`);
  writeFileSync(join(dir, "index.html"), `<!doctype html>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<title>unclip from another origin</title>
<script src="host.js"></script>
<script type="module" src="${a}/unclip-element.js"></script>
${elements ?? `<unclip-generate id="gen" model="${c}/models/tiny/" ${attrs(RUN)} autorun></unclip-generate>
<unclip-forward id="fwd" image="${c}/gallery/cat-face.png" schedule="linear" t="300"></unclip-forward>`}
`);
}

test("from another origin: the package on A, the model on C, a plain page on B draws the app's pixels on one thread", async () => {
  hostPage();
  const context = await env.browser.newContext();
  const started = Date.now();
  const page = await openPage(context, env.host.url);
  await page.waitForFunction(() => window.__done || window.__error, null, { timeout: 120_000 });
  assert.equal(await page.evaluate(() => window.__error), undefined);
  const ms = Date.now() - started;
  const png = Buffer.from(await page.evaluate(() => window.__done));
  const host = await page.evaluate(() => {
    const gen = document.getElementById("gen");
    return { isolated: self.crossOriginIsolated, state: gen.getAttribute("state"), threads: gen.dataset.threads, steps: window.__steps,
      status: gen.shadowRoot.querySelector('[part~="status"]').textContent };
  });
  assert.equal(host.isolated, false);
  assert.equal(host.state, "done");
  assert.equal(host.steps, 2 + 2 + 2, "one unclip-step event per step");
  assert.equal(host.threads, "1");
  assert.match(host.status, /backend: cpu — .*; 1 thread: this page is not cross-origin isolated \(its server sends no Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp\), so the CPU backend runs on one thread/);
  const cached = await page.evaluate(async () => (await (await caches.open("unclip-models-v1")).keys()).map((r) => r.url));
  assert.ok(cached.some((u) => u.startsWith(`${origin(env.models)}/models/tiny/decoder.gguf`)) || cached.some((u) => u.includes("/models/tiny/decoder")), `the weights in B's cache: ${cached.join(", ")}`);
  assert.ok(cached.every((u) => u.startsWith(origin(env.models))), "under the model's own URLs");

  // <unclip-forward>: x_t drawn from C's picture, unlike x0
  await page.waitForFunction(() => document.getElementById("fwd").getAttribute("state") === "drawn", null, { timeout: 30_000 });
  const forward = await page.evaluate(() => {
    const root = document.getElementById("fwd").shadowRoot;
    const read = (part) => Array.from(root.querySelector(`canvas[part~="${part}"]`).getContext("2d").getImageData(0, 0, 64, 64).data);
    return { x0: read("x0"), xt: read("xt"), numbers: root.querySelector('[part~="numbers"]').textContent };
  });
  assert.match(forward.numbers, /^t = 300 \(linear\): ᾱ_t = 0\.\d+/);
  assert.ok(new Set(forward.x0).size > 16, "the picture drawn");
  assert.ok(forward.xt.some((v, i) => Math.abs(v - forward.x0[i]) > 8), "x_t is the noised picture");
  assert.deepEqual(await page.evaluate(() => window.__cspViolations), [], "nothing blocked by the README's CSP");
  await shotOf(page, "package-host");
  await context.close();

  // the app, same settings, one thread
  const appContext = await env.browser.newContext();
  const q = new URLSearchParams({ model: "tiny", ...RUN, threads: 1, autorun: 1 });
  const app = await openPage(appContext, `${env.app.url}?${q}`);
  assert.equal(await waitState(app, ["done", "error"]), "done", await app.textContent("#error"));
  const appPng = Buffer.from((await app.getAttribute("#result", "src")).split(",")[1], "base64"); // the engine's PNG as a data: URL
  await appContext.close();
  const [mine, theirs] = [decodePng(png), decodePng(appPng)];
  assert.deepEqual([mine.width, mine.height], [theirs.width, theirs.height]);
  assert.ok(mine.frames[0].equals(theirs.frames[0]), "the same pixels as the app");
  // README ("Use it in your own page") says byte for byte: the settings chunks too (the same model, the same record)
  assert.ok(png.equals(appPng), "the same PNG file as the app's, byte for byte");
  const settings = JSON.parse(itxt(png).unclip);
  assert.equal(settings.prompt, "horse");
  assert.equal(settings.seed, 0);
  console.log(`the host page's first picture in ${ms} ms (package, model and wasm fetched cross-origin)`);
});

test("on a cross-origin isolated host the element runs the CPU backend on every core", async () => {
  hostPage(env.isolatedDir);
  const context = await env.browser.newContext();
  const page = await openPage(context, env.isolated.url);
  await page.waitForFunction(() => window.__done || window.__error, null, { timeout: 120_000 });
  assert.equal(await page.evaluate(() => window.__error), undefined);
  const host = await page.evaluate(() => {
    const gen = document.getElementById("gen");
    return { isolated: self.crossOriginIsolated, threads: gen.dataset.threads, cores: navigator.hardwareConcurrency, status: gen.shadowRoot.querySelector('[part~="status"]').textContent };
  });
  assert.equal(host.isolated, true);
  const want = Math.min(host.cores, 8);
  assert.equal(host.threads, String(want), "one thread per core");
  if (want > 1) assert.match(host.status, new RegExp(`backend: cpu — .*; ${want} threads \\(shared-memory wasm\\)`));
  await context.close();
});

test("the element says the model's size first: the bundled model waits for a click, and saveData stops autorun", async () => {
  const c = origin(env.models);
  const weights = (name) => Object.values(JSON.parse(readFileSync(join(ROOT, "dist/models", name, "model.json"), "utf8")))
    .filter((v) => v && typeof v === "object" && typeof v.file === "string");
  const ggufHits = () => [...env.models.hits.keys()].filter((n) => n.endsWith(".gguf"));
  const offered = async (page) => {
    await page.waitForFunction(() => ["offer", "error", "loading"].includes(document.getElementById("gen").getAttribute("state")), null, { timeout: 60_000 });
    await page.waitForTimeout(300); // a load that would start late starts here
    assert.equal(await page.getAttribute("#gen", "state"), "offer");
    assert.deepEqual(ggufHits(), [], "no weights fetched before a click");
    return page.evaluate(() => document.getElementById("gen").shadowRoot.querySelector('[part~="status"]').textContent);
  };

  // the bundled model (over the size that loads at once), no autorun: its size, then the click downloads
  const bytes = weights("default").reduce((sum, f) => sum + f.bytes, 0);
  hostPage(env.hostDir, `<unclip-generate id="gen" model="${c}/models/default/" ${attrs(RUN)}></unclip-generate>`);
  env.models.hits.clear();
  const context = await env.browser.newContext();
  const page = await openPage(context, env.host.url);
  const status = await offered(page);
  assert.ok(status.includes(`(${(bytes / 1e6).toFixed(1)} MB)`), `the size is shown: ${status}`);
  await page.locator("#gen").locator('[part~="button"]').click();
  for (let i = 0; i < 200 && !ggufHits().length; i++) await page.waitForTimeout(100);
  assert.ok(ggufHits().length > 0, "the click starts the download");
  await context.close();

  // a small model with autorun, where the browser asks to save data: nothing without a click, then the run
  hostPage(env.hostDir, `<unclip-generate id="gen" model="${c}/models/tiny/" ${attrs(RUN)} autorun></unclip-generate>`);
  env.models.hits.clear();
  const saving = await env.browser.newContext();
  await saving.addInitScript(() => Object.defineProperty(Navigator.prototype, "connection", { get: () => ({ saveData: true }) }));
  const page2 = await openPage(saving, env.host.url);
  assert.match(await offered(page2), /save data/);
  await page2.locator("#gen").locator('[part~="button"]').click();
  await page2.waitForFunction(() => window.__done || window.__error, null, { timeout: 120_000 });
  assert.equal(await page2.evaluate(() => window.__error), undefined);
  assert.deepEqual(ggufHits().sort(), weights("tiny").map((f) => f.file).filter((n) => n.endsWith(".gguf")).sort(), "one click, one download");
  await saving.close();
});

/// The host page without the elements, for the API alone, in a new context: {context, page}.
async function apiPage() {
  hostPage();
  writeFileSync(join(env.hostDir, "api.html"), readFileSync(join(env.hostDir, "index.html"), "utf8").replace(/<unclip-[\s\S]*$/, ""));
  const context = await env.browser.newContext();
  return { context, page: await openPage(context, `${env.host.url}api.html`) };
}

test("the API from another origin: settings refused with the engine's code, an edit, variations, close", async () => {
  const { context, page } = await apiPage();
  const out = await page.evaluate(async ({ a, c, run }) => {
    const { Unclip, UnclipError } = await import(`${a}/unclip.js`);
    const engine = await Unclip.load({ model: `${c}/models/tiny/` });
    const signal = new AbortController();
    const refused = await engine.generate({ ...run, prior_steps: 1 }, { signal: signal.signal }).catch((e) => ({ error: e instanceof UnclipError && e instanceof Error, code: e.code, message: e.message }));
    // the refused run's signal, aborted during the next run (which has none), cancels nothing
    let aborted = false;
    const next = await engine.generate(run, { onStep: () => { if (!aborted) { aborted = true; signal.abort(); } } }).then(() => "done", (e) => e.code);
    const picture = new ImageData(64, 64);
    for (let p = 0; p < 64 * 64; p++) picture.data.set([200, (p % 64) * 4, 40, 255], p * 4);
    const steps = [];
    const edited = await engine.edit({ ...run, strength: 0.5 }, { image: picture }, { onStep: (s) => steps.push([s.stage, !!s.xt, !!s.x0]), previews: ["x0"] });
    const variations = await engine.variations(picture, { ...run, count: 1 });
    engine.close();
    const closed = await engine.generate(run).catch((e) => e.phase);
    const text = async (blob) => new TextDecoder("latin1").decode(await blob.arrayBuffer());
    return { refused, next, steps, edited: await text(edited.blob), width: edited.pixels.width, variations: variations.length, variation: await text(variations[0].blob), closed };
  }, { a: origin(env.cdn), c: origin(env.models), run: RUN });
  assert.equal(out.refused.error, true);
  assert.equal(out.refused.code, "bad_input", out.refused.message);
  assert.equal(out.next, "done", "a finished run's AbortSignal no longer reaches the engine");
  assert.ok(out.steps.length > 0 && out.steps.every(([, xt]) => !xt), "only the asked-for previews");
  assert.ok(out.steps.some(([, , x0]) => x0));
  assert.match(out.edited, /"edit":\{/, "the edit's PNG carries its edit settings");
  assert.equal(out.variations, 1);
  assert.match(out.variation, /"remix":\{"op":"variations"/);
  assert.equal(out.closed, "closed");
  await context.close();
});

test("step detail on demand: the engine reads back only the asked-for previews, and the image is the same", async () => {
  const { context, page } = await apiPage();
  const out = await page.evaluate(async ({ a, c, run }) => {
    const { Unclip, PREVIEWS } = await import(`${a}/unclip.js`);
    const engine = await Unclip.load({ model: `${c}/models/tiny/` });
    const FIELDS = ["xt", "x0", "eps", "eps_uncond", "eps_cond", "embedding", "cosine"];
    const runWith = async (settings, options) => {
      const steps = [];
      let textEmbedding = false;
      const result = await engine.generate(settings, {
        ...options,
        onStep: (s) => steps.push({ stage: s.stage, i: s.i, has: FIELDS.filter((k) => s[k] !== undefined) }),
        onStage: (m) => { if (m.type === "stage_end" && m.stage === "text") textEmbedding = m.text_embedding?.length > 0; },
      });
      return { steps, textEmbedding, png: Array.from(new Uint8Array(await result.blob.arrayBuffer())) };
    };
    const all = await runWith(run, { previews: PREVIEWS.kinds });
    const none = await runWith(run, { previews: [] });
    const everyOther = await runWith({ ...run, decoder_steps: 3 }, { previews: ["x0"], every: 2 });
    const refused = await engine.generate(run, { onStep: () => {}, previews: ["noise"] }).catch((e) => e.code);
    engine.close();
    return { kinds: PREVIEWS.kinds, all, none, everyOther, refused };
  }, { a: origin(env.cdn), c: origin(env.models), run: RUN });
  assert.deepEqual(out.kinds, ["xt", "x0", "eps", "embedding"]);
  assert.ok(out.all.steps.length > 0);
  for (const s of out.all.steps) {
    // super-res runs unguided: ε̂ without its two parts
    const want = { prior: ["embedding", "cosine"], decoder: ["xt", "x0", "eps", "eps_uncond", "eps_cond"], super_res: ["xt", "x0", "eps"] }[s.stage];
    assert.deepEqual(s.has, want, `${s.stage} step ${s.i} with every preview`);
  }
  assert.equal(out.all.textEmbedding, true, "the text stage's end carries the text embedding");
  assert.equal(out.none.steps.length, out.all.steps.length, "every step is still reported");
  assert.ok(out.none.steps.every((s) => s.has.length === 0), "no step pixels or floats without previews");
  assert.equal(out.none.textEmbedding, false);
  assert.deepEqual(out.none.png, out.all.png, "the same PNG bytes with and without previews");
  const decoder = out.everyOther.steps.filter((s) => s.stage === "decoder");
  assert.deepEqual(decoder.map((s) => s.has), [["x0"], [], ["x0"]], "x̂0 at steps 0 and 2 (every 2nd, and the last) of 3");
  assert.equal(out.refused, "bad_input");
  await context.close();
});

test("the package's .d.ts type-checks a small consumer (tsc --noEmit)", () => {
  const dir = env.tmp;
  copyFileSync(join(ROOT, "tests/browser/package_consumer.ts"), join(dir, "consumer.ts"));
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({
    compilerOptions: { target: "ES2022", module: "ESNext", moduleResolution: "Bundler", lib: ["ES2022", "DOM"], strict: true, noEmit: true, types: [] },
    files: ["consumer.ts"],
  }));
  execFileSync(join(ROOT, "node_modules/.bin/tsc"), ["-p", dir], { encoding: "utf8" });
});
