// A real static HTTP server for dist/ (or any folder) with injectable faults, for the browser tests and the
// browser benchmarks. Loopback only.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".json": "application/json", ".wasm": "application/wasm", ".png": "image/png", ".svg": "image/svg+xml", ".webmanifest": "application/manifest+json" };

/// The headers that make a page cross-origin isolated (SharedArrayBuffer, the threaded wasm module), as
/// tools/serve.py (`./build.sh serve`) sends them.
export const ISOLATION = { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp", "cross-origin-resource-policy": "same-origin" };

/// What a host sends so that other origins' pages may read its files (README, "Use it in your own page").
export const CORS = { "access-control-allow-origin": "*", "cross-origin-resource-policy": "cross-origin" };

/// faults: file name → "404" | "500" | "corrupt" | "truncate" | "cut" | "slow".
/// `isolate: false` serves without the isolation headers (a plain static host: the service worker adds them).
/// `cors: true` lets pages of any origin read what it serves (a CDN for the npm package, a model host).
export async function startServer(root, { isolate = true, cors = false } = {}) {
  const faults = new Map();
  const hits = new Map();
  const server = createServer(async (req, res) => {
    let path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname)).replace(/^(\.\.[/\\])+/, "");
    if (path.endsWith("/")) path += "index.html";
    const name = path.split("/").pop();
    hits.set(name, (hits.get(name) ?? 0) + 1);
    let body;
    try {
      body = await readFile(join(root, path));
    } catch {
      res.writeHead(404).end("not found");
      return;
    }
    const fault = faults.get(name);
    const headers = { "content-type": TYPES[extname(path)] ?? "application/octet-stream", "cache-control": "no-store", ...(isolate ? ISOLATION : {}), ...(cors ? CORS : {}) };
    if (fault === "404" || fault === "500") {
      res.writeHead(Number(fault), headers).end(`injected ${fault}`);
    } else if (fault === "corrupt") {
      const bad = Buffer.from(body);
      bad[bad.length - 10] ^= 0xff;
      res.writeHead(200, { ...headers, "content-length": bad.length }).end(bad);
    } else if (fault === "truncate") {
      const half = body.subarray(0, body.length >> 1);
      res.writeHead(200, { ...headers, "content-length": half.length }).end(half);
    } else if (fault === "cut") {
      // promise the whole file, send half, then drop the connection
      res.writeHead(200, { ...headers, "content-length": body.length });
      res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.socket.destroy(), 50));
    } else if (fault === "slow") {
      // the whole file in 16 pieces, 150 ms apart (a slow network)
      res.writeHead(200, { ...headers, "content-length": body.length });
      const step = Math.ceil(body.length / 16);
      for (let at = 0; at < body.length; at += step) {
        res.write(body.subarray(at, at + step));
        await new Promise((r) => setTimeout(r, 150));
      }
      res.end();
    } else {
      res.writeHead(200, { ...headers, "content-length": body.length }).end(body);
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, faults, hits, close: () => new Promise((r) => server.close(r)) };
}
