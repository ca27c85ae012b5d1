// The generate page: DOM only. The model lives in a worker (worker.js); this module sends it
// messages (protocol.js) and draws what comes back.

import { paintRgba, pngDataUrl } from "./canvas.js";
import { DEFAULTS, GENERATE_STAGES } from "./protocol.js";
import { initEdit } from "./edit.js";
import { downloadOffer, loadsAtOnce } from "./first-visit.js";
import { initGrid } from "./grid.js";
import { initHistory } from "./history.js";
import { initLanguage, t } from "./i18n.js";
import { initModels, MODEL_PARAMS } from "./models.js";
import { initRemix } from "./remix.js";
import { initStepSaver, RunFrames, stepsRequester } from "./step-frames.js";
import { engineWorker, isolate, requestedThreads } from "./threads.js";

const $ = (id) => document.getElementById(id);
// the served models are folders under models/ (models.js: which one the URL asks for, or your own)
const MODELS_URL = new URL("../models/", import.meta.url).href;
const FIELDS = ["prompt", "negative_prompt", "seed", "prior_steps", "decoder_steps", "sr_steps", "prior_guidance", "decoder_guidance", "prior_best_of", "strength", "resample", "backend"];
const NUMERIC = new Set(["seed", "prior_steps", "decoder_steps", "sr_steps", "prior_guidance", "decoder_guidance", "prior_best_of", "strength", "resample"]);

/// The worker owns the wasm engine. After the engine crashes (a panic, or memory that cannot grow) its module is
/// not to be trusted: `restartWorker` replaces the worker and loads the model again (from the cache). The panels
/// talk to whichever worker is current through `port`.
let worker = null;
const port = { postMessage: (...args) => worker.postMessage(...args) };
function startWorker() {
  if (worker) steps.abandon("the engine restarted before the file was made: save it again");
  worker?.terminate();
  worker = engineWorker(threadPlan.threads);
  worker.onmessage = ({ data }) => {
    const panel = { remix, grid }[data.job];
    panel?.handle(data);
    if (!panel || data.crashed) handlers[data.type]?.(data); // a crash restarts the engine for all
  };
  worker.onerror = (e) => { showError(`the worker failed: ${e.message}`); state("error"); };
}
initLanguage();
const remix = initRemix(port, readSettings, (entry) => results.add(entry));
const grid = initGrid(port, readSettings);
/// The last generation's steps, saved as an APNG or a contact sheet (step-frames.js).
let runFrames = new RunFrames();
const steps = stepsRequester((...args) => port.postMessage(...args));
const refreshSteps = initStepSaver($("steps-save"), () => runFrames.sources(), steps.request);
const edit = initEdit();
/// History (history.js): a click shows the result and puts back the settings it ran with.
const results = initHistory({
  onRestore(entry) {
    const p = entry.settings;
    if (p) {
      for (const f of FIELDS) $(f).value = p[f];
      $("strength-value").value = p.strength;
      edit.setMode(p.edit_mode);
      writeUrl(p);
    }
    showResult(entry.png, p);
  },
  decorate: (li, entry) => entry.embedding && remix.addResult(li, { embedding: entry.embedding, label: entry.title }),
});

/// Shows a result image, with a download named after its settings.
function showResult(url, p) {
  $("result").src = url; $("result").hidden = false;
  $("download").href = url; $("download").hidden = false;
  if (p) $("download").download = `unclip-${p.prompt.trim().replace(/[^a-z0-9]+/gi, "-").slice(0, 40) || "unconditional"}-${p.seed}.png`;
  edit.setResult(url);
}
const state = (s) => { document.body.dataset.state = s; };
let stageTimes = {};
let runSettings = null; // the settings the running generation was started with (the form may change meanwhile)
let runLabel = ""; // and the name of the picture it edits

function settingsFromUrl() {
  const q = new URLSearchParams(location.search);
  for (const f of FIELDS) if (q.has(f)) $(f).value = q.get(f);
  if (q.has("edit_mode")) edit.setMode(q.get("edit_mode"));
  $("strength-value").value = $("strength").value;
  return q.get("autorun") === "1";
}

