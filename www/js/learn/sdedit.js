// Panel 1's "run the reverse from here": SDEdit (Meng et al. 2021) on the forward panel's image at its t, with
// panel 2's prompt, seed and decoder steps; every decoder step's x_t and x̂0, then the picture after super-res.
// The engine's img2img (src/edit.rs) does the work, with strength = t / 999.
import { paintRgba } from "../canvas.js";
import { t } from "../i18n.js";
import { recommended } from "./model.js";
import { initStepSaver } from "../step-frames.js";

const $ = (id) => document.getElementById(id);

/// CHW floats in [-1, 1] (64×64) → RGBA bytes.
function chwToBytes(chw, size) {
  const n = size * size;
  const rgba = new Uint8Array(4 * n);
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < 3; c++) rgba[p * 4 + c] = Math.round(Math.min(1, Math.max(0, chw[c * n + p] * 0.5 + 0.5)) * 255);
    rgba[p * 4 + 3] = 255;
  }
  return rgba;
}

export class SdeditPanel {
  constructor(state, model, forward) {
    this.state = state;
    this.model = model;
    this.forward = forward;
  }

  init() {
    this.model.ready.then(() => { $("sdedit-run").disabled = false; });
    $("sdedit-run").onclick = () => this.run();
    this.last = { frames: [], png: null }; // the last run's decoder steps and picture
    const sources = () => [{ key: "decoder", label: t("steps.decoder"), ...this.last }];
    this.refreshSave = initStepSaver($("sdedit-save"), sources, this.model.steps.request, "unclip-sdedit");
  }

  async run() {
    const s = this.state;
    const size = Math.round(Math.sqrt(this.forward.x0.length / 3));
    const params = { ...recommended(s), sampler: $("sdedit-sampler").value, strength: s.t / 999 };
    const edit = { image: { rgba: chwToBytes(this.forward.x0, size), width: size, height: size }, mask: null };
    const frames = [];
    this.last = { frames, png: null };
    this.refreshSave();
    $("sdedit-run").disabled = true;
    document.body.dataset.sdedit = "running";
    $("sdedit-steps").replaceChildren();
    try {
      const done = await this.model.generate(params, (m) => {
        if (m.stage !== "decoder") return;
        frames.push(m);
        for (const [key, what] of [["xt", "x_t"], ["x0", "x̂₀"]]) {
          const c = document.createElement("canvas");
          c.title = `${what}, t = ${m.t}`;
          paintRgba(c, m[key], m.width, m.height);
          $("sdedit-steps").append(c);
        }
      }, edit);
      paintRgba($("sdedit-result"), done.rgba, done.width, done.height);
      this.last.png = done.png;
      this.refreshSave();
      $("sdedit-status").textContent = frames.length
        ? t("sdeditStart", s.t, frames[0].t, frames.length, s.steps)
        : t("sdeditNothing");
      document.body.dataset.sdedit = "done";
      document.body.dataset.sdeditSteps = String(frames.length);
    } catch (e) {
      $("sdedit-status").textContent = e.message;
      document.body.dataset.sdedit = "error";
    }
    $("sdedit-run").disabled = false;
  }
}
