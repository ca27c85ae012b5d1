// Service worker: keeps the app shell (page, scripts, wasm) available offline. Network first, so a
// new deployment is picked up at once; the cached copy answers when the network does not. Model files
// are not handled here: js/weights.js streams, verifies and caches them itself.
const SHELL = "unclip-shell-v4";
const FILES = ["./", "index.html", "css/app.css", "js/app.js", "js/protocol.js", "js/worker.js", "js/weights.js", "js/canvas.js", "js/remix.js", "js/remix-worker.js", "css/remix.css", "js/edit.js", "css/edit.css", "js/models.js", "js/history.js", "manifest.webmanifest", "icons/icon.svg", "icons/icon-192.png", "icons/icon-512.png", "pkg/unclip.js",
  "pkg/unclip_bg.wasm", "learn.html", "css/learn.css", "js/learn/main.js", "js/learn/forward.js", "js/learn/i18n.js", "js/learn/reverse.js", "js/learn/guidance.js", "js/learn/model.js", "js/learn/hierarchy.js", "js/learn/prior.js", "js/learn/sdedit.js",
  "gallery/gallery.json", "gallery/dog-face.png", "gallery/pizza.png", "gallery/rocket.png", "gallery/red-heart.png", "gallery/cat-face.png",
  "gallery/sun-with-face.png", "gallery/rainbow.png", "gallery/ghost.png"];

self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));

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
        return res;
      })
      .catch(async () => (await caches.match(e.request, { ignoreSearch: true })) ?? Response.error()),
  );
});
