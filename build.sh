#!/usr/bin/env bash
# unclip's one entry point. Everything a fresh Debian machine needs is installed on first use.
#   ./build.sh serve    build the wasm module and the static site (dist/), serve it on http://localhost:8080
#   ./build.sh build    the same without serving
#   ./build.sh package  the npm package `unclip` (both wasm modules, the worker, the typed API and web components):
#                       unclip-<version>.tgz here, nothing published (README, "Use it in your own page")
#   ./build.sh test     every test: Rust (engine, conformance, GGUF) and the browser (headless Chromium)
#   ./build.sh bench    benchmarks against diffusers/PyTorch on the same weights → docs/benchmarks.md
#   ./build.sh test-train   one step of every training script on a few images (needs train/requirements.txt)
set -euo pipefail
cd "$(dirname "$0")"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
PORT="${PORT:-8080}"

# rust-toolchain.toml pins the compiler; rustup installs it, the wasm32 target and rust-src on first use (rust-src:
# the threaded module rebuilds std with atomics)
need_rust() {
  command -v cargo >/dev/null || { echo "cargo is missing: install Rust with rustup (https://rustup.rs) first" >&2; exit 1; }
  rustup toolchain install >/dev/null 2>&1 || true  # the pinned toolchain with its components and targets
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  if ! rustup component list --installed | grep -q '^rust-src'; then
    log "adding rust-src (the threaded wasm module rebuilds std)"
    rustup component add rust-src
  fi
}

# The wasm modules: pkg/ single-threaded (the fallback, and WebGPU's), pkg-threads/ with shared memory:
# atomics + bulk-memory need std rebuilt for them (-Z build-std, on the pinned stable compiler via RUSTC_BOOTSTRAP,
# set for this one command only); 4 GiB is the shared memory's maximum, as the single-threaded module's.
WASM_OPT_FLAGS=(-O3 --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue)
# FEATURES: extra cargo features of both wasm modules (`bench` for the benchmark pages: ./build.sh bench sets it)
FEATURES=${FEATURES:-}
wasm_module() {  # OUT_DIR TARGET_DIR THREADED(0|1)
  local out=$1 dir=$2 threaded=$3 opt=()
  # the page's engine (src/web/) offers both backends: the lib's `webgpu` feature, not the CLI's (Cargo.toml)
  local features="webgpu${FEATURES:+,$FEATURES}"
  if [[ $threaded == 1 ]]; then
    # the linker makes the memory shared and imported (each Web Worker instantiates the module on the same memory) and
    # exports what wasm-bindgen's glue needs to give every thread its own TLS block
    local link=(--shared-memory --import-memory --max-memory=4294967296 --export=__wasm_init_tls --export=__tls_size --export=__tls_align --export=__tls_base)
    RUSTC_BOOTSTRAP=1 RUSTFLAGS="-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128 --cfg getrandom_backend=\"wasm_js\" ${link[*]/#/-C link-arg=}" \
      cargo build --locked --lib --release --target wasm32-unknown-unknown --target-dir "$dir" --no-default-features --features "$features,threads" -Z build-std=panic_abort,std
    opt=(--enable-threads)
  else
    cargo build --locked --lib --release --target wasm32-unknown-unknown --target-dir "$dir" --no-default-features --features "$features"
  fi
  rm -rf "$out" && wasm_bindgen "$dir/wasm32-unknown-unknown/release/unclip.wasm" "$out"
  local raw; raw=$(stat -c %s "$out/unclip_bg.wasm")
  node_modules/.bin/wasm-opt "${WASM_OPT_FLAGS[@]}" "${opt[@]}" "$out/unclip_bg.wasm" -o "$out/unclip_bg.wasm"
  log "$out: $raw bytes after wasm-bindgen, $(stat -c %s "$out/unclip_bg.wasm") after wasm-opt -O3"
  echo "{\"wasm_raw_bytes\": $raw, \"wasm_opt_bytes\": $(stat -c %s "$out/unclip_bg.wasm")}" > "$out/build-info.json"
}

