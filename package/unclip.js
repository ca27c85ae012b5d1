// unclip's JavaScript API (README, "Use it in your own page"): the app's own engine worker (js/worker.js) driven by
// its messages (js/protocol.js), started on the host page's origin through a blob-URL shim, so the package may be
// served from another origin (a CDN) while the weights stream into the host page's cache as in the app.

import { ERROR_CODES, GENERATE_STAGES, LIMITS, PARAMS, PREVIEWS, STAGES } from "./js/protocol.js";
import { MAX_THREADS } from "./js/threads.js";

export { ERROR_CODES, GENERATE_STAGES, LIMITS, PARAMS, PREVIEWS, STAGES };

/// An engine error: `code` is one of ERROR_CODES where the engine gave one; `crashed`: the engine panicked or ran
/// out of memory (the next call starts a new one and loads the model again).
export class UnclipError extends Error {
  constructor(message, { code, phase, crashed = false } = {}) {
    super(message);
    this.name = "UnclipError";
    this.code = code;
    this.phase = phase;
    this.crashed = crashed;
  }
}

const ISOLATION_HEADERS = "Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp";

/// The CPU backend's threads on this page: {threads, why?}, `why` saying why it runs on one. More than one needs
/// a cross-origin isolated page (the shared-memory wasm module, docs/architecture.md).
export function threadPlan(asked) {
  const cores = Math.max(1, Math.min(navigator.hardwareConcurrency || 1, MAX_THREADS));
  const want = asked === undefined ? cores : Math.max(1, Math.min(Math.floor(Number(asked)) || 1, MAX_THREADS));
  if (want === 1) return { threads: 1, why: asked === undefined ? "this device reports one core" : "one thread was asked for" };
  if (!self.crossOriginIsolated) {
    return { threads: 1, why: `this page is not cross-origin isolated (its server sends no ${ISOLATION_HEADERS}), so the CPU backend runs on one thread` };
  }
  return { threads: want };
}

/// A module worker running js/worker.js on this page's origin: a blob URL holding a module that imports it (a
/// worker's script must be same-origin, its imports need only CORS). Messages that arrive while the import loads
/// are kept and handed to the worker's handler once it is set.
function startWorker(threads) {
  const url = new URL("./js/worker.js", import.meta.url).href;
  const source = `self.unclipWorker = ${JSON.stringify({ threads, anyOrigin: true })};
const early = [];
self.onmessage = (e) => early.push(e);
try {
  await import(${JSON.stringify(url)});
  for (const e of early) self.onmessage(e);
} catch (e) {
  self.postMessage({ type: "error", phase: "load", message: "the engine's worker could not load " + ${JSON.stringify(url)} + " (" + (e.message ?? e) + "): serve the package with CORS, and allow its origin in the page's script-src" });
}
`;
  const blob = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const worker = new Worker(blob, { type: "module", name: "unclip" });
  return { worker, blob };
}

/// {rgba: Uint8Array, width, height} of an ImageData, {rgba, width, height}, or anything createImageBitmap takes.
async function toRgba(image) {
  if (!image) return null;
  if (image.rgba) return { rgba: new Uint8Array(image.rgba), width: image.width, height: image.height };
  if (image instanceof ImageData) return { rgba: new Uint8Array(image.data), width: image.width, height: image.height };
  const bitmap = await createImageBitmap(image);
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const g = canvas.getContext("2d");
  g.drawImage(bitmap, 0, 0);
  return { rgba: new Uint8Array(g.getImageData(0, 0, bitmap.width, bitmap.height).data.buffer), width: bitmap.width, height: bitmap.height };
}

const pixels = (rgba, width, height) => new ImageData(new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.length), width, height);

/// A step event as the callbacks get it, pictures as ImageData.
function stepEvent(m) {
  const step = { ...m };
  delete step.type;
  for (const k of ["xt", "x0"]) if (m[k]) step[k] = pixels(m[k], m.width, m.height);
  return step;
}

/// The engine's request for step previews (protocol.js PREVIEWS): the kinds asked for, every `every`-th step and
/// each stage's last; without onStep none, so the engine reads nothing back (docs/architecture.md, "Step previews").
function previewRequest({ onStep, previews = ["xt", "x0"], every = 1 } = {}) {
  const unknown = previews.find((k) => !PREVIEWS.kinds.includes(k));
  if (unknown) throw new UnclipError(`unknown preview "${unknown}" (one of ${PREVIEWS.kinds.join(", ")})`, { code: "bad_input", phase: "generate" });
  if (!(Number.isInteger(every) && every >= 1)) throw new UnclipError(`every must be a whole number of steps, at least 1 (got ${every})`, { code: "bad_input", phase: "generate" });
  return onStep ? { kinds: [...previews], every } : { kinds: [], every: 0 };
}

