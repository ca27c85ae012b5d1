// Panel 2, the reverse process: the decoder runs live in the worker (the generate page's), once with
// DDPM and once with DDIM from the same seed; every decoder step's x_t, x̂0 and ε̂ go on a timeline.

const $ = (id) => document.getElementById(id);

function paintRgba(canvas, rgba, w, h) {
  canvas.width = w; canvas.height = h;
  canvas.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(rgba), w, h), 0, 0);
}

/// ε̂ (CHW floats, ~N(0,1)) as an image: ±3 spans black to white.
function paintEps(canvas, eps, w, h) {
  const n = w * h;
  const rgba = new Uint8ClampedArray(n * 4);
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < 3; c++) rgba[p * 4 + c] = Math.round((eps[c * n + p] / 6 + 0.5) * 255);
    rgba[p * 4 + 3] = 255;
  }
  paintRgba(canvas, rgba, w, h);
}

export class ReversePanel {
  constructor(state) {
    this.state = state;
    this.frames = { ddpm: [], ddim: [] };
    this.worker = new Worker(new URL("../worker.js", import.meta.url), { type: "module" });
    this.pending = null;
    this.timer = null;
  }

  init() {
    $("rev-prompt").value = this.state.prompt;
    $("rev-seed").value = this.state.rseed;
    $("rev-steps").value = String(this.state.steps);
    this.worker.onmessage = ({ data }) => this.onMessage(data);
    this.worker.postMessage({ type: "load", modelUrl: new URL("../../models/default/", import.meta.url).href });
    $("rev-status").textContent = "…";
    $("rev-run").onclick = () => this.run();
    $("rev-step").oninput = () => this.show(Number($("rev-step").value));
    $("rev-prev").onclick = () => this.show(Math.max(0, this.index - 1));
    $("rev-next").onclick = () => this.show(Math.min(this.frames.ddpm.length - 1, this.index + 1));
    $("rev-play").onclick = () => this.togglePlay();
  }

  onMessage(m) {
    if (m.type === "load_progress") $("rev-status").textContent = `${m.file}: ${(m.loaded / 1e6).toFixed(1)} / ${(m.total / 1e6).toFixed(1)} MB`;
    if (m.type === "ready") { $("rev-status").textContent = `${m.model.name}: ${m.reason}`; $("rev-run").disabled = false; document.body.dataset.reverse = "ready"; }
    if (m.type === "step" && m.stage === "decoder" && this.pending) this.frames[this.pending.sampler].push(m);
    if (m.type === "done" && this.pending) { const p = this.pending; this.pending = null; p.resolve(); }
    if (m.type === "error") { $("rev-status").textContent = m.message; this.pending?.reject(new Error(m.message)); this.pending = null; document.body.dataset.reverse = "error"; }
  }

  generate(sampler) {
    return new Promise((resolve, reject) => {
      this.pending = { sampler, resolve, reject };
      const s = this.state;
      this.worker.postMessage({ type: "generate", params: { prompt: s.prompt, seed: s.rseed, prior_steps: 10, decoder_steps: s.steps, sr_steps: 2, sampler } });
    });
  }

  async run() {
    const s = this.state;
    s.prompt = $("rev-prompt").value || "a happy dog";
    s.rseed = Number($("rev-seed").value);
    s.steps = Number($("rev-steps").value);
    document.dispatchEvent(new Event("learn-state"));
    this.frames = { ddpm: [], ddim: [] };
    $("rev-run").disabled = true;
    document.body.dataset.reverse = "running";
    for (const sampler of ["ddpm", "ddim"]) {
      $("rev-status").textContent = `${sampler.toUpperCase()}…`;
      await this.generate(sampler);
    }
    $("rev-run").disabled = false;
    $("rev-status").textContent = "";
    $("rev-step").max = String(this.frames.ddpm.length - 1);
    $("rev-step").disabled = false;
    this.show(0);
    document.body.dataset.reverse = "done";
  }

  show(i) {
    this.index = i;
    $("rev-step").value = String(i);
    $("rev-i").textContent = `${i + 1}/${this.frames.ddpm.length}`;
    $("rev-t").textContent = this.frames.ddpm[i].t;
    for (const sampler of ["ddpm", "ddim"]) {
      const f = this.frames[sampler][i];
      paintRgba($(`${sampler}-xt`), f.xt, f.width, f.height);
      paintRgba($(`${sampler}-x0`), f.x0, f.width, f.height);
      paintEps($(`${sampler}-eps`), f.eps, f.width, f.height);
    }
  }

  togglePlay() {
    if (this.timer) { clearInterval(this.timer); this.timer = null; return; }
    this.timer = setInterval(() => {
      if (this.index + 1 >= this.frames.ddpm.length) { clearInterval(this.timer); this.timer = null; return; }
      this.show(this.index + 1);
    }, 400);
  }
}
