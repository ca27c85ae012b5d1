// The wasm module this worker runs: the shared-memory build (pkg-threads/: rayon's thread pool on Web
// Workers, used by the CPU backend's GEMMs, attention and norms) when the page asked for more than one thread
// (threads.js puts `?threads=N` on this worker's URL) and is cross-origin isolated; else the single-threaded
// build (pkg/). Importers read the live binding `wasm` once `ready` has resolved.

export let wasm = null;
/// {threads: the pool's size (1 for the single-threaded module), note?: why fewer threads than asked}
export let threading = { threads: 1 };

// (the package's worker starts from a blob URL, which carries no query: its shim sets self.unclipWorker.threads)
const asked = Math.max(1, Number(self.unclipWorker?.threads ?? new URL(self.location.href).searchParams.get("threads")) || 1);

export const ready = (async () => {
  if (asked > 1 && self.crossOriginIsolated) {
    try {
      const m = await import("../pkg-threads/unclip.js");
      await m.default();
      await m.initThreadPool(asked);
      wasm = m;
      threading = { threads: asked };
      return;
    } catch (e) {
      threading = { threads: 1, note: `the threaded engine did not start (${e.message ?? e}), so the CPU backend runs on one thread` };
    }
  } else if (asked > 1) {
    threading = { threads: 1, note: "the page is not cross-origin isolated, so the CPU backend runs on one thread" };
  }
  const m = await import("../pkg/unclip.js");
  await m.default();
  wasm = m;
})();

/// An engine error that a run on the CPU may not have: the GPU failed or was lost (the error's `code` is "device";
/// protocol.js ERROR_CODES lists every code).
export const gpuFailed = (e) => e?.code === "device";
