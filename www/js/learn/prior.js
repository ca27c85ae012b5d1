// Panel 4, the prior: per prior step, how close its current guess ẑ of the image embedding is to the text
// embedding z_t (cosine, computed in wasm), and the guesses' path across a 2-D PCA map of the image tower's
// embeddings of the training concepts (the model's concept-map.json, made at build time by
// train/make_concept_map.py), with the concepts nearest to the final embedding (cosines from wasm).
import { cosineSimilarity } from "../../pkg/unclip.js";

const $ = (id) => document.getElementById(id);

const dot = (a, b) => a.reduce((s, v, i) => s + v * b[i], 0);
const norm = (a) => Math.sqrt(dot(a, a));

/// p = (z/‖z‖ − mean)·components: a point of the map's plane.
export function project(map, z) {
  const n = norm(z);
  const c = z.map((v, i) => v / n - map.mean[i]);
  return map.components.map((axis) => dot(c, axis));
}

/// The `k` concepts of the map nearest to z by cosine: [{label, cosine}], nearest first.
export function nearest(map, z, k = 5) {
  const zf = Float32Array.from(z);
  return map.concepts.map((label, i) => ({ label, cosine: cosineSimilarity(zf, Float32Array.from(map.embeddings[i])) }))
    .sort((a, b) => b.cosine - a.cosine).slice(0, k);
}

function plotCosine(canvas, values) {
  const g = canvas.getContext("2d");
  const [w, h, pad] = [canvas.width, canvas.height, 24];
  g.clearRect(0, 0, w, h);
  g.strokeStyle = "#888"; g.strokeRect(pad, 4, w - pad - 4, h - pad - 4);
  const lo = Math.min(0, ...values), hi = Math.max(1e-6, ...values);
  const x = (i) => pad + (i / Math.max(1, values.length - 1)) * (w - pad - 8);
  const y = (v) => 4 + (1 - (v - lo) / (hi - lo)) * (h - pad - 8);
  g.fillStyle = "#555"; g.font = "11px sans-serif";
  g.fillText(hi.toFixed(2), 0, 12); g.fillText(lo.toFixed(2), 0, h - pad);
  g.strokeStyle = "#c33"; g.beginPath();
  values.forEach((v, i) => (i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v))));
  g.stroke();
  g.fillStyle = "#c33";
  values.forEach((v, i) => g.fillRect(x(i) - 2, y(v) - 2, 4, 4));
}

function plotMap(canvas, map, path, text, near) {
  const g = canvas.getContext("2d");
  const [w, h, pad] = [canvas.width, canvas.height, 10];
  g.clearRect(0, 0, w, h);
  const points = map.embeddings.map((e) => project(map, e));
  const all = [...points, ...path, ...(text ? [text] : [])];
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (v) => pad + ((v - x0) / (x1 - x0 || 1)) * (w - 2 * pad);
  const sy = (v) => h - pad - ((v - y0) / (y1 - y0 || 1)) * (h - 2 * pad);
  const labelled = new Set(near.map((n) => n.label));
  g.font = "10px sans-serif";
  points.forEach(([px, py], i) => {
    const mark = labelled.has(map.concepts[i]);
    g.fillStyle = mark ? "#06c" : "#bbb";
    g.fillRect(sx(px) - 1.5, sy(py) - 1.5, 3, 3);
    if (mark || i % 12 === 0) { g.fillStyle = mark ? "#06c" : "#999"; g.fillText(map.concepts[i], sx(px) + 3, sy(py) - 3); }
  });
  if (text) { g.fillStyle = "#090"; g.font = "bold 14px sans-serif"; g.fillText("★ z_t", sx(text[0]) - 5, sy(text[1]) + 5); }
  g.strokeStyle = "#c33"; g.lineWidth = 1.5; g.beginPath();
  path.forEach(([px, py], i) => (i ? g.lineTo(sx(px), sy(py)) : g.moveTo(sx(px), sy(py))));
  g.stroke();
  g.fillStyle = "#c33";
  path.forEach(([px, py]) => g.fillRect(sx(px) - 2, sy(py) - 2, 4, 4));
}

export class PriorPanel {
  constructor(state, model, mapUrl) {
    this.state = state;
    this.model = model;
    this.mapUrl = mapUrl;
    this.map = null;
  }

  init() {
    fetch(this.mapUrl).then((r) => (r.ok ? r.json() : null)).catch(() => null).then((map) => {
      this.map = map;
      $("prior-nomap").hidden = Boolean(map);
      if (map) plotMap($("prior-map"), map, [], null, []);
    });
    this.model.ready.then(() => { $("prior-run").disabled = false; document.body.dataset.prior = "ready"; },
      () => { document.body.dataset.prior = "error"; });
    $("prior-run").onclick = () => this.run();
  }

  async run() {
    const s = this.state;
    $("prior-run").disabled = true;
    document.body.dataset.prior = "running";
    const steps = [];
    try {
      const params = { prompt: s.prompt, seed: s.rseed, prior_steps: 25, decoder_steps: 2, sr_steps: 2, decoder_guidance: 1 };
      let zt = null; // the prompt's text embedding, from the run's text stage
      const done = await this.model.generate(params, (m) => {
        if (m.stage !== "prior" || !m.embedding) return;
        steps.push({ t: m.t, cosine: m.cosine, z: Array.from(m.embedding), zt });
        $("prior-status").textContent = `step ${m.i + 1}/${m.n}, t = ${m.t}, cos = ${Number.isFinite(m.cosine) ? m.cosine.toFixed(3) : "–"}`;
      }, null, (m) => { if (m.text_embedding) zt = Array.from(m.text_embedding); });
      const final = steps.at(-1).z;
      const result = { steps, embedding: Array.from(done.embedding) };
      if (!final.some((v) => v !== 0)) {
        // an untrained prior (clip_std = 0, like the random test model) only ever says "zero"
        $("prior-status").textContent = "This model's prior outputs all-zero embeddings (it is untrained): nothing to plot.";
        window.__prior = result;
        document.body.dataset.prior = "done";
        return;
      }
      plotCosine($("prior-cosine"), steps.map((x) => x.cosine));
      if (this.map) {
        result.path = steps.map((x) => project(this.map, x.z));
        result.text = project(this.map, steps[0].zt);
        result.nearest = nearest(this.map, final);
        plotMap($("prior-map"), this.map, result.path, result.text, result.nearest);
        $("prior-nearest").replaceChildren(...result.nearest.map((n) => {
          const li = document.createElement("li");
          li.textContent = `${n.label} (cos ${n.cosine.toFixed(3)})`;
          return li;
        }));
      }
      window.__prior = result; // read by the tests
      document.body.dataset.prior = "done";
    } catch (e) {
      $("prior-status").textContent = e.message;
      document.body.dataset.prior = "error";
    } finally {
      $("prior-run").disabled = false;
    }
  }
}
