// bench/unet_step.js's `ours` in a module worker, as the app runs the engine (www/js/worker.js): there the calling
// thread blocks while rayon's pool works; on the page's main thread it would have to spin beside the pool.
self.onmessage = async ({ data: d }) => {
  try {
    const wasm = await import(`${d.pkg}unclip.js`);
    await wasm.default();
    if (d.threads > 1) await wasm.initThreadPool(d.threads);
    const r = await wasm.timeUnetStep(d.gguf, d.sample, d.timestep, d.hidden, d.labels, d.mask, d.backend, d.runs);
    self.postMessage({ ms: Array.from(r.ms), output: r.output, adapter: r.adapter ?? null });
  } catch (e) {
    self.postMessage({ error: e.message ?? String(e) });
  }
};