function readSettings() {
  const p = {};
  for (const f of FIELDS) p[f] = NUMERIC.has(f) ? Number($(f).value) : $(f).value;
  p.edit_mode = edit.mode();
  return p;
}

/// The loaded model's recommended settings (model.json `recommended`): each one fills its field where neither the
/// URL nor the person has set it, and counts as that field's default in the URL.
let recommended = {};
const touched = new Set(); // the settings the person has edited on this page

function applyRecommended(model) {
  const q = new URLSearchParams(location.search);
  const previous = recommended;
  recommended = model.recommended;
  const used = [];
  for (const f of new Set([...Object.keys(previous), ...Object.keys(recommended)])) {
    if (q.has(f) || touched.has(f)) continue;
    $(f).value = recommended[f] ?? DEFAULTS[f];
    if (f in recommended) used.push(`${f.replaceAll("_", " ")} ${recommended[f]}`);
  }
  $("recommended-note").textContent = `${model.name} ${model.version} recommends ${used.join(", ")}; a value you set, here or in the URL, overrides it.`;
  $("recommended-note").hidden = used.length === 0;
}

function writeUrl(p) {
  const q = new URLSearchParams();
  const now = new URLSearchParams(location.search);
  const defaults = { ...DEFAULTS, ...recommended };
  for (const k of [...MODEL_PARAMS, "threads"]) if (now.has(k)) q.set(k, now.get(k)); // which model (models.js), threads
  for (const f of [...FIELDS, "edit_mode"]) if (String(p[f]) !== String(defaults[f]) || f === "prompt") q.set(f, p[f]);
  history.replaceState(null, "", `?${q}`);
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

/// The model's line in words: set again in the other language when it switches.
let loadWords = null;
function loadLine(words) { loadWords = words; $("load-text").textContent = words(); }
document.addEventListener("language", () => { if (loadWords) $("load-text").textContent = loadWords(); });

function mb(bytes) { return `${(bytes / 1e6).toFixed(1)} MB`; }

function stageRow(stage) { return document.querySelector(`.stage[data-stage="${stage}"]`); }

function resetStages() {
  for (const s of GENERATE_STAGES) { const r = stageRow(s); r.querySelector("progress").value = 0; r.querySelector("small").textContent = ""; }
}

const handlers = {
  load_progress(m) {
    $("load-bar").value = m.total ? m.loaded / m.total : 0;
    const how = m.cached ? "from the cache" : `${mb(m.rate)}/s, ${Math.ceil(m.eta)} s left`;
    const header = m.tensors ? `, ${m.tensors} tensors` : "";
    $("load-text").textContent = `${m.file}: ${mb(m.fileLoaded)} of ${mb(m.fileBytes)}${header} — total ${mb(m.loaded)} of ${mb(m.total)} (${how})`;
  },
  ready(m) {
    model = m.identity;
    $("load-bar").value = 1;
    loadLine(() => t("gen.ready", `${m.model.name} ${m.model.version}`, m.info.width, m.info.height));
    $("backend-status").textContent = `Backend: ${m.info.backend} — ${m.reason}${threadsText(m)}`;
    document.body.dataset.threads = m.info.threads;
    applyRecommended(m.model);
    remix.ready();
    grid.ready();
    models.ready(m.model);
    worker.postMessage({ type: "storage" });
    $("about-title").textContent = `${m.model.name} ${m.model.version}`;
    $("about-license").textContent = `Licence: ${m.model.license}`;
    $("about-credits").replaceChildren(...m.model.attribution.map((a) => {
      const li = document.createElement("li");
      li.textContent = `${a.name} — ${a.license}${a.copyright ? `, ${a.copyright}` : ""}`;
      return li;
    }));
    if (document.body.dataset.state === "running") return; // a mid-run switch to the CPU after a GPU failure
    $("generate").disabled = false;
    state("ready");
    if (autorun) { autorun = false; $("form").requestSubmit(); }
  },
  stage_start(m) { stageTimes[m.stage] = { steps: m.steps }; },
  step(m) {
    const row = stageRow(m.stage);
    row.querySelector("progress").value = (m.i + 1) / m.n;
    const rate = (m.i + 1) / Math.max(m.ms / 1000, 1e-3);
    row.querySelector("small").textContent = `${m.i + 1}/${m.n} · t=${m.t} · ${rate.toFixed(2)} steps/s · ${((m.n - m.i - 1) / rate).toFixed(1)} s left`;
    if (m.xt) { paintRgba($("xt"), m.xt, m.width, m.height); paintRgba($("x0"), m.x0, m.width, m.height); }
    runFrames.add(m);
    document.body.dataset.steps = String(Number(document.body.dataset.steps || 0) + 1);
  },
  stage_end(m) {
    const row = stageRow(m.stage);
    row.querySelector("progress").value = 1;
    row.querySelector("small").textContent = t("gen.stageDone", (m.ms / 1000).toFixed(2));
  },
  warning(m) { // one line each; a run's own warnings go when the next run starts, the load's stay
    const line = document.createElement("span");
    line.dataset.phase = document.body.dataset.state === "running" ? "run" : "load";
    line.textContent = m.message;
    $("warning").append(line);
    $("warning").hidden = false;
  },
  async done(m) {
    const url = await pngDataUrl(m.png); // the PNG the engine wrote, its settings in it (docs/formats.md, "Pictures")
    const p = runSettings;
    showResult(url, p);
    runFrames.png = m.png;
    refreshSteps();
    document.body.dataset.ms = Math.round(m.ms); // the whole generation in the worker (benchmarks read it)
    const what = p.prompt.trim() ? p.prompt : p.edit_mode === "off" ? "(no prompt: unconditional)" : "(no prompt: toward the picture itself)";
    const how = { off: "", img2img: `, redrawn from ${runLabel} at strength ${p.strength}`, inpaint: `, repainted in ${runLabel}` }[p.edit_mode];
    results.add({ png: url, title: `${what} (seed ${p.seed}${how})`, settings: p, embedding: m.embedding });
    finish("done");
  },
  cancelled() { finish("ready"); },
  probe(m) { // what the first load would download (offerOrLoad)
    if (m.id !== probing) return; // another load started since
    probing = 0;
    if (m.error) return handlers.error({ phase: "load", message: m.error });
    if (loadsAtOnce(m, autorun)) return loadSource(models.source());
    loadLine(() => downloadOffer(m));
    $("generate").disabled = false;
    state("unloaded"); // the first Generate downloads it
  },
  png_settings(m) { restorePicture(m); },
  steps_png(m) { steps.reply(m); },
  error(m) {
    showError(m.message);
    if (m.crashed) { // a new engine, the same model: the page stays usable, and says what happened
      startWorker();
      finish("error");
      loadModel();
      showError(m.message);
      return;
    }
    if (m.phase === "load") { $("load-text").textContent = "The model could not be loaded."; $("retry-load").hidden = false; }
    finish("error");
  },
  storage(m) {
    const n = models.storage(m, (base) => worker.postMessage({ type: "delete_model", base }));
    $("storage-text").textContent = `${n ? `${n} model${n > 1 ? "s" : ""} stored` : "No model is stored"}. Origin storage: ${mb(m.usage)} of ${mb(m.quota)}${m.persisted ? ", persistent" : ""}.`;
  },
};

function finish(s) {
  $("cancel").disabled = true;
  $("generate").disabled = document.body.dataset.state === "loading" && s === "error";
  state(s);
}


$("form").addEventListener("submit", (e) => {
  e.preventDefault();
  if (document.body.dataset.state === "unloaded") { autorun = true; return loadSource(models.source()); } // then runs
  const p = readSettings();
  $("error").hidden = true;
  for (const line of $("warning").querySelectorAll('[data-phase="run"]')) line.remove();
  $("warning").hidden = !$("warning").childElementCount;
  const request = edit.request();
  if (request.error) return showError(request.error);
  runSettings = p;
  runLabel = request.label ?? "";
  writeUrl(p);
  resetStages();
  runFrames = new RunFrames();
  refreshSteps();
  document.body.dataset.steps = "0";
  $("cancel").disabled = false; $("generate").disabled = true;
  state("running");
  const e2 = request.edit;
  worker.postMessage({ type: "generate", params: p, edit: e2, previews: { kinds: ["xt", "x0"], every: 1 } }, e2 ? [e2.image.rgba.buffer, ...(e2.mask ? [e2.mask.rgba.buffer] : [])] : []);
});
$("cancel").onclick = () => worker.postMessage({ type: "cancel" });
// keys (listed in #keys): Ctrl/⌘+Enter generates from any field of the form, Esc cancels a run (here, in the grid
// or in Remix)
$("form").addEventListener("keydown", (e) => {
  if (e.key !== "Enter" || !(e.ctrlKey || e.metaKey)) return;
  e.preventDefault();
  if (!$("generate").disabled) $("form").requestSubmit();
});
document.addEventListener("keydown", (e) => {
  if (e.key !== "Escape") return;
  for (const id of ["cancel", "remix-cancel", "grid-cancel"]) if (!$(id).disabled) $(id).click();
});

/// A picture dropped on, pasted into or opened from the prompt area: the worker reads its settings
/// (src/web/picture.rs) and `restorePicture` puts them in the form.
function readPicture(file) {
  if (!file) return;
  const name = file.name || "the pasted picture";
  file.arrayBuffer().then((bytes) => worker.postMessage({ type: "read_png", bytes, file: name }, [bytes]));
}
const area = $("prompt-area");
area.addEventListener("dragover", (e) => { if (e.dataTransfer?.types.includes("Files")) { e.preventDefault(); area.classList.add("dropping"); } });
area.addEventListener("dragleave", () => area.classList.remove("dropping"));
area.addEventListener("drop", (e) => {
  area.classList.remove("dropping");
  const file = e.dataTransfer?.files[0];
  if (!file) return;
  e.preventDefault();
  readPicture(file);
});
area.addEventListener("paste", (e) => {
  const file = [...(e.clipboardData?.files ?? [])].find((f) => f.type.startsWith("image/"));
  if (!file) return; // text pastes as text
  e.preventDefault();
  readPicture(file);
});
$("open-png").addEventListener("change", (e) => { readPicture(e.target.files[0]); e.target.value = ""; });

/// The loaded model's identity ({name, version, sha256}: `ready`), to say when a picture was drawn by another.
let model = null;
const RESTORED = ["prompt", "negative_prompt", "seed", "prior_steps", "decoder_steps", "sr_steps", "prior_guidance", "decoder_guidance", "prior_best_of"];

/// The answer to a `read_png`: the form takes the picture's settings ({settings}: an ImageSettings record, checked
/// by the engine), and #restored says in one line what it restored, and what the page cannot redo.
function restorePicture({ file, settings: s, error }) {
  const say = (text) => { $("restored").textContent = text; $("restored").hidden = false; };
  if (error) return say(error);
  if (!s) return say(`${file} carries no unclip settings: it is just a picture (open it in Edit or Remix to use it).`);
  for (const f of RESTORED) { $(f).value = s[f]; touched.add(f); }
  if (s.edit) { $("strength").value = s.edit.strength; $("resample").value = s.edit.resample; $("strength-value").value = s.edit.strength; }
  writeUrl(readSettings());
  const notes = [];
  if (model && s.model.sha256 !== model.sha256) notes.push(`it was drawn by ${s.model.name} ${s.model.version} and this page runs ${model.name} ${model.version}, so the picture will differ`);
  if (s.sampler !== "ddpm") notes.push(`it was sampled with ${s.sampler.toUpperCase()}, which this page does not offer`);
  if (s.edit) notes.push(`it was ${s.edit.mask_sha256 ? "an inpainting" : "an img2img"} at strength ${s.edit.strength} of a picture the file does not hold`);
  if (s.remix || s.step || s.step_frames) notes.push("it was a remix frame or a run's steps, which Generate does not redo");
  if (s.grid) notes.push(`it was an X/Y grid of ${s.grid.x.setting.replaceAll("_", " ")} × ${s.grid.y.setting.replaceAll("_", " ")}, whose base settings the form takes (the grid's axes are in its X and Y fields)`);
  if (s.grid) for (const [which, a] of [["x", s.grid.x], ["y", s.grid.y]]) { $(`grid-${which}`).value = a.setting; $(`grid-${which}-values`).value = a.values.join(", "); }
  const prompt = s.prompt.trim() ? `“${s.prompt}”` : "no prompt";
  say(`Restored from ${file}: ${prompt}${s.negative_prompt ? `, not “${s.negative_prompt}”` : ""}, seed ${s.seed}, steps ${s.prior_steps}/${s.decoder_steps}/${s.sr_steps}, guidance ${s.prior_guidance}/${s.decoder_guidance}, best of ${s.prior_best_of}${notes.length ? `; ${notes.join("; ")}` : ""}.`);
}

$("dice").onclick = () => { $("seed").value = Math.floor(Math.random() * 2 ** 32); };
$("about-open").onclick = () => $("about").showModal();
$("storage").addEventListener("toggle", () => { if ($("storage").open) worker.postMessage({ type: "storage" }); });
$("storage-clear").onclick = () => worker.postMessage({ type: "clear_cache" });

/// Loads `source` (models.js) on the chosen backend; the worker queues it behind any run.
function loadSource(source) {
  probing = 0;
  state("loading");
  $("error").hidden = true;
  $("generate").disabled = true;
  loadLine(() => t("gen.loading"));
  worker.postMessage({ type: "load", source, backend: $("backend").value });
}
const models = initModels(MODELS_URL, loadSource);
function loadModel() { loadSource(models.source()); }
/// The page's first load: a served model whose download is worth asking about waits for the first Generate,
/// with its size on the load line (first-visit.js; docs/architecture.md, "The pages"). `probing`: the probe's id.
let probing = 0;
let probes = 0;
function offerOrLoad() {
  const source = models.source();
  if (source.kind !== "url") return loadSource(source); // a folder picked before: in the cache
  state("loading");
  loadLine(() => t("gen.loading"));
  probing = ++probes;
  worker.postMessage({ type: "probe", id: probing, source });
}

const retry = document.createElement("button");
retry.id = "retry-load"; retry.type = "button"; retry.textContent = "Retry"; retry.hidden = true;
retry.onclick = () => { retry.hidden = true; $("error").hidden = true; state("loading"); loadModel(); };
$("load").append(retry);
// (a model not loaded yet takes the choice when it loads)
$("backend").addEventListener("change", () => { if (!["running", "unloaded"].includes(document.body.dataset.state)) { state("loading"); loadModel(); } });

/// The CPU backend's threads in words, for the backend line: how many, or why one.
function threadsText(m) {
  if (m.info.backend !== "cpu") return "";
  const n = m.info.threads;
  if (n > 1) return `; ${n} threads (shared-memory wasm)`;
  const why = threadPlan.note ?? isolation.why ?? m.threading?.note
    ?? (threadPlan.threads === 1 ? (new URLSearchParams(location.search).has("threads") ? "you asked for one (?threads=1)" : "this device reports one core") : "");
  return `; 1 thread${why ? `: ${why}` : ""}`;
}

// the service worker: the offline shell, and cross-origin isolation (threads) on hosts that send no COOP/COEP;
// on such a host the first visit reloads once here
const threadPlan = requestedThreads();
const isolation = await isolate(new URL("../sw.js", import.meta.url));
if (threadPlan.note) handlers.warning({ message: threadPlan.note });

let autorun = settingsFromUrl();
for (const f of FIELDS) $(f).addEventListener("input", () => touched.add(f));
startWorker();
offerOrLoad();
worker.postMessage({ type: "storage" }); // the stored models, for the model menu
