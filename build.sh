#!/usr/bin/env bash
# unclip's one entry point.
#   ./build.sh test        install what the tests need (on a fresh Debian machine) and run every test
#   ./build.sh bench       benchmarks against diffusers/PyTorch on the same weights → docs/benchmarks.md
set -euo pipefail
cd "$(dirname "$0")"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

need_rust() {
  command -v cargo >/dev/null || { echo "cargo is missing: install Rust with rustup (https://rustup.rs) first" >&2; exit 1; }
}

cmd_test() {
  need_rust
  log "cargo test (engine, conformance against diffusers' golden tensors, GGUF hostile inputs)"
  cargo test 2>&1
}

cmd_bench() {
  need_rust
  [[ -x .venv/bin/python ]] || { log "creating .venv with PyTorch + diffusers for the peer (~3 GB)"; python3 -m venv .venv; .venv/bin/pip install -q -r bench/requirements.txt; }
  cargo build --release --bin unclip
  local tmp; tmp=$(mktemp -d)
  ./target/release/unclip convert tests/fixtures/tiny-unclip "$tmp/tiny" >/dev/null 2>&1
  ./target/release/unclip bench --model "$tmp/tiny" --diffusers tests/fixtures/tiny-unclip
  .venv/bin/python bench/make_midsize.py tests/fixtures/tiny-unclip "$tmp/midsize-diffusers" >/dev/null 2>&1
  ./target/release/unclip convert "$tmp/midsize-diffusers" "$tmp/midsize" >/dev/null 2>&1
  ./target/release/unclip bench --model "$tmp/midsize" --diffusers "$tmp/midsize-diffusers" --steps 25,25,7 --runs 1
  rm -rf "$tmp"
}

case "${1:-}" in
  test) cmd_test ;;
  bench) cmd_bench ;;
  *) echo "usage: ./build.sh test | bench" >&2; exit 2 ;;
esac
