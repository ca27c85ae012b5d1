// Stages the npm package `unclip` (README, "Use it in your own page") and packs it with `npm pack`:
//   node package/build.mjs [DEST]     → DEST/unclip-<version>.tgz (default: the repository's root)
// The package is this folder's API, elements and types, both wasm modules (pkg/, pkg-threads/: ./build.sh build
// makes them) and the modules of www/js/ that its entry points reach (the app's worker and protocol, unchanged),
// with the version of Cargo.toml.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const HERE = join(ROOT, "package");
const ENTRIES = ["unclip.js", "unclip-element.js"];
const OWN = [...ENTRIES, "unclip.d.ts", "unclip-element.d.ts", "README.md"];

/// The package path of a file (its own folder, js/ for www/js/, pkg*/) and where it comes from.
function source(path) {
  if (path.startsWith("js/")) return join(ROOT, "www", path);
  if (/^pkg(-threads)?\//.test(path)) return join(ROOT, path);
  return join(HERE, path);
}

/// Every module of js/ reachable from the entry points: static and dynamic imports and `new URL("…",
/// import.meta.url)` (the worker), relative ones only.
function reachable() {
  const seen = new Set();
  const todo = [...ENTRIES];
  const refs = /(?:\bfrom\s*|\bimport\s*\(?\s*|new URL\(\s*)["'](\.{1,2}\/[^"'?#]+)["']/g;
  while (todo.length) {
    const path = todo.pop();
    if (seen.has(path)) continue;
    seen.add(path);
    if (/^pkg(-threads)?\//.test(path)) continue; // copied whole
    for (const [, ref] of readFileSync(source(path), "utf8").matchAll(refs)) {
      const target = relative("/", resolve("/", dirname(path), ref));
      if (target.endsWith(".js")) todo.push(target);
    }
  }
  return [...seen].filter((p) => p.startsWith("js/"));
}

export function stage(dir) {
  for (const pkg of ["pkg", "pkg-threads"]) {
    if (!existsSync(join(ROOT, pkg, "unclip_bg.wasm"))) throw new Error(`${pkg}/ is not built: run ./build.sh build first`);
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const f of OWN) cpSync(join(HERE, f), join(dir, f));
  for (const f of reachable()) cpSync(source(f), join(dir, f));
  cpSync(join(HERE, "protocol.d.ts"), join(dir, "js/protocol.d.ts"));
  for (const pkg of ["pkg", "pkg-threads"]) cpSync(join(ROOT, pkg), join(dir, pkg), { recursive: true, filter: (f) => !f.endsWith("build-info.json") });
  const version = readFileSync(join(ROOT, "Cargo.toml"), "utf8").match(/^version\s*=\s*"([^"]+)"/m)[1];
  const manifest = JSON.parse(readFileSync(join(HERE, "package.json"), "utf8"));
  writeFileSync(join(dir, "package.json"), `${JSON.stringify({ ...manifest, version }, null, 2)}\n`);
  return version;
}

/// Stages the package in a temporary folder and packs it into `dest`; returns the tarball's path.
export function pack(dest = ROOT) {
  const dir = mkdtempSync(join(tmpdir(), "unclip-package-"));
  try {
    stage(join(dir, "unclip"));
    const out = execFileSync("npm", ["pack", "--silent", "--pack-destination", resolve(dest)], { cwd: join(dir, "unclip"), encoding: "utf8" });
    return join(resolve(dest), out.trim().split("\n").pop());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === new URL(import.meta.url).pathname) console.log(pack(process.argv[2]));
