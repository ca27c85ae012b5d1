// The X/Y grid of the generate page (docs/formats.md, "Pictures"): two settings, their values, one ordinary
// generation per cell (the engine makes and checks the cells' settings: src/image_settings/grid.rs), each cell
// drawn as it finishes; then the labelled grid, written by the engine as one PNG carrying the grid's record.
import { GRID } from "./protocol.js";
import { paintRgba } from "./canvas.js";
import { t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const LABEL = 14; // px: the labels' line height in the grid picture

/// `port` reaches the worker; `readSettings()` is the form's settings, the grid's base. Messages of the grid's runs
/// carry job: "grid" and come to `handle`.
export function initGrid(port, readSettings) {
  let run = null; // {base, x, y, cells, k, images, started}
  const setState = (s) => { document.body.dataset.grid = s; };
  const say = (text) => { $("grid-status").textContent = text; };
  const name = (setting) => t(`gen.${setting}`);

  function menus() {
    for (const [id, initial] of [["grid-x", "seed"], ["grid-y", "decoder_guidance"]]) {
      const menu = $(id), keep = menu.value || initial;
      menu.replaceChildren(...GRID.settings.map((s) => Object.assign(document.createElement("option"), { value: s, textContent: name(s) })));
      menu.value = keep;
    }
  }

  /// An axis from its menu and its text field, or a sentence.
  function axis(which) {
    const words = $(`grid-${which}-values`).value.split(/[\s,，]+/).filter(Boolean);
    const bad = words.find((w) => !Number.isFinite(Number(w)));
    if (bad !== undefined) return { error: t("grid.notNumber", which.toUpperCase(), bad) };
    return { setting: $(`grid-${which}`).value, values: words.map(Number) };
  }

  function start() {
    const x = axis("x"), y = axis("y");
    const error = x.error ?? y.error;
    if (error) return say(error);
    run = { base: readSettings(), x, y, cells: [], k: 0, images: [], started: performance.now() };
    $("grid-download").hidden = true;
    $("grid-run").disabled = true;
    $("grid-cancel").disabled = false;
    setState("running");
    say("");
    port.postMessage({ type: "grid_cells", job: "grid", params: run.base, x, y });
  }

  function table() {
    const head = document.createElement("tr");
    head.append(Object.assign(document.createElement("th"), { textContent: `${name(run.y.setting)} ↓ · ${name(run.x.setting)} →` }));
    for (const v of run.x.values) head.append(Object.assign(document.createElement("th"), { textContent: String(v) }));
    const rows = run.y.values.map((v, row) => {
      const tr = document.createElement("tr");
      tr.append(Object.assign(document.createElement("th"), { textContent: String(v) }));
      run.x.values.forEach((_, col) => {
        const c = Object.assign(document.createElement("canvas"), { width: 64, height: 64 });
        Object.assign(c.dataset, { col, row });
        const td = document.createElement("td");
        td.append(c);
        tr.append(td);
      });
      return tr;
    });
    $("grid-table").replaceChildren(head, ...rows);
  }

  function next() {
    if (run.k < run.cells.length) return port.postMessage({ type: "generate", job: "grid", params: run.cells[run.k], previews: { kinds: [], every: 0 } });
    picture();
  }

  /// The labelled grid: the X setting's name and values above, the Y setting's at the left, the cells meeting
  /// edge to edge; the engine writes it with the record that says where every cell lies.
  function picture() {
    const { width: cw, height: ch } = run.images[0];
    const [cols, rows] = [run.x.values.length, run.y.values.length];
    const g = document.createElement("canvas").getContext("2d");
    const font = `12px ${getComputedStyle(document.body).fontFamily}`;
    g.font = font;
    const yLabels = [name(run.y.setting), ...run.y.values.map(String)];
    const left = Math.ceil(Math.max(...yLabels.map((s) => g.measureText(s).width))) + 12, top = 2 * LABEL + 8;
    g.canvas.width = left + cols * cw; g.canvas.height = top + rows * ch;
    g.fillStyle = "#fff"; g.fillRect(0, 0, g.canvas.width, g.canvas.height);
    g.fillStyle = "#000"; g.font = font; g.textBaseline = "middle"; // resizing the canvas reset the font
    g.textAlign = "center";
    g.fillText(name(run.x.setting), left + cols * cw / 2, LABEL / 2 + 2);
    run.x.values.forEach((v, col) => g.fillText(String(v), left + (col + 0.5) * cw, LABEL * 1.5 + 4));
    g.textAlign = "left";
    g.fillText(yLabels[0], 4, LABEL * 1.5 + 4);
    run.y.values.forEach((v, row) => g.fillText(String(v), 4, top + (row + 0.5) * ch));
    run.images.forEach((im, k) => g.putImageData(new ImageData(new Uint8ClampedArray(im.rgba), cw, ch), left + (k % cols) * cw, top + Math.floor(k / cols) * ch));
    const rgba = new Uint8Array(g.getImageData(0, 0, g.canvas.width, g.canvas.height).data.buffer);
    const grid = { x: run.x, y: run.y, left, top, cell_width: cw, cell_height: ch };
    port.postMessage({ type: "grid_png", job: "grid", params: run.base, grid, rgba, width: g.canvas.width, height: g.canvas.height }, [rgba.buffer]);
  }

  function finish(s, text) {
    $("grid-run").disabled = false;
    $("grid-cancel").disabled = true;
    say(text);
    setState(s);
  }

  const handlers = {
    grid_cells(m) { run.cells = m.cells; table(); next(); },
    step(m) { say(`${t("grid.cell", run.k + 1, run.cells.length)} · ${t(`stage.${m.stage}`)} ${m.i + 1}/${m.n}`); },
    done(m) {
      const c = $("grid-table").querySelector(`canvas[data-col="${run.k % run.x.values.length}"][data-row="${Math.floor(run.k / run.x.values.length)}"]`);
      paintRgba(c, m.rgba, m.width, m.height);
      c.dataset.done = "1";
      run.images.push({ rgba: m.rgba, width: m.width, height: m.height });
      run.k++;
      next();
    },
    grid_png(m) {
      const link = $("grid-download");
      URL.revokeObjectURL(link.href);
      link.href = URL.createObjectURL(new Blob([m.png], { type: "image/png" }));
      link.hidden = false;
      finish("done", t("grid.done", run.cells.length, ((performance.now() - run.started) / 1000).toFixed(1)));
    },
    cancelled() { finish("ready", t("grid.cancelled")); },
    error(m) { finish("error", m.message); },
  };
  $("grid-run").onclick = start;
  $("grid-cancel").onclick = () => port.postMessage({ type: "cancel" });
  document.addEventListener("language", menus);
  menus();
  return {
    handle: (m) => handlers[m.type]?.(m),
    ready() { if (document.body.dataset.grid !== "running") $("grid-run").disabled = false; },
  };
}
