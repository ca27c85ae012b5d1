// Service worker: keeps the app shell (page, scripts, wasm) available offline. Network first, so a
// new deployment is picked up at once; the cached copy answers when the network does not. Model files
// are not handled here: js/weights.js streams, verifies and caches them itself.
// It also makes the page cross-origin isolated on hosts that cannot send headers (the coi-serviceworker
// technique): every response it serves carries COOP + COEP, so after one reload (js/threads.js) the page has
// SharedArrayBuffer and the threaded wasm module. `./build.sh serve` sends the headers itself.
const SHELL = "unclip-shell-v6";
const FILES = ["./", "index.html", "css/app.css", "js/app.js", "js/protocol.js", "js/worker.js", "js/weights.js", "js/canvas.js", "js/remix.js", "js/remix-worker.js", "css/remix.css", "js/edit.js", "css/edit.css", "js/models.js", "js/history.js", "js/grid.js", "js/step-frames.js", "js/i18n.js", "js/first-visit.js", "manifest.webmanifest", "icons/icon.svg", "icons/icon-192.png", "icons/icon-512.png", "pkg/unclip.js",
  "pkg/unclip_bg.wasm", "pkg-threads/unclip.js", "pkg-threads/unclip_bg.wasm", "js/threads.js", "js/wasm.js", "learn.html", "css/learn.css", "js/learn/main.js", "js/learn/forward.js", "js/learn/reverse.js", "js/learn/guidance.js", "js/learn/model.js", "js/learn/hierarchy.js", "js/learn/prior.js", "js/learn/sdedit.js",
  "gallery/gallery.json", "gallery/dog-face.png", "gallery/pizza.png", "gallery/rocket.png", "gallery/red-heart.png", "gallery/cat-face.png",
  "gallery/sun-with-face.png", "gallery/rainbow.png", "gallery/ghost.png"];

self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));

const ISOLATION = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp", "Cross-Origin-Resource-Policy": "same-origin" };

/// `res` with the isolation headers added (a redirect or an opaque response is passed as it is).
function isolated(res) {
  if (res.type === "opaque" || res.type === "opaqueredirect" || res.status === 0) return res;
  const headers = new Headers(res.headers);
  for (const [k, v] of Object.entries(ISOLATION)) headers.set(k, v);
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== location.origin || url.pathname.includes("/models/")) return;
  e.respondWith(
    fetch(e.request)
      .then((res) => {
        if (res.ok) {
          const copy = res.clone();
          caches.open(SHELL).then((c) => c.put(e.request, copy));
        }
        return isolated(res);
      })
      .catch(async () => {
        const cached = await caches.match(e.request, { ignoreSearch: true });
        return cached ? isolated(cached) : Response.error();
      }),
  );
});
