// A run's steps as one picture, for slides (docs/formats.md, "Pictures"): the x_t or x̂0 frames of one stage, as the
// step events carried them (the frames `unclip generate --steps-dir` writes), saved as an APNG or a contact sheet.
// The worker's engine writes both (src/web/step_frames.rs, src/png_file.rs), carrying the run's own settings.
import { savePng } from "./canvas.js";
import { t } from "./i18n.js";

/// The pictures of one run: each stage's step events that carry x_t and x̂0, and the run's PNG (the `done` message's).
export class RunFrames {
  constructor() { this.stages = new Map(); this.png = null; }

  add(m) {
    if (!m.xt) return;
    if (!this.stages.has(m.stage)) this.stages.set(m.stage, []);
    this.stages.get(m.stage).push(m);
  }

  /// One source per stage, for `initStepSaver`.
  sources() {
    return [...this.stages].map(([stage, frames]) => ({ key: stage, label: t(`steps.${stage}`), frames, png: this.png }));
  }
}

/// Requests to the worker answered by {type: "steps_png", id, png | error}: `request(msg, transfer)` resolves to the
/// PNG's bytes; the page hands each answer to `reply`, and calls `abandon(why)` when it starts a new worker (the old
/// one's answers never come: each waiting save then fails with `why` instead of waiting for ever).
export function stepsRequester(post) {
  const pending = new Map();
  let next = 0;
  return {
    request(msg, transfer) {
      const id = next++;
      return new Promise((resolve, reject) => { pending.set(id, { resolve, reject }); post({ ...msg, id }, transfer); });
    },
    reply(m) {
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.error) p?.reject(new Error(m.error)); else p?.resolve(m.png);
    },
    abandon(why) {
      for (const p of pending.values()) p.reject(new Error(why));
      pending.clear();
    },
  };
}

/// The "save the steps" controls in `root` (an empty element with an id): which run or stage (`sources()`: [{key,
/// label, frames: step events, png: the run's PNG}]), x_t or x̂0, and a button for each file; `request` is a
/// `stepsRequester`'s. Returns `refresh()`, for when the sources change.
export function initStepSaver(root, sources, request, name = "unclip") {
  const make = (tag, props) => Object.assign(document.createElement(tag), props);
  const label = make("span", {});
  const which = make("select", { id: `${root.id}-source` });
  const image = make("select", { id: `${root.id}-image` });
  image.append(make("option", { value: "xt", textContent: "x_t" }), make("option", { value: "x0", textContent: "x̂₀" }));
  const apng = make("button", { type: "button", id: `${root.id}-apng` });
  const sheet = make("button", { type: "button", id: `${root.id}-sheet` });
  const status = make("span", { className: "hint", role: "status" });
  root.replaceChildren(label, which, image, apng, sheet, status);
  const texts = () => { label.textContent = t("steps.save"); apng.textContent = t("steps.apng"); sheet.textContent = t("steps.sheet"); refresh(); };

  function refresh() {
    const list = sources().filter((s) => s.frames?.length && s.png);
    const keep = which.value;
    which.replaceChildren(...list.map((s) => make("option", { value: s.key, textContent: s.label })));
    if (list.some((s) => s.key === keep)) which.value = keep;
    which.hidden = list.length < 2;
    root.hidden = list.length === 0;
  }

  async function save(asSheet) {
    const source = sources().find((s) => s.key === which.value);
    const frames = source.frames, what = image.value;
    const { width, height, stage } = frames[0];
    const rgba = new Uint8Array(frames.length * width * height * 4);
    frames.forEach((f, k) => rgba.set(f[what], k * width * height * 4));
    const record = { stage, image: what, t: frames.map((f) => f.t), frame_width: width, frame_height: height };
    status.textContent = "";
    try {
      const png = await request({ type: "steps_png", run_png: source.png, frames: record, rgba, sheet: asSheet }, [rgba.buffer]);
      savePng(png, `${name}-${source.key}-${what}${asSheet ? "-sheet" : ""}.png`);
    } catch (e) {
      status.textContent = e.message;
    }
  }
  apng.onclick = () => save(false);
  sheet.onclick = () => save(true);
  document.addEventListener("language", texts);
  texts();
  return refresh;
}
