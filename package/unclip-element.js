// unclip's web components (README, "Use it in your own page"): importing this module registers
//   <unclip-generate model=URL prompt=… seed=… prior-steps=… … autorun>   a generation, its steps shown as the app
//                     shows them (each stage's progress, x_t beside x̂0), then the picture; events unclip-ready,
//                     unclip-step, unclip-done (detail.blob: the PNG with its settings) and unclip-error. A model
//                     worth asking about is offered with its size, and downloads on the first Generate (#open)
//   <unclip-forward image=URL schedule=cosine|linear t=… seed=… controls>   the forward-process lesson of
//                     learn.html: x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε, computed by the engine's scheduler code (wasm)
// Styled through CSS custom properties (--unclip-*) and ::part(…).

import { GENERATE_STAGES, PARAMS } from "./js/protocol.js";
import { chwToRgba, NOISE_SCALE, paintRgba } from "./js/canvas.js";
import { loadsAtOnce, saveData } from "./js/first-visit.js";
import { imageToChw } from "./js/learn/forward.js";
import { Unclip } from "./unclip.js";

export { Unclip };

/// The generation settings as attributes: protocol.js's PARAMS (the engine's) without the edit-only ones,
/// `prior_steps` as prior-steps.
const SETTINGS = Object.keys(PARAMS).filter((k) => k !== "strength" && k !== "resample");
const attr = (k) => k.replaceAll("_", "-");

const STYLE = `
:host { display: block; font: inherit; color: var(--unclip-color, inherit); }
:host([hidden]) { display: none; }
[part~="status"] { font-size: var(--unclip-status-size, 0.85em); opacity: 0.8; margin-block: 0.25em; }
[part~="error"] { color: var(--unclip-error-color, #c0392b); }
[part~="stages"] { display: grid; grid-template-columns: auto 1fr auto; gap: 0.2em 0.6em; align-items: center; font-size: 0.85em; }
progress { inline-size: 100%; accent-color: var(--unclip-accent, #4b6bfb); }
[part~="frames"] { display: flex; flex-wrap: wrap; gap: var(--unclip-gap, 0.5em); margin-block: 0.5em; }
figure { margin: 0; text-align: center; font-size: 0.8em; }
canvas, img { display: block; inline-size: var(--unclip-size, 160px); block-size: auto; aspect-ratio: 1;
  image-rendering: pixelated; border-radius: var(--unclip-radius, 6px); background: var(--unclip-canvas-background, #8882); }
button { font: inherit; }
`;

/// The elements' shadow style, adopted (not a <style> element: a host's CSP need not allow inline styles).
let sheet = null;
function adoptStyle(root) {
  if (!sheet) { sheet = new CSSStyleSheet(); sheet.replaceSync(STYLE); }
  root.adoptedStyleSheets = [sheet];
}

