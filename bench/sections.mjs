// docs/benchmarks.md is made of sections each benchmark program owns, between <!-- bench:KEY --> and
// <!-- /bench:KEY --> (the Rust side: write_section in src/bin/unclip/bench.rs). Replaces the section, or
// appends it the first time.
import { existsSync, readFileSync, writeFileSync } from "node:fs";

export function writeSection(path, key, body) {
  const old = existsSync(path) ? readFileSync(path, "utf8") : "# Benchmarks\n";
  const [open, close] = [`<!-- bench:${key} -->`, `<!-- /bench:${key} -->`];
  const section = `${open}\n${body}\n${close}`;
  const s = old.indexOf(open), e = old.indexOf(close);
  writeFileSync(path, s >= 0 && e > s ? old.slice(0, s) + section + old.slice(e + close.length) : `${old.trimEnd()}\n\n${section}\n`);
}
