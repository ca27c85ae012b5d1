//! When the engine crashes: a Rust panic, or WebAssembly memory that cannot grow (an allocation failure aborts
//! with a bare "unreachable"). The panic hook keeps the panic's message for `lastPanic`, so the worker can say
//! what happened; after either, this module's memory is not to be trusted, so the page starts a new worker
//! (www/js/app.js `restartWorker`) and loads the model again from its cache.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the panic hook (wasm-bindgen runs this when the module is instantiated).
#[wasm_bindgen(start)]
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info.to_string();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(message));
    }));
}

/// The message of the panic that ended the last call, if one did.
#[wasm_bindgen(js_name = lastPanic)]
pub fn last_panic() -> Option<String> {
    LAST_PANIC.with(|p| p.borrow().clone())
}

/// Bytes of WebAssembly memory this module holds (what an out-of-memory message reports).
#[wasm_bindgen(js_name = memoryBytes)]
pub fn memory_bytes() -> f64 {
    (core::arch::wasm32::memory_size(0) * 65536) as f64
}

/// The crash drill for the browser tests, as the test server's faults are for the network: "panic" panics,
/// "oom" asks the allocator for more memory than WebAssembly can address (the real allocation-failure abort).
#[wasm_bindgen(js_name = crashDrill)]
pub fn crash_drill(kind: &str) -> usize {
    match kind {
        "panic" => panic!("the crash drill panicked on purpose"),
        "oom" => {
            // 1 GiB at a time (reserved, not touched: cheap) until memory.grow fails at the 4 GiB limit
            let mut grown: Vec<Vec<u8>> = Vec::new();
            loop {
                grown.push(Vec::with_capacity(1 << 30));
                std::hint::black_box(&grown);
            }
        }
        _ => 0,
    }
}
