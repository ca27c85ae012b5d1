// The Remix panel of the generate page: variations of a dropped or gallery image, a blend (slerp) of
// two ticked pictures or prompts, and text diffs. DOM only: the worker runs the ops (remix-worker.js)
// and streams the same step events as a generation, tagged job: "remix".

import { drawPicture, paintRgba, pngDataUrl } from "./canvas.js";
import { STAGES } from "./protocol.js";

const $ = (id) => document.getElementById(id);
/// Images larger than this (longest side) are scaled down before they are sent: the image processor
/// resizes to the tower's input (64–224 px) anyway.
const MAX_SIDE = 1024;

/// `addToHistory(entry)`: history.js's `add`, for each finished frame.
export function initRemix(worker, readSettings, addToHistory) {
  let image = null; // {rgba, width, height, label}
  let picks = []; // ticked pictures: {embedding, label}, oldest first
  let frames = []; // this op's frames as ImageData, for the player
  let player = null;
  let imageEncoder = true;
  const section = $("remix");
  const setState = (s) => { section.dataset.state = s; updateButtons(); };

  function updateButtons() {
    const idle = section.dataset.state !== "running" && !["loading", "running", "unloaded"].includes(document.body.dataset.state);
    $("remix-variations").disabled = !idle || !image || !imageEncoder;
    $("remix-blend").disabled = !idle;
    $("remix-diff").disabled = !idle;
    $("remix-cancel").disabled = section.dataset.state !== "running";
  }
  new MutationObserver(updateButtons).observe(document.body, { attributes: true, attributeFilter: ["data-state"] });

  function showError(message) {
    $("remix-error").textContent = message;
    $("remix-error").hidden = false;
    setState("error");
  }

  // ---- the image: a file, a drop, or the gallery
  async function useBlob(blob, label) {
    const drawn = await drawPicture(blob, $("remix-image"), MAX_SIDE);
    if (!drawn) return showError(`${label} is not an image this browser can decode: use a PNG, JPEG, WebP or GIF`);
    image = { ...drawn, label };
    $("remix-error").hidden = true;
    section.dataset.image = label;
    updateButtons();
  }

  $("remix-file").addEventListener("change", (e) => { const f = e.target.files[0]; if (f) useBlob(f, f.name); });
  const drop = $("remix-drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    const f = e.dataTransfer.files[0];
    if (f) useBlob(f, f.name);
  });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("remix-file").click(); } });

  fetch(new URL("../gallery/gallery.json", import.meta.url)).then((r) => r.json()).then((g) => {
    $("remix-gallery").replaceChildren(...g.images.map(({ file, label }) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button"; b.title = label; b.dataset.file = file;
      const img = document.createElement("img");
      img.src = new URL(`../gallery/${file}`, import.meta.url); img.alt = label;
      b.append(img);
      b.onclick = async () => useBlob(await (await fetch(img.src)).blob(), label);
      li.append(b);
      return li;
    }));
  }).catch(() => {}); // the gallery is an extra: without it, files and drops still work

  // ---- ticked pictures (History entries carry their image embedding)
  /// Adds a tick box to a History entry `li` whose picture has `embedding`.
  function addResult(li, { embedding, label }) {
    const tick = document.createElement("input");
    tick.type = "checkbox"; tick.className = "remix-pick"; tick.title = "tick to remix"; tick.setAttribute("aria-label", `remix ${label}`);
    const entry = { embedding: new Float32Array(embedding), label, tick };
    tick.onchange = () => {
      picks = picks.filter((p) => p !== entry);
      if (tick.checked) picks.push(entry);
      while (picks.length > 2) { picks[0].tick.checked = false; picks.shift(); }
    };
    li.append(tick);
  }

  // ---- running an op
  function params() {
    const p = readSettings();
    delete p.prompt;
    return p;
  }

  function run(req) {
    $("remix-error").hidden = true;
    for (const s of STAGES) { const r = row(s); r.querySelector("progress").value = 0; r.querySelector("small").textContent = ""; }
    $("remix-frames").replaceChildren();
    frames = []; clearInterval(player);
    section.dataset.steps = "0";
    $("remix-status").textContent = "starting…";
    setState("running");
    worker.postMessage({ type: "remix", params: params(), ...req });
  }

  /// An end of a blend: a typed prompt, else the next ticked picture, else the image.
  function source(prompt, used) {
    if (prompt.trim()) return { prompt };
    const pick = picks.find((p) => !used.includes(p));
    if (pick) { used.push(pick); return { embedding: pick.embedding, label: pick.label }; }
    if (image && !used.includes(image)) { used.push(image); return { image }; }
    return null;
  }

  $("remix-variations").onclick = () => run({ op: "variations", image, count: Number($("remix-count").value), invert: $("remix-invert").checked });
  $("remix-blend").onclick = () => {
    const used = [];
    const a = source($("remix-a-prompt").value, used);
    const b = source($("remix-b-prompt").value, used);
    if (!a || !b) return showError("a blend needs two ends: tick two pictures in History, drop an image, or type a prompt for each end");
    run({ op: "interpolate", a, b, frames: Number($("remix-frame-count").value) });
  };
  $("remix-diff").onclick = () => {
    const src = image ? { image } : picks[0] ? { embedding: picks[0].embedding } : null;
    if (!src) return showError("a text diff changes a picture: drop an image or tick a result in History first");
    run({ op: "text_diff", source: src, from: $("remix-from").value, to: $("remix-to").value, frames: 5, max_theta: 0.5 });
  };
  $("remix-cancel").onclick = () => worker.postMessage({ type: "cancel" });

  const row = (stage) => section.querySelector(`.stage[data-stage="${stage}"]`);

  function play() {
    let i = 0, dir = 1;
    clearInterval(player);
    if (frames.length < 2) return;
    player = setInterval(() => {
      const f = frames[i];
      paintRgba($("remix-player"), f.data, f.width, f.height);
      if (i + dir < 0 || i + dir >= frames.length) dir = -dir;
      i += dir;
    }, 200);
  }

  /// Adds a finished frame to the strip and to History (tickable like any result), in order: `added` settles when
  /// every frame so far is in.
  let added = Promise.resolve();
  const addFrame = (m) => { added = added.then(() => showFrame(m)); };
  async function showFrame(m) {
    frames.push(new ImageData(new Uint8ClampedArray(m.rgba), m.width, m.height));
    const url = await pngDataUrl(m.png); // the engine's PNG, the frame's settings and remix in it
    const li = document.createElement("li");
    const img = document.createElement("img");
    img.src = url; img.alt = `frame ${m.k + 1} of ${m.n} (seed ${m.seed})`;
    li.append(img);
    $("remix-frames").append(li);
    addToHistory({ png: url, title: `remix frame ${m.k + 1} (seed ${m.seed})`, settings: null, embedding: m.embedding });
  }

  const handlers = {
    remix_caps(m) { imageEncoder = m.imageEncoder; if (!imageEncoder) $("remix-status").textContent = "This model has no image encoder: variations and image inputs need one; blends of results and prompts still work."; updateButtons(); },
    remix_plan(m) { $("remix-status").textContent = `${m.frames} frames to decode`; },
    stage_start(m) { row(m.stage).querySelector("small").textContent = ""; },
    step(m) {
      const r = row(m.stage);
      r.querySelector("progress").value = (m.i + 1) / m.n;
      const rate = (m.i + 1) / Math.max(m.ms / 1000, 1e-3);
      r.querySelector("small").textContent = `${m.i + 1}/${m.n} · t=${m.t} · ${rate.toFixed(2)} steps/s`;
      if (m.xt) { paintRgba($("remix-xt"), m.xt, m.width, m.height); paintRgba($("remix-x0"), m.x0, m.width, m.height); }
      $("remix-status").textContent = `frame ${m.frame + 1} of ${m.frames}: ${m.stage.replace("_", "-")} step ${m.i + 1} of ${m.n}`;
      section.dataset.steps = String(Number(section.dataset.steps) + 1);
    },
    stage_end(m) { row(m.stage).querySelector("progress").value = 1; row(m.stage).querySelector("small").textContent = `done in ${(m.ms / 1000).toFixed(2)} s`; },
    warning(m) { $("remix-status").textContent = m.message; },
    remix_frame(m) { addFrame(m); },
    remix_done(m) { added.then(() => { $("remix-status").textContent = `${frames.length} frames in ${(m.ms / 1000).toFixed(1)} s`; play(); setState("done"); }); },
    cancelled() { $("remix-status").textContent = "cancelled"; setState("idle"); },
    error(m) { showError(m.message); },
  };

  return {
    handle(m) { handlers[m.type]?.(m); },
    addResult,
    /// The model is (re)loaded: ask what it can do.
    ready() { worker.postMessage({ type: "remix", op: "caps" }); updateButtons(); },
  };
}
