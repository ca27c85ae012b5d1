// Panel 3, classifier-free guidance: one seed decoded at several guidance scales, the prior's guidance
// on its own, and at any decoder step the unconditional and conditional ε̂ next to their combination.
import { chwToRgba, NOISE_SCALE, paintRgba } from "../canvas.js";
import { recommended } from "./model.js";

const $ = (id) => document.getElementById(id);
export const DECODER_SCALES = [1, 3, 8];
export const PRIOR_SCALES = [1, 4];

/// An image embedding as a strip of cells: blue negative, red positive.
function paintEmbedding(canvas, e) {
  const max = Math.max(...e.map(Math.abs), 1e-6);
  const rgba = new Uint8ClampedArray(e.length * 4);
  e.forEach((v, i) => {
    const a = Math.round((Math.abs(v) / max) * 255);
    rgba.set(v >= 0 ? [255, 255 - a, 255 - a, 255] : [255 - a, 255 - a, 255, 255], i * 4);
  });
  paintRgba(canvas, rgba, e.length, 1);
}

export class GuidancePanel {
  constructor(state, model) {
    this.state = state;
    this.model = model;
    this.parts = []; // decoder steps of the largest decoder scale: {t, eps, eps_uncond, eps_cond, width, height}
  }

  init() {
    this.model.ready.then(() => { $("cfg-run").disabled = false; document.body.dataset.guidance = "ready"; },
      () => { document.body.dataset.guidance = "error"; });
    $("cfg-run").onclick = () => this.run();
    $("cfg-step").oninput = () => this.showParts(Number($("cfg-step").value));
  }

  /// One run: its last decoder step (x̂0 before super-res) and the image embedding the prior made.
  async decode(decoderGuidance, priorGuidance, onStep = () => {}) {
    const s = this.state;
    let last = null;
    const params = { ...recommended(s), prior_guidance: priorGuidance, decoder_guidance: decoderGuidance };
    const done = await this.model.generate(params, (m) => { if (m.stage === "decoder") { last = m; onStep(m); } });
    return { ...last, embedding: done.embedding };
  }

  async run() {
    $("cfg-run").disabled = true;
    document.body.dataset.guidance = "running";
    try {
      this.parts = [];
      for (const g of DECODER_SCALES) {
        $("cfg-status").textContent = `decoder guidance ${g}…`;
        const onStep = g === DECODER_SCALES.at(-1) ? (m) => this.parts.push(m) : undefined;
        const f = await this.decode(g, 4, onStep);
        paintRgba($(`cfg-decoder-${g}`), f.x0, f.width, f.height);
      }
      for (const g of PRIOR_SCALES) {
        $("cfg-status").textContent = `prior guidance ${g}…`;
        const f = await this.decode(8, g);
        paintRgba($(`cfg-prior-${g}`), f.x0, f.width, f.height);
        paintEmbedding($(`cfg-prior-emb-${g}`), f.embedding);
      }
    } catch (e) {
      $("cfg-status").textContent = e.message;
      $("cfg-run").disabled = false;
      document.body.dataset.guidance = "error";
      return;
    }
    $("cfg-status").textContent = "";
    $("cfg-step").max = String(this.parts.length - 1);
    $("cfg-step").disabled = false;
    this.showParts(0);
    $("cfg-run").disabled = false;
    document.body.dataset.guidance = "done";
  }

  showParts(i) {
    const f = this.parts[i];
    $("cfg-step").value = String(i);
    $("cfg-t").textContent = f.t;
    for (const [id, eps] of [["cfg-uncond", f.eps_uncond], ["cfg-cond", f.eps_cond], ["cfg-guided", f.eps]]) {
      paintRgba($(id), chwToRgba(eps, f.width, f.height, NOISE_SCALE), f.width, f.height);
    }
  }
}