/// An element with properties (`part` too: it forwards to the attribute) and children.
function el(tag, props = {}, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

/// One engine per model, backend and thread count, shared by every element of the page (operations queue):
/// {probe: what its load would download (model.json alone), load(): the loaded engine, started once, listeners:
/// the elements following the load's progress}.
const engines = new Map();
function engineFor(model, backend, threads) {
  const key = JSON.stringify([new URL(model, document.baseURI).href, backend, threads ?? null]);
  let entry = engines.get(key);
  if (!entry) {
    const listeners = new Set();
    const unclip = new Unclip({ model, backend, threads, onProgress: (p) => listeners.forEach((f) => f(p)) });
    const forget = () => { if (engines.get(key) === entry) engines.delete(key); }; // the next element tries again
    entry = { listeners, probe: unclip.probe(), loaded: null };
    entry.probe.catch(forget);
    entry.load = () => {
      if (!entry.loaded) { entry.loaded = entry.probe.then(() => unclip.load()); entry.loaded.catch(forget); }
      return entry.loaded;
    };
    engines.set(key, entry);
  }
  return entry;
}

const mb = (b) => `${(b / 1e6).toFixed(1)} MB`;

/// The backend line, as the app's: which backend and why, and on the CPU how many threads (or why one).
function backendLine(info) {
  const threads = info.backend !== "cpu" ? "" : info.threads > 1 ? `; ${info.threads} threads (shared-memory wasm)` : `; 1 thread${info.threadsWhy ? `: ${info.threadsWhy}` : ""}`;
  return `${info.model.name} ${info.model.version} · backend: ${info.backend} — ${info.reason}${threads}`;
}

export class UnclipGenerate extends HTMLElement {
  static observedAttributes = ["model", "backend", "threads", "autorun", ...SETTINGS.map(attr)];

  #parts = null;
  #entry = null; // engineFor's entry of the current model attribute
  #engine = null; // a promise of its loaded Unclip, once this element has started the load
  #running = null;

  connectedCallback() {
    if (!this.#parts) this.#render();
    if (this.getAttribute("model") && !this.#entry) this.#open();
  }

  attributeChangedCallback(name, before, after) {
    if (!this.#parts || before === after) return;
    if (name === "model" || name === "backend" || name === "threads") this.#open();
  }

  #render() {
    const root = this.attachShadow({ mode: "open" });
    const stages = el("div", { part: "stages" });
    const rows = {};
    for (const s of GENERATE_STAGES) {
      const progress = el("progress", { max: 1, value: 0 });
      progress.setAttribute("part", "progress");
      const text = el("small");
      text.setAttribute("part", "stage-text");
      const name = el("span", { textContent: s.replace("_", "-") });
      name.setAttribute("part", "stage-name");
      stages.append(name, progress, text);
      rows[s] = { progress, text };
    }
    const canvas = (part, label) => {
      const c = el("canvas", { width: 64, height: 64 });
      c.setAttribute("part", `${part} preview`);
      return [c, el("figure", {}, c, el("figcaption", { textContent: label }))];
    };
    const [xt, xtFigure] = canvas("xt", "x_t");
    const [x0, x0Figure] = canvas("x0", "x̂₀");
    const result = el("img", { alt: "", hidden: true });
    result.setAttribute("part", "result");
    const frames = el("div", { part: "frames" }, xtFigure, x0Figure, result);
    const status = el("div", { role: "status" });
    status.setAttribute("part", "status");
    const button = el("button", { type: "button", textContent: "Generate", disabled: true, onclick: () => this.generate().catch(() => {}) });
    button.setAttribute("part", "button");
    adoptStyle(root);
    root.append(status, stages, frames, button);
    this.#parts = { status, rows, xt, x0, result, button };
  }

  #state(s, status, isError = false) {
    this.setAttribute("state", s);
    if (status !== undefined) {
      this.#parts.status.textContent = status;
      this.#parts.status.setAttribute("part", isError ? "status error" : "status");
    }
  }

  /// The settings of the attributes (numbers as numbers); missing ones take the model's recommended, then the
  /// engine's defaults (Unclip.settings).
  get settings() {
    const s = {};
    for (const k of SETTINGS) {
      const v = this.getAttribute(attr(k));
      if (v !== null) s[k] = typeof PARAMS[k] === "number" ? Number(v) : v;
    }
    return s;
  }

  /// The loaded engine's info (Unclip.info), or null.
  info = null;

  /// The first-visit rule of the app (docs/architecture.md, "The pages"; js/first-visit.js): the model's size is
  /// read first, from model.json alone, and the weights download without a click only where that costs the visitor
  /// nothing worth asking about: cached, small, or `autorun` on a link that is not asked to save data. Otherwise the
  /// element offers the download and the first Generate starts it.
  #open() {
    const model = this.getAttribute("model");
    if (!model) return;
    const entry = engineFor(model, this.getAttribute("backend") ?? "auto", this.getAttribute("threads") ?? undefined);
    this.#entry = entry;
    this.#engine = null;
    this.#parts.button.disabled = true;
    if (entry.loaded) return this.#loadEngine();
    this.#state("probing", "Reading the model's size…");
    entry.probe.then((probe) => {
      if (this.#entry !== entry || this.#engine) return;
      if (loadsAtOnce(probe, this.hasAttribute("autorun"))) return this.#loadEngine();
      const why = saveData() ? "; this browser asks to save data, so nothing downloads without a click" : "";
      this.#state("offer", `${probe.name} ${probe.version}: Generate downloads the model (${mb(probe.missingBytes)})${why}`);
      this.#parts.button.disabled = false;
    }, (error) => {
      if (this.#entry === entry) this.#fail(error);
    });
  }

  #loadEngine() {
    const entry = this.#entry;
    this.#state("loading", "Loading the model…");
    this.#parts.button.disabled = true;
    const onProgress = (m) => {
      if (this.#entry !== entry) return;
      this.#parts.status.textContent = `Loading the model: ${m.file} ${mb(m.fileLoaded)} of ${mb(m.fileBytes)} — total ${mb(m.loaded)} of ${mb(m.total)}${m.cached ? " (from the cache)" : ""}`;
    };
    entry.listeners.add(onProgress);
    const engine = entry.load().finally(() => entry.listeners.delete(onProgress));
    this.#engine = engine;
    engine.then((e) => {
      if (this.#engine !== engine) return;
      this.info = e.info;
      this.dataset.threads = e.info.threads;
      if (!this.#running) this.#state("ready", backendLine(e.info));
      this.#parts.button.disabled = !!this.#running;
      this.dispatchEvent(new CustomEvent("unclip-ready", { detail: e.info, bubbles: true, composed: true }));
      if (this.hasAttribute("autorun")) this.generate().catch(() => {});
    }, (error) => {
      if (this.#engine === engine) this.#fail(error);
    });
  }

  #fail(error) {
    this.#state("error", error.message, true);
    this.dispatchEvent(new CustomEvent("unclip-error", { detail: { message: error.message, code: error.code, phase: error.phase }, bubbles: true, composed: true }));
  }

  /// Generates with the attributes' settings (over `overrides`); resolves to the result (Unclip.generate's).
  async generate(overrides = {}) {
    if (!this.#entry) throw new Error("<unclip-generate> has no model attribute");
    if (this.#running) return this.#running;
    if (!this.#engine) this.#loadEngine(); // the offered download, on this first Generate
    const p = this.#parts;
    const run = (async () => {
      const engine = await this.#engine;
      for (const { progress, text } of Object.values(p.rows)) { progress.value = 0; text.textContent = ""; }
      p.button.disabled = true;
      this.#state("running");
      const started = Date.now();
      const onStep = (m) => {
        const row = p.rows[m.stage];
        if (row) {
          row.progress.value = (m.i + 1) / m.n;
          row.text.textContent = `${m.i + 1}/${m.n} · t=${m.t}`;
        }
        if (m.xt) { paintRgba(p.xt, m.xt.data, m.width, m.height); paintRgba(p.x0, m.x0.data, m.width, m.height); }
        this.dispatchEvent(new CustomEvent("unclip-step", { detail: m, bubbles: true, composed: true }));
      };
      const onStage = (m) => { if (m.type === "stage_end" && p.rows[m.stage]) { p.rows[m.stage].progress.value = 1; p.rows[m.stage].text.textContent = `${(m.ms / 1000).toFixed(2)} s`; } };
      const out = await engine.generate({ ...this.settings, ...overrides }, { onStep, onStage });
      URL.revokeObjectURL(p.result.src);
      p.result.src = URL.createObjectURL(out.blob);
      p.result.hidden = false;
      this.#state("done", `${backendLine(engine.info)} · ${((Date.now() - started) / 1000).toFixed(1)} s`);
      this.dispatchEvent(new CustomEvent("unclip-done", { detail: out, bubbles: true, composed: true }));
      return out;
    })();
    this.#running = run;
    try {
      return await run;
    } catch (error) {
      this.#fail(error);
      throw error;
    } finally {
      this.#running = null;
      p.button.disabled = false;
    }
  }
}

/// The engine's wasm module on the page's main thread, for the lesson's arithmetic (as learn.html runs it).
let lesson = null;
const lessonModule = () => (lesson ??= import("./pkg/unclip.js").then(async (m) => { await m.default(); return m; }));
const SIZE = 64;

export class UnclipForward extends HTMLElement {
  static observedAttributes = ["image", "schedule", "t", "seed"];

  #parts = null;
  #x0 = null;
  #wasm = null;

  connectedCallback() {
    if (this.#parts) return;
    const root = this.attachShadow({ mode: "open" });
    const figure = (part, label) => {
      const c = el("canvas", { width: SIZE, height: SIZE });
      c.setAttribute("part", `${part} picture`);
      return [c, el("figure", {}, c, el("figcaption", { textContent: label }))];
    };
    const [x0, f0] = figure("x0", "x₀");
    const [eps, fe] = figure("eps", "ε");
    const [xt, ft] = figure("xt", "x_t");
    const numbers = el("div");
    numbers.setAttribute("part", "numbers");
    const t = el("input", { type: "range", min: 0, max: 999, value: this.t, oninput: () => this.setAttribute("t", t.value) });
    const schedule = el("select", { onchange: () => this.setAttribute("schedule", schedule.value) },
      el("option", { value: "cosine", textContent: "cosine (Improved DDPM, unCLIP)" }), el("option", { value: "linear", textContent: "linear (DDPM)" }));
    const controls = el("div", { hidden: !this.hasAttribute("controls") }, el("label", { textContent: "t " }, t), " ", schedule);
    controls.setAttribute("part", "controls");
    const frames = el("div", {}, f0, fe, ft);
    frames.setAttribute("part", "frames");
    const status = el("div", { role: "status" });
    status.setAttribute("part", "status");
    adoptStyle(root);
    root.append(frames, numbers, controls, status);
    this.#parts = { x0, eps, xt, numbers, t, schedule, status };
    this.#start();
  }

  get t() { return Math.max(0, Math.min(999, Math.round(Number(this.getAttribute("t") ?? 500)) || 0)); }
  get schedule() { return this.getAttribute("schedule") === "linear" ? "linear" : "cosine"; }
  get seed() { return Math.max(0, Math.floor(Number(this.getAttribute("seed") ?? 0)) || 0); }

  attributeChangedCallback(name) {
    if (!this.#parts) return;
    if (name === "image") this.#start();
    else this.#draw();
  }

  async #start() {
    try {
      this.setAttribute("state", "loading");
      this.#wasm = await lessonModule();
      this.#x0 = await this.#image();
      this.#draw();
    } catch (e) {
      this.#parts.status.textContent = `The lesson could not start: ${e.message ?? e}`;
      this.setAttribute("state", "error");
    }
  }

  /// The image attribute's picture (another origin's must send CORS headers), else a red disc on white.
  async #image() {
    const src = this.getAttribute("image");
    if (!src) {
      const c = new OffscreenCanvas(SIZE, SIZE);
      const g = c.getContext("2d");
      g.fillStyle = "#fff"; g.fillRect(0, 0, SIZE, SIZE);
      g.fillStyle = "#e0245e"; g.beginPath(); g.arc(SIZE / 2, SIZE / 2, SIZE * 0.35, 0, 2 * Math.PI); g.fill();
      return imageToChw(c);
    }
    const img = new Image();
    img.crossOrigin = "anonymous";
    img.src = new URL(src, document.baseURI).href;
    await img.decode();
    return imageToChw(img);
  }

  #draw() {
    const w = this.#wasm, p = this.#parts;
    if (!w || !this.#x0) return;
    const { t, schedule } = this;
    const tables = w.scheduleTables(schedule);
    const eps = w.randn(BigInt(this.seed), 3 * SIZE * SIZE);
    const paint = (canvas, chw, scale) => paintRgba(canvas, chwToRgba(chw, SIZE, SIZE, scale), SIZE, SIZE);
    paint(p.x0, this.#x0);
    paint(p.eps, eps, NOISE_SCALE);
    paint(p.xt, w.addNoise(schedule, t, this.#x0, eps));
    const abar = tables.alphasCumprod[t];
    p.numbers.textContent = `t = ${t} (${schedule}): ᾱ_t = ${abar.toPrecision(5)}, √ᾱ_t = ${Math.sqrt(abar).toPrecision(5)}, SNR = ${Math.exp(tables.logSnr[t]).toPrecision(4)}`;
    p.t.value = t;
    p.schedule.value = schedule;
    this.setAttribute("state", "drawn");
    this.dispatchEvent(new CustomEvent("unclip-draw", { detail: { t, schedule, alphaBar: abar }, bubbles: true, composed: true }));
  }
}

if (!customElements.get("unclip-generate")) customElements.define("unclip-generate", UnclipGenerate);
if (!customElements.get("unclip-forward")) customElements.define("unclip-forward", UnclipForward);