/// A result of the engine: the PNG it wrote (its settings in two iTXt chunks: docs/formats.md, "Pictures") and its
/// decoded pixels.
function result(m, settings) {
  return { blob: new Blob([m.png], { type: "image/png" }), pixels: pixels(m.rgba, m.width, m.height), embedding: m.embedding, settings, ms: m.ms };
}

export class Unclip {
  /// Loads the model at `model` (a URL of a directory holding model.json, on any origin that sends CORS headers):
  /// `new Unclip(options).load()`.
  static async load(options) {
    return new Unclip(options).load();
  }

  /// Downloads (or reads from the cache) the model's weights and starts the engine; resolves to this engine.
  async load() {
    await this.#load();
    return this;
  }

  /// What load() would download, read from model.json alone (no weights): {name, version, totalBytes,
  /// missingBytes}, missingBytes being what the cache lacks (0: the model loads without the network). A page asks
  /// before a download worth asking about (docs/architecture.md, "The pages").
  probe() {
    if (!this.#worker) this.#start();
    return new Promise((resolve, reject) => {
      this.#handler = (m) => {
        if (m.type !== "probe" && m.type !== "error") return;
        this.#handler = null;
        if (m.type === "error" || m.error) reject(new UnclipError(m.error ?? m.message, { code: m.code, phase: "load" }));
        else resolve({ name: m.name, version: m.version, totalBytes: m.totalBytes, missingBytes: m.missingBytes });
      };
      this.#worker.postMessage({ type: "probe", id: 1, source: { kind: "url", base: this.#options.base } });
    });
  }

  #options;
  #worker = null;
  #blob = null;
  #handler = null; // the running operation's message handler
  #queue = Promise.resolve();
  #reload = false;
  #closed = false;
  /// {model, identity, backend, reason, threads, threadsWhy?, width, height, recommended}, set by each load
  info = null;
  /// the load's warnings (one sentence each)
  warnings = [];

  constructor({ model, backend = "auto", threads, onProgress, onWarning } = {}) {
    if (!model) throw new UnclipError("Unclip.load needs { model: the URL of a directory holding model.json }", { phase: "load" });
    const base = new URL(model, document.baseURI);
    if (!base.pathname.endsWith("/")) base.pathname += "/";
    this.#options = { base: base.href, backend, plan: threadPlan(threads), onProgress, onWarning };
  }

  /// The recommended settings of the model (model.json `recommended`) over the engine's defaults, under `given`.
  settings(given = {}) {
    return { ...PARAMS, ...(this.info?.recommended ?? {}), ...given };
  }

  #start() {
    this.#worker?.terminate();
    ({ worker: this.#worker, blob: this.#blob } = startWorker(this.#options.plan.threads));
    this.#worker.onmessage = ({ data }) => {
      if (data.type === "warning" && !data.job) this.#options.onWarning?.(data.message);
      if (data.type === "ready") this.#ready(data); // also mid-run: a lost GPU moved the engine to the CPU
      this.#handler?.(data);
    };
    this.#worker.onerror = (e) => this.#handler?.({ type: "error", phase: "load", message: `the engine's worker failed: ${e.message ?? "it could not start"}` });
  }

