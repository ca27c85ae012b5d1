// Panel 2, the reverse process: the decoder runs live in the worker (the generate page's), once with
// DDPM and once with DDIM from the same seed; every decoder step's x_t, x̂0 and ε̂ go on a timeline.

import { chwToRgba, NOISE_SCALE, paintRgba } from "../canvas.js";
import { recommended } from "./model.js";
import { initStepSaver } from "../step-frames.js";

const $ = (id) => document.getElementById(id);

export class ReversePanel {
  constructor(state, model) {
    this.state = state;
    this.model = model;
    this.frames = { ddpm: [], ddim: [] };
    this.pngs = {}; // each run's picture, whose settings its saved steps carry
    this.timer = null;
  }

  init() {
    $("rev-prompt").value = this.state.prompt;
    $("rev-seed").value = this.state.rseed;
    $("rev-steps").value = String(this.state.steps);
    this.model.ready.then(() => { $("rev-run").disabled = false; document.body.dataset.reverse = "ready"; },
      () => { document.body.dataset.reverse = "error"; });
    $("rev-run").onclick = () => this.run();
    $("rev-step").oninput = () => this.show(Number($("rev-step").value));
    $("rev-prev").onclick = () => this.show(Math.max(0, this.index - 1));
    $("rev-next").onclick = () => this.show(Math.min(this.frames.ddpm.length - 1, this.index + 1));
    $("rev-play").onclick = () => this.togglePlay();
    const sources = () => ["ddpm", "ddim"].map((k) => ({ key: k, label: k.toUpperCase(), frames: this.frames[k], png: this.pngs[k] }));
    this.refreshSave = initStepSaver($("rev-save"), sources, this.model.steps.request, "unclip-reverse");
  }

  async generate(sampler) {
    const s = this.state;
    const params = { ...recommended(s), sampler };
    const done = await this.model.generate(params, (m) => { if (m.stage === "decoder") this.frames[sampler].push(m); });
    this.pngs[sampler] = done.png;
    const detail = { embedding: done.embedding, decoder: this.frames[sampler].at(-1), done };
    document.dispatchEvent(new CustomEvent("learn-run", { detail })); // panel 5 shows the run's values
  }

  async run() {
    const s = this.state;
    s.prompt = $("rev-prompt").value; // "" is an unconditional sample, as in diffusers
    s.rseed = Number($("rev-seed").value);
    s.steps = Number($("rev-steps").value);
    document.dispatchEvent(new Event("learn-state"));
    this.frames = { ddpm: [], ddim: [] };
    this.pngs = {};
    this.refreshSave();
    $("rev-run").disabled = true;
    document.body.dataset.reverse = "running";
    try {
      for (const sampler of ["ddpm", "ddim"]) {
        $("rev-status").textContent = `${sampler.toUpperCase()}…`;
        await this.generate(sampler);
      }
    } catch (e) {
      $("rev-status").textContent = e.message;
      $("rev-run").disabled = false;
      document.body.dataset.reverse = "error";
      return;
    }
    $("rev-run").disabled = false;
    $("rev-status").textContent = "";
    $("rev-step").max = String(this.frames.ddpm.length - 1);
    $("rev-step").disabled = false;
    this.show(0);
    this.refreshSave();
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
      paintRgba($(`${sampler}-eps`), chwToRgba(f.eps, f.width, f.height, NOISE_SCALE), f.width, f.height);
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
