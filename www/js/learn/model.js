// The model, running in the generate page's worker, shared by the panels that need it: loads once,
// then runs one generation at a time and hands each step event to the caller.

import { DEFAULTS } from "../protocol.js";
import { engineWorker, requestedThreads } from "../threads.js";
import { stepsRequester } from "../step-frames.js";
import { downloadOffer, loadsAtOnce } from "../first-visit.js";

/// The loaded model's recommended settings (model.json `recommended`), which `unclip generate` uses too.
let modelRecommends = {};

/// The settings the panels run with: the lesson's prompt, seed and decoder steps, and otherwise what the generate
/// page runs with (the model's recommended settings, else diffusers' defaults), so a panel's picture is the one
/// `unclip generate` draws.
export function recommended(state) {
  return { ...modelRecommends, prompt: state.prompt, seed: state.rseed,
    prior_steps: modelRecommends.prior_steps ?? DEFAULTS.prior_steps, decoder_steps: state.steps,
    sr_steps: modelRecommends.sr_steps ?? DEFAULTS.sr_steps };
}

export class ModelWorker {
  /// `ready` resolves once the panels can run: the model is loaded, or (a download worth asking about:
  /// first-visit.js) it waits for the first run, which downloads it; `loaded` resolves to the worker's `ready`.
  constructor(onStatus, modelUrl) {
    this.worker = engineWorker(requestedThreads().threads);
    this.onStatus = onStatus;
    this.modelUrl = modelUrl;
    this.queue = Promise.resolve();
    this.current = null;
    /// a run's steps as an APNG or a contact sheet (step-frames.js)
    this.steps = stepsRequester((msg, transfer) => this.worker.postMessage(msg, transfer));
    let available;
    this.ready = new Promise((resolve, reject) => { available = { resolve, reject }; });
    this.loaded = new Promise((resolve, reject) => {
      this.worker.onmessage = ({ data: m }) => {
        if (m.type === "probe") {
          if (m.error) { onStatus(m.error); available.reject(new Error(m.error)); reject(new Error(m.error)); return; }
          if (loadsAtOnce(m)) return this.load();
          onStatus(downloadOffer(m));
          available.resolve();
        } else if (m.type === "load_progress") onStatus(`${m.file}: ${(m.loaded / 1e6).toFixed(1)} / ${(m.total / 1e6).toFixed(1)} MB`);
        else if (m.type === "ready") { modelRecommends = m.model.recommended ?? {}; onStatus(`${m.model.name}: ${m.reason}`); resolve(m); available.resolve(); }
        else if (m.type === "step") this.current?.onStep(m);
        else if (m.type === "stage_end") this.current?.onStageEnd?.(m);
        else if (m.type === "steps_png") this.steps.reply(m);
        else if (m.type === "done") { const c = this.current; this.current = null; c?.resolve(m); }
        else if (m.type === "error") {
          onStatus(m.message);
          if (this.current) { const c = this.current; this.current = null; c.reject(new Error(m.message)); } else { reject(new Error(m.message)); available.reject(new Error(m.message)); }
        }
      };
    });
    this.loaded.catch(() => {}); // a failed load is reported by `ready` and by the run that waits for it
    this.worker.postMessage({ type: "probe", id: 1, source: { kind: "url", base: modelUrl } });
  }

  /// Starts the model's load (once).
  load() {
    if (!this.loading) { this.loading = true; this.worker.postMessage({ type: "load", modelUrl: this.modelUrl }); }
    return this.loaded;
  }

  /// Runs `params` (with `edit`, an img2img: protocol.js) after any generation already queued, loading the model
  /// first if no run has yet; resolves to the "done" message. `onStageEnd` gets each stage's end (the text stage's
  /// carries the prompt's text embedding).
  generate(params, onStep, edit = null, onStageEnd = null) {
    const run = () => this.load().then(() => new Promise((resolve, reject) => {
      this.current = { onStep, onStageEnd, resolve, reject };
      this.worker.postMessage({ type: "generate", params, edit });
    }));
    this.queue = this.queue.then(run, run);
    return this.queue;
  }
}