  #ready(m) {
    const plan = this.#options.plan;
    const threads = m.info.threads ?? 1;
    const threadsWhy = threads > 1 || m.info.backend !== "cpu" ? undefined : m.threading?.note ?? plan.why;
    this.info = { model: m.model, identity: m.identity, backend: m.info.backend, reason: m.reason, threads, threadsWhy, width: m.info.width, height: m.info.height, recommended: m.model.recommended ?? {} };
  }

  /// Runs `op(settle)` alone (one operation at a time, in call order); `settle` = {resolve, reject}; every worker
  /// message goes to `onMessage` until it settles.
  #serial(onMessage, post) {
    const run = this.#queue.then(async () => {
      if (this.#closed) throw new UnclipError("this engine is closed", { phase: "closed" });
      if (this.#reload) { this.#reload = false; await this.#load(); }
      return new Promise((resolve, reject) => {
        const done = (f) => (v) => { this.#handler = null; f(v); };
        const settle = { resolve: done(resolve), reject: done(reject) };
        this.#handler = (m) => {
          if (m.type === "error") {
            if (m.crashed) { this.#reload = true; this.#start(); }
            return settle.reject(new UnclipError(m.message, { code: m.code, phase: m.phase, crashed: !!m.crashed }));
          }
          if (m.type === "cancelled") return settle.reject(new UnclipError("cancelled", { code: "cancelled", phase: "generate" }));
          onMessage(m, settle);
        };
        post();
      });
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  #load() {
    if (!this.#worker) this.#start();
    const { base, backend, onProgress } = this.#options;
    const loading = this.#serialLoad((m, { resolve }) => {
      if (m.type === "load_progress") onProgress?.(m);
      if (m.type === "warning") this.warnings.push(m.message);
      if (m.type === "ready") resolve(this);
    }, () => this.#worker.postMessage({ type: "load", source: { kind: "url", base }, backend }));
    return loading.finally(() => { URL.revokeObjectURL(this.#blob); });
  }

  // a load runs inside an operation (after a crash) or as one of its own
  #serialLoad(onMessage, post) {
    return new Promise((resolve, reject) => {
      this.#handler = (m) => {
        if (m.type === "error") { this.#handler = null; return reject(new UnclipError(m.message, { code: m.code, phase: "load" })); }
        onMessage(m, { resolve: (v) => { this.#handler = null; resolve(v); } });
      };
      post();
    });
  }

  /// Runs a message `msg` that ends in "done", with the step callbacks.
  async #run(msg, transfer, options = {}) {
    const { onStep, onStage, signal } = options;
    const settings = msg.params;
    const previews = previewRequest(options);
    return this.#cancellable(signal, (m, { resolve }) => {
      if (m.type === "step") onStep?.(stepEvent(m));
      else if (m.type === "stage_start" || m.type === "stage_end") onStage?.({ ...m });
      else if (m.type === "done") resolve(result(m, settings));
    }, () => this.#worker.postMessage({ ...msg, previews }, transfer));
  }

  /// An operation that `signal` cancels while it runs, and only then: the listener goes when the operation ends,
  /// however it ends, so that aborting a signal whose run failed or finished never cancels a later run.
  #cancellable(signal, onMessage, post) {
    const abort = () => this.#worker.postMessage({ type: "cancel" });
    return this.#serial(onMessage, () => {
      if (signal?.aborted) throw new UnclipError("cancelled", { code: "cancelled", phase: "generate" });
      signal?.addEventListener("abort", abort, { once: true });
      post();
    }).finally(() => signal?.removeEventListener("abort", abort));
  }

  /// A generation: `settings` as protocol.js's PARAMS (missing ones take the model's recommended settings, then
  /// the engine's defaults). Resolves to {blob: the PNG with its settings, pixels: ImageData, embedding, settings, ms}.
  generate(settings = {}, options) {
    return this.#run({ type: "generate", params: this.settings(settings) }, [], options);
  }

  /// img2img (no mask) or inpainting (a mask: white where to repaint) of `image` at settings.strength
  /// (docs/remix.md; src/edit.rs). Images: ImageData, {rgba, width, height}, or anything createImageBitmap takes.
  async edit(settings = {}, { image, mask } = {}, options) {
    const [img, msk] = await Promise.all([toRgba(image), toRgba(mask)]);
    if (!img) throw new UnclipError("edit needs { image }", { code: "bad_input", phase: "generate" });
    const params = this.settings({ edit_mode: msk ? "inpaint" : "img2img", ...settings });
    const transfer = [img.rgba.buffer, ...(msk ? [msk.rgba.buffer] : [])];
    return this.#run({ type: "generate", params, edit: { image: img, mask: msk } }, transfer, options);
  }

  /// `count` variations of `image` (its image embedding decoded with other seeds; `invert`: from its DDIM-inverted
  /// noise, docs/remix.md). Resolves to one result per variation, as generate's.
  async variations(image, { count = 4, invert = false, eta, ...settings } = {}, options = {}) {
    const { onStep, onStage, onFrame, signal } = options;
    const previews = previewRequest(options);
    const img = await toRgba(image);
    const params = this.settings(settings);
    const frames = [];
    return this.#cancellable(signal, (m, { resolve }) => {
      if (m.type === "step") onStep?.(stepEvent(m));
      else if (m.type === "stage_start" || m.type === "stage_end") onStage?.({ ...m });
      else if (m.type === "remix_frame") { const r = result(m, { ...params, seed: m.seed }); frames.push(r); onFrame?.(r, m.k, m.n); }
      else if (m.type === "remix_done") resolve(frames);
    }, () => this.#worker.postMessage({ type: "remix", op: "variations", params, image: img, count, invert, eta, previews }, [img.rgba.buffer]));
  }

  /// Ends the worker; later calls reject.
  close() {
    this.#closed = true;
    this.#worker?.terminate();
    this.#handler?.({ type: "error", phase: "closed", message: "this engine is closed" });
  }
}

export default Unclip;