# wasm-bindgen's JS glue, by tools/wasm-bindgen: wasm-bindgen-cli-support at exactly our wasm-bindgen version,
# resolved from our own Cargo.lock (not `cargo install wasm-bindgen-cli`, whose own lockfile can pin crates the
# registry no longer serves). Built once into target/release, then up to date.
wasm_bindgen() {
  cargo build --release --locked -p unclip-wasm-bindgen
  ./target/release/unclip-wasm-bindgen "$@"
}

need_node() {
  command -v npm >/dev/null || { log "installing Node.js and npm (apt)"; apt_install nodejs npm; }
  # every devDependency's entry point, so that a node_modules/ from before one was added is installed again
  # (package.test.mjs runs typescript's tsc) whatever the files' times say
  if [[ ! -x node_modules/.bin/wasm-opt || ! -x node_modules/.bin/tsc || ! -f node_modules/playwright-core/package.json ]] \
    || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
    log "npm ci (binaryen's wasm-opt, playwright-core, typescript's tsc)"
    npm ci --no-audit --no-fund
  fi
}

apt_install() {
  local sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

need_chromium() {
  command -v chromium >/dev/null || { log "installing Debian's chromium (apt)"; apt_install chromium; }
  # a CJK font, so that the Chinese page's screenshot (tests/browser/language_theme.test.mjs) shows its characters
  fc-list :lang=zh 2>/dev/null | grep -q . || { log "installing a CJK font, fonts-wqy-microhei (apt)"; apt_install fonts-wqy-microhei; }
}

# the native WebGPU tests need a Vulkan adapter: on a machine without a GPU, Mesa's lavapipe (a CPU Vulkan)
need_vulkan() {
  [[ "$(uname)" == Linux ]] || return 0
  ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1 || { log "installing mesa-vulkan-drivers (lavapipe) for the WebGPU tests (apt)"; apt_install mesa-vulkan-drivers; }
}

build() {
  need_rust; need_node
  log "building the wasm module (wasm32-unknown-unknown, simd128)"
  wasm_module pkg target 0
  log "building the threaded wasm module (shared memory: atomics, bulk-memory; std rebuilt from rust-src)"
  wasm_module pkg-threads target/threads 1
  log "assembling the static site in dist/ (www + pkg + the bundled unclip-emoji model + the tiny test model)"
  cargo build --locked --bin unclip
  rm -rf dist && mkdir -p dist/models
  cp -r www/. dist/ && cp -r pkg dist/pkg && cp -r pkg-threads dist/pkg-threads
  cp -r models/unclip-emoji dist/models/default
  ./target/debug/unclip convert tests/fixtures/tiny-unclip dist/models/tiny >/dev/null
}

cmd_test() {
  need_rust; need_node; need_chromium; need_vulkan
  # with the benchmark code (cargo feature bench) compiled in, so that it cannot rot; one build of the crate, not two
  log "cargo test --features bench (engine, conformance against diffusers' golden tensors, GGUF hostile inputs, CLI errors, WebGPU kernels on Vulkan)"
  cargo test --locked --features bench 2>&1
  # a process that renamed a file over /dev/null (as root) leaves a regular file there that collects every
  # `2>/dev/null` and feeds it to the next reader: cargo's rustc probe then fails with another program's errors
  [[ -c /dev/null ]] || { echo "/dev/null is no longer a device after cargo test: a test replaced it by a file" >&2; exit 1; }
  # the engine alone (README "As a library"): none of the CLI's or WebGPU's crates in its tree, and it compiles.
  # Checked, not built: Cargo unifies features per command, and without clap and wgpu (which turn on syn's `full`,
  # smallvec's `union`, more of bytemuck, hashbrown and once_cell) most dependencies differ from the test build's, so
  # `cargo build` compiles the tree again (4.2-4.7 min after the test build here) where `cargo check` skips their code
  # generation (1.9 min)
  log "cargo check --lib --no-default-features (the engine alone)"
  local lean; lean=$(cargo tree --locked --no-default-features -e normal --prefix none)
  if grep -E '^(clap|wgpu|pollster|image) ' <<<"$lean"; then echo "the engine alone depends on the crates above" >&2; exit 1; fi
  cargo check --locked --lib --no-default-features 2>&1
  build
  log "browser tests (Playwright + headless Chromium)"
  node --test --test-concurrency=1 tests/browser/*.test.mjs 2>&1
}

cmd_bench() {
  [[ -x .venv/bin/python ]] || { log "creating .venv with PyTorch + diffusers for the peer (~3 GB)"; python3 -m venv .venv; .venv/bin/pip install -q -r bench/requirements.txt; }
  FEATURES=bench
  cargo build --locked --release --bin unclip --features bench
  local tmp; tmp=$(mktemp -d)
  ./target/release/unclip convert tests/fixtures/tiny-unclip "$tmp/tiny" >/dev/null 2>&1
  ./target/release/unclip bench --model "$tmp/tiny" --diffusers tests/fixtures/tiny-unclip
  .venv/bin/python bench/make_midsize.py tests/fixtures/tiny-unclip "$tmp/midsize-diffusers" >/dev/null 2>&1
  ./target/release/unclip convert "$tmp/midsize-diffusers" "$tmp/midsize" >/dev/null 2>&1
  ./target/release/unclip bench --model "$tmp/midsize" --diffusers "$tmp/midsize-diffusers" --steps 25,25,7 --runs 1
  ./target/release/unclip bench --weights-of bench/karlo
  log "our WebGPU backend (on this machine's adapter: lavapipe without a GPU) vs our CPU backend"
  ./target/release/unclip bench --model "$tmp/tiny" --backends
  log "soak: 100 generations in the browser and natively, memory after each → docs/soak.md"
  build && node bench/soak.mjs 100
  log "one Karlo-size decoder step on WebGPU (random q4_0 weights; minutes on a CPU Vulkan)"
  ./target/release/unclip bench --karlo-decoder bench/karlo || log "the Karlo-size step did not complete (see above)"
  rm -rf "$tmp"
  log "browser: one decoder UNet step, ours vs onnxruntime-web (WebGPU and wasm), same weights"
  (cd bench && npm ci --no-audit --no-fund)
  build
  node bench/browser_unet_step.mjs --preset full --runs 5 --gpu-runs 2
  log "browser: a whole image on the CPU path at 1, 2, … threads"
  node bench/browser_threads.mjs
  log "browser: step previews on demand, all vs the page's vs none, wasm and WebGPU (SwiftShader: minutes)"
  node bench/browser_previews.mjs --steps 5,5,2 --runs 2
  log "natively: the same UNet step on WebGPU, our CPU backend and PyTorch (CUDA when there is a GPU), with FLOP/s"
  ./target/release/unclip bench --unet-step target/unet-step/full
}

case "${1:-}" in
  build) build ;;
  serve) build; log "serving dist/ on http://localhost:$PORT, cross-origin isolated (Ctrl-C stops)"; python3 tools/serve.py dist "$PORT" ;;
  test) cmd_test ;;
  bench) cmd_bench ;;
  package) build; log "packing the npm package (package/build.mjs: npm pack)"; node package/build.mjs ;;
  test-train)
    [[ -x .venv/bin/python ]] || { log "creating .venv from train/requirements.txt (~6 GB)"; python3 -m venv .venv; .venv/bin/pip install -q -r train/requirements.txt; }
    bash train/smoke_test.sh ;;
  *) echo "usage: ./build.sh serve | build | test | bench | package | test-train" >&2; exit 2 ;;
esac
