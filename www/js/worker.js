// The module worker that owns the wasm instance and the GPU device. The page only sends
// messages (protocol.js); everything heavy happens here.

import { gpuFailed, ready, threading, wasm } from "./wasm.js";
import { clearCache, deleteModel, forget, loadModel, LoadError, probeModel, storageReport } from "./weights.js";
import { runRemix } from "./remix-worker.js";

let engine = null;
let busy = false; // a generation or remix is queued or running

/// One operation at a time: loads, generations and remixes run in the order they were sent, so a backend
/// switch or a second load waits for the run before it (and then finds the files in the cache), an engine is
/// freed only when nothing runs on it, and Cancel always reaches the engine that is running.
let queue = Promise.resolve();
function serial(op) {
  const run = queue.then(op);
  queue = run.catch(() => {});
  return run;
}

/// A lost or failing GPU during `run`: say so (to `job`'s panel) and run it again on the CPU.
async function withGpuFallback(run, job) {
  try {
    return await run();
  } catch (e) {
    if (!gpuFailed(e) || engine?.info().backend !== "webgpu") throw e;
    post({ type: "warning", job, message: `${e.message} — switching to the CPU backend and running again` });
    await startEngine("cpu", `the GPU failed during a run (${e.message}), so this runs on the CPU (wasm simd128)`);
    return run();
  }
}

const post = (msg, transfer = []) => self.postMessage(msg, transfer);

/// Picks the backend for `requested` ("auto" | "webgpu" | "cpu") and says why, in words shown to the user.
/// Auto takes WebGPU only on a hardware adapter: a software fallback (SwiftShader, WARP) is far slower
/// than the wasm CPU path (measured ~100x on a 1024² matmul here).
async function chooseBackend(requested) {
  if (requested === "cpu") return { backend: "cpu", reason: "you chose the CPU backend (wasm simd128)" };
  if (!navigator.gpu) return { backend: "cpu", reason: "this browser has no WebGPU, so this runs on the CPU (wasm simd128)" };
  const adapter = await navigator.gpu.requestAdapter().catch(() => null);
  if (!adapter) return { backend: "cpu", reason: "WebGPU is present but offers no adapter, so this runs on the CPU (wasm simd128)" };
  const info = adapter.info ?? {};
  const fallback = info.isFallbackAdapter ?? adapter.isFallbackAdapter;
  const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "unnamed";
  if (requested === "webgpu") {
    return { backend: "webgpu", reason: `you chose WebGPU: adapter ${name}${fallback ? " (a software fallback: expect it to be slower than the CPU path)" : ""}` };
  }
  if (fallback) {
    return { backend: "cpu", reason: `the only WebGPU adapter (${name}) is a software fallback, slower than the CPU path, so this runs on the CPU (wasm simd128); choose WebGPU to use it anyway` };
  }
  return { backend: "webgpu", reason: `WebGPU adapter: ${name}` };
}

/// The verified model files of the last load, kept so a backend switch needs no download.
let model = null;

async function startEngine(backend, reason) {
  engine?.free();
  engine = null;
  try {
    engine = await wasm.Engine.load(model.manifestText, model.files, backend);
  } catch (e) {
    if (backend !== "webgpu") throw e;
    post({ type: "warning", message: `WebGPU could not start (${e.message}); running on the CPU instead` });
    return startEngine("cpu", `WebGPU could not start (${e.message}), so this runs on the CPU (wasm simd128)`);
  }
  const m = model.manifest;
  post({ type: "ready", model: { name: m.name, version: m.version, license: m.license, attribution: m.attribution, recommended: m.recommended ?? {}, local: model.local }, identity: engine.modelIdentity(), info: engine.info(), reason, threading });
}

/// `source` with a url source's base made absolute (ending in /), refused where it is on another site.
function checkedSource(source) {
  if (source.kind !== "url") return source;
  const base = new URL(source.base, self.location.href);
  if (!base.href.endsWith("/")) base.href += "/";
  // the package's worker (package/unclip.js: self.unclipWorker, set by its same-origin shim) takes models from
  // any origin that sends CORS headers (README, "Use it in your own page")
  if (base.origin !== self.location.origin && !self.unclipWorker?.anyOrigin) {
    throw new LoadError(`${base.href} is on another site: this page loads models only from its own (${self.location.origin}), so copy the folder next to the page, or open it with “Open a model folder”`);
  }
  return { kind: "url", base: base.href };
}

/// Loads a model from `source` (weights.js: a served URL, a picked folder, or a folder picked before).
async function load(source, requested = "auto") {
  await ready;
  source = checkedSource(source);
  if (navigator.storage?.persist) await navigator.storage.persist().catch(() => false);
  const { backend, reason } = await chooseBackend(requested);
  for (let attempt = 0; ; attempt++) {
    const { manifestText, manifest, files, warnings, base } = await loadModel(source, (p) => post({ type: "load_progress", ...p }));
    for (const message of warnings) post({ type: "warning", message });
    model = { manifestText, manifest, files, local: source.kind !== "url" };
    try {
      return await startEngine(backend, reason);
    } catch (e) {
      // A cached copy that no longer verifies: delete it and fetch it again once.
      if (attempt === 0 && source.kind === "url" && (e.code === "size_mismatch" || e.code === "hash_mismatch")) {
        for (const entry of manifest.files) await forget(base, entry);
        post({ type: "warning", message: `${e.message} — the cached copy was deleted and is being fetched again` });
        continue;
      }
      throw e;
    }
  }
}

