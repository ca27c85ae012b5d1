//! `unclip-wasm-bindgen INPUT.wasm OUT_DIR`: what `wasm-bindgen --target web --no-typescript --out-dir OUT_DIR
//! INPUT.wasm` does, built from unclip's own Cargo.lock instead of `cargo install wasm-bindgen-cli`, whose own
//! lockfile can pin crates the registry no longer serves. The options mirror the CLI's defaults for
//! `--target web` (wasm-bindgen-cli's `src/wasm_bindgen.rs`).
use std::process::ExitCode;

use wasm_bindgen_cli_support::Bindgen;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, out_dir] = args.as_slice() else {
        eprintln!("usage: unclip-wasm-bindgen INPUT.wasm OUT_DIR (expected 2 arguments, found {})", args.len());
        return ExitCode::from(2);
    };
    let result = Bindgen::new()
        .input_path(input)
        .web(true)
        .map(|b| b.typescript(false).demangle(true).omit_default_module_path(false))
        .and_then(|b| b.generate(out_dir));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasm-bindgen could not process {input}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
