// A small consumer of the npm package's types (package.test.mjs type-checks it with `tsc --noEmit` against the
// packed tarball): the API, its settings and errors, and the elements' events.
import { ERROR_CODES, PARAMS, Unclip, UnclipError, type ErrorCode, type ModelProbe, type Result, type Settings } from "unclip";
import "unclip/unclip-element.js";

const settings: Settings = { prompt: "a red heart", seed: 3, prior_steps: 2, sampler: "ddim" };
const firstCode: ErrorCode = ERROR_CODES[0];
const steps: number = PARAMS.prior_steps;

async function main(): Promise<Blob> {
  const unloaded = new Unclip({ model: "https://models.example/unclip-emoji/", onProgress: (p) => console.log(p.loaded / p.total) });
  const { missingBytes }: ModelProbe = await unloaded.probe();
  const engine: Unclip = missingBytes > 50e6 ? await Unclip.load({ model: "https://models.example/small/" }) : await unloaded.load();
  console.log(engine.info.backend, engine.info.threads, engine.info.threadsWhy ?? "", firstCode, steps);
  try {
    const out: Result = await engine.generate(settings, { onStep: (s) => console.log(s.stage, s.i, s.n, s.x0?.width), previews: ["x0"] });
    const edited = await engine.edit({ ...settings, strength: 0.5 }, { image: out.pixels });
    const variations = await engine.variations(out.blob, { count: 2 });
    return variations[0]?.blob ?? edited.blob;
  } catch (e) {
    if (e instanceof UnclipError && e.code === "cancelled") throw e;
    throw e;
  } finally {
    engine.close();
  }
}

const element = document.createElement("unclip-generate");
element.setAttribute("prompt", "a red heart");
element.addEventListener("unclip-done", (e) => console.log(e.detail.blob.size, e.detail.pixels.width));
element.addEventListener("unclip-error", (e) => console.log(e.detail.message, e.detail.code));
const forward = document.querySelector("unclip-forward");
console.log(forward?.t, main);
