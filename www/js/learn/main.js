// The teaching page: wasm init, language, and the lesson's state in the URL so a teacher can share it.
import init from "../../pkg/unclip.js";
import { ForwardPanel } from "./forward.js";
import { GuidancePanel } from "./guidance.js";
import { HierarchyPanel } from "./hierarchy.js";
import { ModelWorker } from "./model.js";
import { PriorPanel } from "./prior.js";
import { ReversePanel } from "./reverse.js";
import { applyLanguage } from "./i18n.js";

const q = new URLSearchParams(location.search);
const state = {
  image: q.get("image") ?? "dog-face.png",
  t: Number(q.get("t") ?? 250),
  schedule: q.get("schedule") === "linear" ? "linear" : "cosine",
  seed: Number(q.get("seed") ?? 0),
  lang: q.get("lang") === "zh" ? "zh" : "en",
  prompt: q.get("prompt") ?? "a happy dog",
  rseed: Number(q.get("rseed") ?? 0),
  steps: [5, 10, 25, 50].includes(Number(q.get("steps"))) ? Number(q.get("steps")) : 10,
  model: /^[a-z0-9-]+$/.test(q.get("model") ?? "") ? q.get("model") : "default",
};
const modelUrl = new URL(`models/${state.model}/`, location.href).href;

function writeUrl() {
  history.replaceState(null, "", `?${new URLSearchParams(Object.entries(state).map(([k, v]) => [k, String(v)]))}`);
}

await init();
const gallery = await (await fetch("gallery/gallery.json")).json();
const forward = new ForwardPanel(state);
applyLanguage(state.lang);
document.getElementById("lang").onclick = () => {
  state.lang = state.lang === "en" ? "zh" : "en";
  applyLanguage(state.lang);
  forward.update();
};
document.addEventListener("learn-state", writeUrl);
await forward.init(gallery);
const model = new ModelWorker((text) => { document.getElementById("rev-status").textContent = text; }, modelUrl);
new ReversePanel(state, model).init();
new GuidancePanel(state, model).init();
new PriorPanel(state, model, `${modelUrl}concept-map.json`).init();
new HierarchyPanel(model).init();
document.body.dataset.state = "ready";
