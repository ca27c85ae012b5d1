// The module worker that owns the wasm instance (and, later, the GPU device). The page only sends
// messages (protocol.js); everything heavy happens here.

import init, { Engine } from "../pkg/unclip.js";
import { clearCache, forget, loadModel, LoadError, storageReport } from "./weights.js";

let engine = null;
let busy = false;
const ready = init();

const post = (msg, transfer = []) => self.postMessage(msg, transfer);

/// What this browser's WebGPU offers, in words (the backend choice is explained to the user).
async function webgpuStatus() {
  if (!navigator.gpu) return "this browser has no WebGPU";
  const adapter = await navigator.gpu.requestAdapter().catch(() => null);
  if (!adapter) return "WebGPU is present but offers no adapter";
  const info = adapter.info ?? {};
  const fallback = info.isFallbackAdapter ?? adapter.isFallbackAdapter;
  const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "unnamed";
  return `WebGPU adapter: ${name}${fallback ? " (a software fallback, slower than the CPU path)" : ""}`;
}

async function load(modelUrl) {
  await ready;
  const base = new URL(modelUrl, self.location.href);
  if (!base.href.endsWith("/")) base.href += "/";
  if (navigator.storage?.persist) await navigator.storage.persist().catch(() => false);
  for (let attempt = 0; ; attempt++) {
    const { manifestText, manifest, files, warnings } = await loadModel(base.href, (p) => post({ type: "load_progress", ...p }));
    for (const message of warnings) post({ type: "warning", message });
    try {
      engine?.free();
      engine = Engine.load(manifestText, files);
    } catch (e) {
      // A cached copy that no longer verifies: delete it and fetch it again once.
      if (attempt === 0 && /sha256|bytes/.test(e.message)) {
        for (const entry of manifest.files) await forget(base.href, entry);
        post({ type: "warning", message: `${e.message} — the cached copy was deleted and is being fetched again` });
        continue;
      }
      throw e;
    }
    const reason = `${await webgpuStatus()}; the WebGPU backend is not built yet, so this runs on the CPU (wasm simd128)`;
    post({ type: "ready", model: { name: manifest.name, version: manifest.version, license: manifest.license, attribution: manifest.attribution }, info: engine.info(), reason });
    return;
  }
}

async function generate(params) {
  if (!engine) throw new LoadError("the model is not loaded yet");
  busy = true;
  const start = performance.now();
  try {
    const out = await engine.generate(params, (event) => {
      const transfer = ["xt", "x0", "eps", "eps_uncond", "eps_cond"].filter((k) => event[k]).map((k) => event[k].buffer);
      post(event, transfer);
    });
    const done = { type: "done", rgba: out.rgba, width: out.width, height: out.height, embedding: out.image_embedding, ms: performance.now() - start };
    post(done, [out.rgba.buffer, out.image_embedding.buffer]);
  } catch (e) {
    if (/cancelled/.test(e.message)) post({ type: "cancelled" });
    else throw e;
  } finally {
    busy = false;
  }
}

self.onmessage = async ({ data }) => {
  const phase = data.type === "load" ? "load" : "generate";
  try {
    switch (data.type) {
      case "load":
        return await load(data.modelUrl);
      case "generate":
        if (busy) return post({ type: "error", phase, message: "a generation is already running: cancel it first" });
        return await generate(data.params);
      case "cancel":
        return engine?.cancel();
      case "storage":
        return post({ type: "storage", ...(await storageReport()) });
      case "clear_cache":
        await clearCache();
        return post({ type: "storage", ...(await storageReport()) });
    }
  } catch (e) {
    post({ type: "error", phase, message: e.message ?? String(e) });
  }
};