/// A generation, or with `edit` ({image, mask?}: RGBA pictures) an img2img or inpainting at params.strength; every
/// message of the run carries `job` where one is given (the X/Y grid's cells: grid.js); `previews`: the step
/// tensors to read back (protocol.js PREVIEWS; undefined: all).
async function generate(params, edit, job, previews) {
  if (!engine) throw new LoadError("the model is not loaded yet");
  const start = performance.now();
  const onEvent = (event) => {
    const transfer = ["xt", "x0", "eps", "eps_uncond", "eps_cond"].filter((k) => event[k]).map((k) => event[k].buffer);
    if (job) event.job = job;
    post(event, transfer);
  };
  const mask = edit?.mask ?? { rgba: new Uint8Array(0), width: 0, height: 0 };
  try {
    const out = await withGpuFallback(() => (edit
      ? engine.edit(params, edit.image.rgba, edit.image.width, edit.image.height, mask.rgba, mask.width, mask.height,
        params.strength ?? 1, params.resample ?? 1, onEvent, previews)
      : engine.generate(params, onEvent, undefined, previews)), job);
    const done = { type: "done", job, rgba: out.rgba, width: out.width, height: out.height, embedding: out.image_embedding, png: out.png, ms: performance.now() - start };
    post(done, [out.rgba.buffer, out.image_embedding.buffer, out.png.buffer]);
  } catch (e) {
    if (e.code === "cancelled") return post({ type: "cancelled", job });
    throw e;
  }
}

/// A generation or remix: refused while another one is queued or running, else queued behind any load.
async function run(op, job) {
  if (busy) return post({ type: "error", phase: job ?? "generate", job, message: "a generation is already running: cancel it first" });
  busy = true;
  try {
    return await serial(op);
  } finally {
    busy = false;
  }
}

/// A crash of the wasm engine (src/web/crash.rs) in words, or null for an ordinary error.
function crashMessage(e) {
  if (!(e instanceof WebAssembly.RuntimeError)) return null;
  const panic = wasm.lastPanic();
  const what = panic
    ? `the engine failed (${panic.replace(/\s+/g, " ")})`
    : `the engine ran out of memory or crashed (${e.message}; its WebAssembly memory had grown to ${(wasm.memoryBytes() / 2 ** 20).toFixed(0)} MiB of at most 4096 MiB)`;
  return `${what}; the page started a new engine and is loading the model again — then try again, with fewer or smaller settings if it was memory`;
}

self.onmessage = async ({ data }) => {
  const phase = data.type === "load" ? "load" : "generate";
  const job = data.type === "remix" ? "remix" : data.job; // which panel the answers go to
  try {
    await ready;
    switch (data.type) {
      case "load": // {source} (weights.js), or {modelUrl} (the teaching page)
        return await serial(() => load(data.source ?? { kind: "url", base: data.modelUrl }, data.backend));
      case "remix": // variations, interpolation, text diffs (remix-worker.js)
        if (data.op === "caps") return await serial(() => runRemix(engine, data, post));
        return await run(() => withGpuFallback(() => runRemix(engine, data, post), "remix"), "remix");
      case "generate":
        return await run(() => generate(data.params, data.edit, job, data.previews), job);
      case "grid_cells": // the X/Y grid's cells (src/web/grid.rs); needs no model
        return post({ type: "grid_cells", job, cells: wasm.gridCells(data.params, data.x, data.y) });
      case "grid_png": // the labelled grid the page drew, as a PNG carrying the grid's settings
        if (!engine) throw new LoadError("the model is not loaded yet");
        return post({ type: "grid_png", job, png: engine.gridPng(data.params, data.grid, data.rgba, data.width, data.height) });
      case "steps_png": // a run's steps as an APNG or a contact sheet (src/web/step_frames.rs); needs no model
        try {
          return post({ type: "steps_png", id: data.id, png: wasm.stepsPng(data.run_png, data.frames, data.rgba, data.sheet) });
        } catch (e) {
          return post({ type: "steps_png", id: data.id, error: e.message ?? String(e) });
        }
      case "cancel":
        return engine?.cancel();
      case "read_png": // the settings a picture carries (src/web/picture.rs); needs no model
        try {
          return post({ type: "png_settings", file: data.file, settings: wasm.readPngSettings(new Uint8Array(data.bytes), data.file) });
        } catch (e) {
          return post({ type: "png_settings", file: data.file, error: e.message ?? String(e) });
        }
      case "probe": // what loading {source} would download, from its model.json alone (weights.js)
        try {
          return post({ type: "probe", id: data.id, ...(await probeModel(checkedSource(data.source))) });
        } catch (e) {
          return post({ type: "probe", id: data.id, error: e.message ?? String(e) });
        }
      case "storage":
        return post({ type: "storage", ...(await storageReport()) });
      case "clear_cache":
        await clearCache();
        return post({ type: "storage", ...(await storageReport()) });
      case "crash_drill": // the browser tests' fault injection: {kind: "panic" | "oom"}
        return wasm.crashDrill(data.kind);
      case "delete_model":
        await deleteModel(data.base);
        return post({ type: "storage", ...(await storageReport()) });
    }
  } catch (e) {
    const crash = crashMessage(e);
    if (crash) return post({ type: "error", phase, crashed: true, message: crash, job });
    post({ type: "error", phase, job, message: e.message ?? String(e), ...(e.code ? { code: e.code } : {}) });
  }
};
