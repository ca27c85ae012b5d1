// How many threads the CPU backend gets, and the cross-origin isolation they need. The threaded wasm
// module (pkg-threads/) shares one WebAssembly memory between Web Workers, which a browser allows only on a
// cross-origin isolated page. `./build.sh serve` sends the COOP/COEP headers; on any other static host the service
// worker (sw.js) adds them to what it serves, and this module reloads the page once so the browser sees them.

/// Most threads used however many cores the device reports (more workers than this cost memory for little gain
/// on the models this page runs).
export const MAX_THREADS = 8;
const RELOADED = "unclip-isolation-reload";
const SW_WAIT_MS = 10_000;

/// The threads to ask the worker for: `?threads=N` (1..MAX_THREADS), else the device's logical cores capped at
/// MAX_THREADS. `note` says why a `?threads=` value was not taken as given.
export function requestedThreads(search = location.search) {
  const cores = Math.max(1, Math.min(navigator.hardwareConcurrency || 1, MAX_THREADS));
  const asked = new URLSearchParams(search).get("threads");
  if (asked === null) return { threads: cores };
  const n = Number(asked);
  if (!Number.isInteger(n) || n < 1) {
    return { threads: cores, note: `?threads=${asked} is not a whole number of threads from 1 to ${MAX_THREADS}, so this uses the default, ${cores} (this device's cores)` };
  }
  if (n > MAX_THREADS) return { threads: MAX_THREADS, note: `?threads=${n} is more than the ${MAX_THREADS} this page uses at most, so it uses ${MAX_THREADS}` };
  return { threads: n };
}

function reloadedOnce() {
  try { return sessionStorage.getItem(RELOADED) === "1"; } catch { return true; }
}

/// Registers the service worker (the offline shell, and isolation on hosts without headers) and, on a page that
/// is not yet isolated, reloads it once under the worker's headers. Resolves to {isolated, why?}, where `why` says
/// why the page runs on one thread; never resolves when a reload is under way.
export async function isolate(swUrl) {
  const sw = navigator.serviceWorker;
  const registered = sw && Promise.race([sw.register(swUrl).catch((e) => e),
    new Promise((r) => setTimeout(() => r(new Error(`no answer within ${SW_WAIT_MS / 1000} s`)), SW_WAIT_MS))]);
  if (self.crossOriginIsolated) {
    try { sessionStorage.removeItem(RELOADED); } catch { /* storage off: nothing to forget */ }
    return { isolated: true };
  }
  if (!sw) {
    return { isolated: false, why: "the page is not cross-origin isolated (the server sends no COOP/COEP headers) and this browser gives it no service worker to add them (a private window, or a page not on https or localhost)" };
  }
  const reg = await registered;
  if (reg instanceof Error) return { isolated: false, why: `the page is not cross-origin isolated (the server sends no COOP/COEP headers) and the service worker that would add them did not start (${reg.message})` };
  if (reloadedOnce()) {
    return { isolated: false, why: "the page is not cross-origin isolated: the server sends no COOP/COEP headers, and this browser did not isolate the page under the service worker's either" };
  }
  // a worker that never activates (blocked by policy or an extension) must not hold the page
  const active = await Promise.race([sw.ready.then(() => true), new Promise((r) => setTimeout(() => r(false), SW_WAIT_MS))]);
  if (!active) return { isolated: false, why: `the page is not cross-origin isolated (the server sends no COOP/COEP headers) and the service worker that would add them did not start within ${SW_WAIT_MS / 1000} s` };
  try { sessionStorage.setItem(RELOADED, "1"); } catch { /* checked by reloadedOnce */ }
  location.reload();
  return new Promise(() => {});
}

/// A module worker running the engine (worker.js) with `threads` threads for its CPU backend.
export function engineWorker(threads) {
  return new Worker(new URL(`./worker.js?threads=${threads}`, import.meta.url), { type: "module" });
}
