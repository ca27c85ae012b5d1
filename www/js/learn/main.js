// The teaching page: wasm init, language, and the lesson's state in the URL so a teacher can share it.
import init from "../../pkg/unclip.js";
import { ForwardPanel } from "./forward.js";
import { GuidancePanel } from "./guidance.js";
import { HierarchyPanel } from "./hierarchy.js";
import { ModelWorker } from "./model.js";
import { PriorPanel } from "./prior.js";
import { ReversePanel } from "./reverse.js";
import { SdeditPanel } from "./sdedit.js";
import { initLanguage, LANGUAGES, storedLanguage } from "../i18n.js";
import { isolate } from "../threads.js";

// threads for the model's CPU path: on a host without COOP/COEP the service worker adds them (one reload)
await isolate(new URL("../../sw.js", import.meta.url));
const q = new URLSearchParams(location.search);
const problems = []; // one sentence per setting in the URL that cannot be used
/// `?name=` as a whole number in [lo, hi], else `fallback` and a sentence in `problems`.
function wholeNumber(name, fallback, lo, hi) {
  if (!q.has(name)) return fallback;
  const v = Number(q.get(name));
  if (q.get(name).trim() !== "" && Number.isInteger(v) && v >= lo && v <= hi) return v;
  problems.push(`?${name}=${q.get(name)} is not a whole number from ${lo} to ${hi}`);
  return fallback;
}
/// `?name=` as one of `allowed`, else `fallback` and a sentence.
function oneOf(name, fallback, allowed) {
  if (!q.has(name)) return fallback;
  if (allowed.includes(q.get(name))) return q.get(name);
  problems.push(`?${name}=${q.get(name)} is not one of ${allowed.join(", ")}`);
  return fallback;
}
const state = {
  image: q.get("image") ?? "dog-face.png",
  t: wholeNumber("t", 250, 0, 999),
  schedule: oneOf("schedule", "cosine", ["cosine", "linear"]),
  seed: wholeNumber("seed", 0, 0, 2 ** 32 - 1),
  lang: oneOf("lang", storedLanguage(), LANGUAGES), // a lesson link may name one; else the remembered one
  prompt: q.get("prompt") ?? "a happy dog",
  rseed: wholeNumber("rseed", 0, 0, 2 ** 32 - 1),
  steps: Number(oneOf("steps", "10", ["5", "10", "25", "50"])),
  model: modelName(),
};
/// `?model=` as a served model's folder name (lowercase letters, digits and dashes).
function modelName() {
  if (!q.has("model") || /^[a-z0-9-]+$/.test(q.get("model"))) return q.get("model") ?? "default";
  problems.push(`?model=${q.get("model")} is not a model name (lowercase letters, digits and dashes)`);
  return "default";
}
const modelUrl = new URL(`models/${state.model}/`, location.href).href;

function writeUrl() {
  history.replaceState(null, "", `?${new URLSearchParams(Object.entries(state).map(([k, v]) => [k, String(v)]))}`);
}

/// A lesson link with settings the page cannot use stops with one sentence (the generate page's hooks:
/// body.dataset.state = "error", #error) and a link to the same lesson without them.
function refuse(message) {
  const error = document.getElementById("error");
  error.textContent = `${message}. `;
  const fix = document.createElement("a");
  fix.href = "learn.html"; fix.textContent = "Open the lesson with its default settings";
  error.append(fix);
  error.hidden = false;
  document.body.dataset.state = "error";
}

await init();
const gallery = await (await fetch("gallery/gallery.json")).json();
if (!gallery.images.some((g) => g.file === state.image)) {
  problems.push(`?image=${state.image} is not one of the gallery's images (${gallery.images.map((g) => g.file).join(", ")})`);
}
if (problems.length) {
  refuse(`This lesson link cannot be used: ${problems.join("; ")}`);
  throw new Error(problems.join("; ")); // stop here: nothing below runs on settings the page cannot use
}
const forward = new ForwardPanel(state);
initLanguage(state.lang);
document.addEventListener("language", ({ detail }) => { // the #lang button, or the other page in another tab
  state.lang = detail;
  forward.update();
});
document.addEventListener("learn-state", writeUrl);
await forward.init(gallery);
const model = new ModelWorker((text) => { document.getElementById("rev-status").textContent = text; }, modelUrl);
new ReversePanel(state, model).init();
new GuidancePanel(state, model).init();
new PriorPanel(state, model, `${modelUrl}concept-map.json`).init();
new HierarchyPanel(state, model).init();
new SdeditPanel(state, model, forward).init();
document.body.dataset.state = "ready";
