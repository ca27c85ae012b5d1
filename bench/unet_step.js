// The page side of bench/browser_unet_step.mjs: one decoder UNet call on our wasm module (WebGPU or CPU backend)
// or on onnxruntime-web (WebGPU or wasm execution provider), same inputs, same weights (bench/onnx/export_unet.py
// writes them; our GGUF is converted from the same safetensors). Each run = upload inputs, one call, read the
// output back to the CPU, on both sides.
const params = new URLSearchParams(location.search);
const MODEL = `../${params.get("model") ?? "target/unet-step"}/`;
const PKG = `../${params.get("pkg") ?? "dist/pkg"}/`; // ./build.sh build puts the wasm module in dist/pkg
const PKG_THREADS = `../${params.get("pkg_threads") ?? "dist/pkg-threads"}/`; // and the shared-memory one beside it
const ORT_DIST = "./node_modules/onnxruntime-web/dist/";
const log = (s) => { document.getElementById("log").textContent += `${s}\n`; };

async function bytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function inputs() {
  const layout = await (await fetch(`${MODEL}inputs.json`)).json();
  const blob = (await bytes(`${MODEL}inputs.bin`)).buffer;
  const t = Object.fromEntries(layout.tensors.map((x) => [x.name, { shape: x.shape, data: new Float32Array(blob, x.offset, x.bytes / 4) }]));
  return { layout, t };
}

async function adapterInfo() {
  if (!navigator.gpu) return null;
  const a = await navigator.gpu.requestAdapter();
  if (!a) return null;
  const i = a.info ?? {};
  return { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description,
    isFallbackAdapter: i.isFallbackAdapter ?? a.isFallbackAdapter ?? null };
}

/// Our module in a Web Worker (unet_step_worker.js), as the app runs it; threads > 1: the shared-memory module with
/// a pool of that many Web Workers (the page must be cross-origin isolated, as bench/browser_unet_step.mjs serves it).
async function ours(backend, runs, { layout, t }, threads) {
  const gguf = await bytes(`${MODEL}unet.gguf`);
  const mask = Uint8Array.from(t.attention_mask.data, (v) => (v ? 1 : 0));
  const worker = new Worker(new URL("./unet_step_worker.js", import.meta.url), { type: "module" });
  const r = await new Promise((resolve) => {
    worker.onmessage = ({ data }) => resolve(data);
    worker.postMessage({ pkg: new URL(threads > 1 ? PKG_THREADS : PKG, location.href).href, threads, gguf, sample: t.sample.data,
      timestep: layout.timestep, hidden: t.encoder_hidden_states.data, labels: t.class_labels.data, mask, backend, runs });
  });
  worker.terminate();
  if (r.error) throw new Error(r.error);
  return { ms: r.ms, output: r.output, detail: r.adapter ?? { threads, crossOriginIsolated } };
}

async function ort(provider, runs, { layout, t }, threads) {
  const ort = await import(`${ORT_DIST}${provider === "webgpu" ? "ort.webgpu.min.mjs" : "ort.wasm.min.mjs"}`);
  ort.env.wasm.wasmPaths = new URL(ORT_DIST, location.href).href;
  ort.env.wasm.numThreads = threads; // as ours; more than 1 needs the cross-origin isolation the bench server gives
  ort.env.wasm.proxy = provider === "wasm"; // off the main thread, in ORT's proxy worker, as ours runs in a worker
  const session = await ort.InferenceSession.create(await bytes(`${MODEL}unet.onnx`), { executionProviders: [provider] });
  const feeds = () => ({ // own copies: the proxy worker takes their buffers, and the inputs share one
    sample: new ort.Tensor("float32", t.sample.data.slice(), t.sample.shape),
    timestep: new ort.Tensor("int64", BigInt64Array.from([BigInt(layout.timestep)]), []),
    encoder_hidden_states: new ort.Tensor("float32", t.encoder_hidden_states.data.slice(), t.encoder_hidden_states.shape),
    class_labels: new ort.Tensor("float32", t.class_labels.data.slice(), t.class_labels.shape),
    attention_mask: new ort.Tensor("float32", t.attention_mask.data.slice(), t.attention_mask.shape),
  });
  const once = async () => (await session.run(feeds()))[session.outputNames[0]].getData();
  let output = await once(); // warm-up (shader compilation, allocations)
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    output = await once();
    ms.push(performance.now() - t0);
  }
  await session.release();
  return { ms, output, detail: { version: ort.env.versions?.web ?? ort.env.versions?.common, numThreads: ort.env.wasm.numThreads,
    crossOriginIsolated, simd: true, bundle: provider === "webgpu" ? "ort.webgpu.min.mjs" : "ort.wasm.min.mjs" } };
}

window.bench = async (which, runs, threads = 1) => {
  const data = await inputs();
  const t0 = performance.now();
  const r = which === "ours-webgpu" ? await ours("webgpu", runs, data, threads)
    : which === "ours-cpu" ? await ours("cpu", runs, data, threads)
    : which === "ort-webgpu" ? await ort("webgpu", runs, data, threads)
    : which === "ort-wasm" ? await ort("wasm", runs, data, threads)
    : (() => { throw new Error(`unknown ${which}`); })();
  const expected = data.t.expected.data;
  let maxDiff = 0;
  for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(r.output[i] - expected[i]));
  log(`${which} (${threads} thread${threads > 1 ? "s" : ""}): ${r.ms.map((m) => m.toFixed(1)).join(", ")} ms; max |Δ| vs PyTorch ${maxDiff.toExponential(2)}`);
  return { which, ms: r.ms, totalMs: performance.now() - t0, output: Array.from(r.output), maxDiffTorch: maxDiff,
    detail: r.detail, adapter: which.endsWith("webgpu") ? await adapterInfo() : null, userAgent: navigator.userAgent };
};
document.body.dataset.ready = "1";
