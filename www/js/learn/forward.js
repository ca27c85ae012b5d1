// Panel 1, the forward process: x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε with a seeded ε (torch's randn), ᾱ and the
// noising itself from the scheduler code the pipeline runs (wasm).
import { addNoise, randn, scheduleTables } from "../../pkg/unclip.js";
import { chwToRgba, NOISE_SCALE, paintRgba } from "../canvas.js";
import { t as text } from "../i18n.js";

const SIZE = 64;
const STRIP_T = [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 999];
const $ = (id) => document.getElementById(id);

const paint = (canvas, chw, scale) => paintRgba(canvas, chwToRgba(chw, SIZE, SIZE, scale), SIZE, SIZE);

/// An image element → CHW floats in [-1, 1], drawn on white at 64×64 (also <unclip-forward>'s, package/unclip-element.js).
export function imageToChw(img) {
  const c = document.createElement("canvas");
  c.width = SIZE; c.height = SIZE;
  const g = c.getContext("2d");
  g.fillStyle = "#fff"; g.fillRect(0, 0, SIZE, SIZE);
  g.drawImage(img, 0, 0, SIZE, SIZE);
  const px = g.getImageData(0, 0, SIZE, SIZE).data;
  const n = SIZE * SIZE;
  const chw = new Float32Array(3 * n);
  for (let p = 0; p < n; p++) for (let ch = 0; ch < 3; ch++) chw[ch * n + p] = px[p * 4 + ch] / 127.5 - 1;
  return chw;
}

function plot(canvas, series, { min, max, label }) {
  const g = canvas.getContext("2d");
  const [w, h] = [canvas.width, canvas.height];
  g.clearRect(0, 0, w, h);
  g.font = "12px system-ui"; g.fillStyle = "#888"; g.strokeStyle = "#8886";
  g.strokeRect(30, 10, w - 40, h - 30);
  g.fillText(String(max), 2, 14); g.fillText(String(min), 2, h - 20); g.fillText("t →", w - 40, h - 4); g.fillText(label, 36, 24);
  series.forEach(({ values, color, name }, k) => {
    g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
    values.forEach((v, t) => {
      const x = 30 + (t / 999) * (w - 40);
      const y = 10 + (1 - (Math.min(Math.max(v, min), max) - min) / (max - min)) * (h - 30);
      t ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
    g.fillStyle = color;
    g.fillText(name, w - 90, 26 + 14 * k);
  });
}

export class ForwardPanel {
  constructor(state) {
    this.state = state; // {image, t, schedule, seed, lang}; changes are written back to the URL by main.js
    this.tables = { linear: scheduleTables("linear"), cosine: scheduleTables("cosine") };
    this.x0 = null;
  }

  async init(gallery) {
    const select = $("image");
    for (const { file, label } of gallery.images) select.add(new Option(label, file));
    select.value = this.state.image;
    $("schedule").value = this.state.schedule;
    $("t").value = this.state.t;
    $("seed").value = this.state.seed;
    $("credit").textContent = `Images: ${gallery.source}.`;
    select.onchange = () => this.load(select.value);
    $("upload").onchange = async (e) => {
      const file = e.target.files[0];
      if (!file) return;
      const img = new Image();
      img.src = URL.createObjectURL(file);
      await img.decode();
      this.setImage(imageToChw(img));
    };
    for (const id of ["schedule", "t", "seed"]) $(id).oninput = () => this.update();
    await this.load(this.state.image);
  }

  async load(file) {
    const img = new Image();
    img.src = `gallery/${file}`;
    await img.decode();
    this.state.image = file;
    this.setImage(imageToChw(img));
  }

  setImage(chw) {
    this.x0 = chw;
    this.update();
  }

  update() {
    const s = this.state;
    s.schedule = $("schedule").value;
    s.t = Number($("t").value);
    s.seed = Number($("seed").value);
    const eps = randn(BigInt(s.seed), 3 * SIZE * SIZE);
    const abar = this.tables[s.schedule].alphasCumprod;
    $("t-out").textContent = s.t;
    paint($("x0"), this.x0);
    paint($("eps"), eps, NOISE_SCALE);
    paint($("xt"), addNoise(s.schedule, s.t, this.x0, eps));
    const logSnr = this.tables[s.schedule].logSnr[s.t];
    $("abar").textContent = abar[s.t].toPrecision(5);
    $("signal").textContent = Math.sqrt(abar[s.t]).toPrecision(5);
    $("snr").textContent = Math.exp(logSnr).toPrecision(4);
    $("logsnr").textContent = logSnr.toFixed(3);
    for (const kind of ["linear", "cosine"]) {
      const strip = $(`strip-${kind}`);
      strip.replaceChildren(...STRIP_T.map((t) => {
        const c = document.createElement("canvas");
        c.title = `t = ${t}`;
        paint(c, addNoise(kind, t, this.x0, eps));
        return c;
      }));
    }
    const lin = this.tables.linear, cos = this.tables.cosine;
    plot($("plot-abar"), [{ values: lin.alphasCumprod, color: "#e67e22", name: "linear" }, { values: cos.alphasCumprod, color: "#4b6bfb", name: "cosine" }], { min: 0, max: 1, label: "ᾱ_t" });
    plot($("plot-logsnr"), [{ values: lin.logSnr, color: "#e67e22", name: "linear" }, { values: cos.logSnr, color: "#4b6bfb", name: "cosine" }], { min: -20, max: 10, label: "log SNR" });
    const destroyed = (logSnr) => logSnr.findIndex((v) => v < Math.log(0.01)); // SNR < 1%
    $("destroyed").textContent = text("destroyed", destroyed(lin.logSnr), destroyed(cos.logSnr));
    document.dispatchEvent(new Event("learn-state"));
  }
}
