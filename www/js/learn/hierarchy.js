// Panel 5, the hierarchy: text → prior → image embedding → decoder → super-res, with the tensor shapes of
// the loaded model and the values of the last run made in panel 2.
import { paintRgba } from "../canvas.js";
import { recommended } from "./model.js";

const $ = (id) => document.getElementById(id);

export class HierarchyPanel {
  constructor(state, model) {
    this.state = state;
    this.model = model;
  }

  init() {
    this.model.loaded.then((m) => { // the loaded model's shapes
      $("hier-stages").replaceChildren(...m.info.stages.map((s) => {
        const li = document.createElement("li");
        li.dataset.stage = s.stage;
        li.innerHTML = `<strong></strong><code class="in"></code> → <code class="out"></code>`;
        li.querySelector("strong").textContent = s.what;
        li.querySelector(".in").textContent = s.input;
        li.querySelector(".out").textContent = s.output;
        return li;
      }));
    }, () => {}); // a failed load: the status line says why
    document.addEventListener("learn-run", (e) => this.showRun(e.detail));
    this.model.ready.then(() => { $("hier-steps-run").disabled = false; });
    $("hier-steps-run").onclick = () => this.compareSteps();
  }

  /// The lesson on super-res steps: panel 2's prompt and seed, the recommended prior and decoder steps, super-res
  /// with 2 and with 7 steps.
  async compareSteps() {
    const s = this.state;
    $("hier-steps-run").disabled = true;
    document.body.dataset.srSteps = "running";
    try {
      for (const sr of [2, 7]) {
        $("hier-steps-status").textContent = `${sr}…`;
        const done = await this.model.generate({ ...recommended(s), sr_steps: sr }, () => {});
        paintRgba($(`hier-sr${sr}`), done.rgba, done.width, done.height);
      }
      $("hier-steps-status").textContent = "";
      document.body.dataset.srSteps = "done";
    } catch (e) {
      $("hier-steps-status").textContent = e.message;
      document.body.dataset.srSteps = "error";
    }
    $("hier-steps-run").disabled = false;
  }

  /// detail: {embedding (Float32Array), decoder: last decoder step message, done: the final image}
  showRun({ embedding, decoder, done }) {
    const norm = Math.hypot(...embedding);
    const head = Array.from(embedding.slice(0, 6), (v) => v.toFixed(3)).join(", ");
    $("hier-embedding").removeAttribute("data-i18n"); // values now, not the translated placeholder
    $("hier-embedding").textContent = `‖z‖ = ${norm.toFixed(3)}; z = [${head}, …] (${embedding.length} numbers)`;
    paintRgba($("hier-small"), decoder.x0, decoder.width, decoder.height);
    paintRgba($("hier-final"), done.rgba, done.width, done.height);
    document.body.dataset.hierarchy = "shown";
  }
}
