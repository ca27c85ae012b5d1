// The model, running in the generate page's worker, shared by the panels that need it: loads once,
// then runs one generation at a time and hands each step event to the caller.

export class ModelWorker {
  constructor(onStatus) {
    this.worker = new Worker(new URL("../worker.js", import.meta.url), { type: "module" });
    this.onStatus = onStatus;
    this.queue = Promise.resolve();
    this.current = null;
    this.ready = new Promise((resolve, reject) => {
      this.worker.onmessage = ({ data: m }) => {
        if (m.type === "load_progress") onStatus(`${m.file}: ${(m.loaded / 1e6).toFixed(1)} / ${(m.total / 1e6).toFixed(1)} MB`);
        else if (m.type === "ready") { onStatus(`${m.model.name}: ${m.reason}`); resolve(m); }
        else if (m.type === "step") this.current?.onStep(m);
        else if (m.type === "done") { const c = this.current; this.current = null; c?.resolve(m); }
        else if (m.type === "error") {
          onStatus(m.message);
          if (this.current) { const c = this.current; this.current = null; c.reject(new Error(m.message)); } else reject(new Error(m.message));
        }
      };
    });
    this.worker.postMessage({ type: "load", modelUrl: new URL("../../models/default/", import.meta.url).href });
  }

  /// Runs `params` after any generation already queued; resolves to the "done" message.
  generate(params, onStep) {
    const run = () => this.ready.then(() => new Promise((resolve, reject) => {
      this.current = { onStep, resolve, reject };
      this.worker.postMessage({ type: "generate", params });
    }));
    this.queue = this.queue.then(run, run);
    return this.queue;
  }
}

/// ε̂ (CHW floats, ~N(0,1)) as RGBA: ±3 spans black to white.
export function epsToRgba(eps, w, h) {
  const n = w * h;
  const rgba = new Uint8ClampedArray(n * 4);
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < 3; c++) rgba[p * 4 + c] = Math.round((eps[c * n + p] / 6 + 0.5) * 255);
    rgba[p * 4 + 3] = 255;
  }
  return rgba;
}

export function paintRgba(canvas, rgba, w, h) {
  canvas.width = w; canvas.height = h;
  canvas.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(rgba), w, h), 0, 0);
}
