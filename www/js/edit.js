// The Edit panel of the generate page: the picture to start from (a file, a drop, or the last result), the mode
// (noise / img2img / inpainting), strength, and for inpainting a mask painted with a brush and an eraser, with
// undo and clear. DOM only: `request()` hands the worker what Engine.edit takes (src/edit.rs says what it does).

import { drawPicture } from "./canvas.js";

const $ = (id) => document.getElementById(id);
/// Pictures larger than this (longest side) are scaled down first: the engine uses a 64-px square of them.
const MAX_SIDE = 512;
const MAX_UNDO = 30;
export const EDIT_MODES = ["off", "img2img", "inpaint"];

export function initEdit() {
  const panel = $("edit");
  const image = $("edit-image");
  const mask = $("edit-mask");
  const ink = mask.getContext("2d", { willReadFrequently: true });
  let picture = null; // {rgba, width, height, label}
  let erasing = false;
  let undo = []; // mask ImageData before each stroke or clear
  let lastResult = null; // the URL of the latest result image

  const mode = () => document.querySelector('input[name="edit_mode"]:checked')?.value ?? "off";
  function setMode(m) {
    const input = document.querySelector(`input[name="edit_mode"][value="${EDIT_MODES.includes(m) ? m : "off"}"]`);
    input.checked = true;
    panel.dataset.mode = input.value;
    if (input.value !== "off") panel.open = true;
  }
  for (const r of document.querySelectorAll('input[name="edit_mode"]')) r.addEventListener("change", () => setMode(mode()));

  /// How much of the mask is painted, for the page's own checks and the tests.
  function countMask() {
    const a = ink.getImageData(0, 0, mask.width, mask.height).data;
    let n = 0;
    for (let i = 3; i < a.length; i += 4) if (a[i] > 0) n++;
    panel.dataset.maskPixels = String(n);
    $("edit-undo").disabled = undo.length === 0;
    $("edit-clear").disabled = n === 0;
    return n;
  }

  // ---- the picture
  async function useSource(source, label) {
    const drawn = await drawPicture(source, image, MAX_SIDE);
    if (!drawn) return error(`${label} is not a picture this browser can decode: use a PNG, JPEG, WebP or GIF`);
    picture = { ...drawn, label };
    mask.width = drawn.width; mask.height = drawn.height; // a new, empty mask over the new picture
    undo = [];
    countMask();
    panel.dataset.image = label;
    if (mode() === "off") setMode("img2img");
  }
  function error(message) {
    $("error").textContent = message;
    $("error").hidden = false;
  }

  $("edit-file").addEventListener("change", (e) => { const f = e.target.files[0]; if (f) useSource(f, f.name); });
  const drop = $("edit-drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const f = e.dataTransfer.files[0];
    if (f) useSource(f, f.name);
  });
  $("edit-use-result").addEventListener("click", async () => {
    if (!lastResult) return;
    const img = new Image(); // (a data: URL: the page's CSP lets images load it, not fetch)
    img.src = lastResult;
    await img.decode();
    useSource(img, "the last result");
  });

  // ---- the mask: white strokes (paint) on transparent (keep); the eraser makes pixels transparent again
  const at = (e) => {
    const r = mask.getBoundingClientRect();
    return [(e.clientX - r.left) * (mask.width / r.width), (e.clientY - r.top) * (mask.height / r.height)];
  };
  let last = null;
  function dab([x, y]) {
    const r = Number($("edit-size").value) / 2 * (mask.width / mask.getBoundingClientRect().width);
    ink.globalCompositeOperation = erasing ? "destination-out" : "source-over";
    ink.strokeStyle = ink.fillStyle = "#fff";
    ink.lineWidth = 2 * r;
    ink.lineCap = "round";
    ink.beginPath();
    if (last) { ink.moveTo(...last); ink.lineTo(x, y); ink.stroke(); } else { ink.arc(x, y, r, 0, 2 * Math.PI); ink.fill(); }
    last = [x, y];
  }
  mask.addEventListener("pointerdown", (e) => {
    if (!picture) return;
    mask.setPointerCapture(e.pointerId);
    undo.push(ink.getImageData(0, 0, mask.width, mask.height));
    if (undo.length > MAX_UNDO) undo.shift();
    last = null;
    dab(at(e));
  });
  mask.addEventListener("pointermove", (e) => { if (last) dab(at(e)); });
  const end = () => { if (last) { last = null; countMask(); } };
  mask.addEventListener("pointerup", end);
  mask.addEventListener("pointercancel", end);
  const tool = (eraser) => {
    erasing = eraser;
    $("edit-brush").setAttribute("aria-pressed", String(!eraser));
    $("edit-eraser").setAttribute("aria-pressed", String(eraser));
  };
  $("edit-brush").onclick = () => tool(false);
  $("edit-eraser").onclick = () => tool(true);
  $("edit-undo").onclick = () => { const prev = undo.pop(); if (prev) ink.putImageData(prev, 0, 0); countMask(); };
  $("edit-clear").onclick = () => {
    undo.push(ink.getImageData(0, 0, mask.width, mask.height));
    ink.clearRect(0, 0, mask.width, mask.height);
    countMask();
  };
  $("strength").addEventListener("input", () => { $("strength-value").value = $("strength").value; });

  return {
    mode,
    setMode,
    /// After a run: the result can become the next picture to edit.
    setResult(url) { lastResult = url; $("edit-use-result").disabled = false; },
    /// {edit} for the worker (null when starting from noise), or {error} with what is missing.
    request() {
      const m = mode();
      if (m === "off") return { edit: null };
      if (!picture) return { error: "choose a picture to edit first (a file, a drop, or the last result), or start from noise" };
      const edit = { image: { rgba: picture.rgba.slice(), width: picture.width, height: picture.height }, mask: null };
      if (m === "inpaint") {
        if (countMask() === 0) return { error: "brush over the part of the picture to repaint first (the white strokes are what changes)" };
        edit.mask = { rgba: new Uint8Array(ink.getImageData(0, 0, mask.width, mask.height).data.buffer), width: mask.width, height: mask.height };
      }
      return { edit, label: picture.label };
    },
  };
}
