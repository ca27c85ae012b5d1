//! The only code that talks to JavaScript (wasm-bindgen). The worker (www/js/worker.js) streams each model file
//! through a [`verify::FileVerifier`] (SHA-256 and the GGUF header as bytes arrive), then builds an
//! [`engine::Engine`] from the verified bytes and calls `generate`, which reports every step to a JS callback
//! ([`events`]) and yields to the event loop between steps so a `cancel()` message can land.
//!
//! verify: downloads and model.json · engine: a loaded model and its runs · events: what a run tells the page ·
//! edit, remix: the engine's other runs · picture: the settings a PNG carries, read back · grid: the X/Y grid's
//! cells and picture · step_frames: a run's steps as an APNG or a contact sheet · teach: the teaching page's
//! exports · crash: panics and out-of-memory · bench: timing hooks for the benchmark pages (the `bench`
//! feature).
//!
//! Values go to JS through serde ([`to_js`]): structs as plain objects, typed arrays as they are. Errors go as a
//! JS `Error` with the message and a stable `code` ([`crate::Error::code`]), which the worker switches on.

use serde::Serialize;
use wasm_bindgen::JsValue;

/// `initThreadPool(n)` (the shared-memory module only): starts rayon's pool on n Web Workers; www/js/wasm.js calls
/// it before the first engine loads.
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

#[cfg(feature = "bench")]
mod bench;
mod crash;
mod edit;
mod engine;
mod events;
mod grid;
mod picture;
mod remix;
mod step_frames;
mod teach;
mod verify;

/// What a wasm export returns: a value, or a JS `Error` ([`js_error`]).
type JsResult<T> = Result<T, JsValue>;

/// A crate error as a JS `Error` whose `code` property says what kind it is.
fn js_error(e: crate::Error) -> JsValue {
    let error = js_sys::Error::new(&e.to_string());
    // Reflect::set on a fresh Error cannot fail
    let _ = js_sys::Reflect::set(&error, &"code".into(), &e.code().into());
    error.into()
}

/// Settings from JS that do not parse (a "bad_input" error).
fn from_js<T: serde::de::DeserializeOwned>(value: JsValue) -> JsResult<T> {
    serde_wasm_bindgen::from_value(value).map_err(|e| js_error(crate::Error::Settings(format!("bad settings: {e}"))))
}

/// A value for JS: structs as plain objects; `JsCast` fields under `serde(with = "serde_wasm_bindgen::preserve")`
/// (typed arrays) as they are: no copy into a JS array of numbers, no JSON.
fn to_js(value: &impl Serialize) -> JsResult<JsValue> {
    Ok(value.serialize(&serde_wasm_bindgen::Serializer::new())?)
}

/// `serialize_with` for an optional JS value (a typed array) kept as it is; pair it with
/// `skip_serializing_if = "Option::is_none"`.
fn optional_js<S: serde::Serializer, T: wasm_bindgen::JsCast>(value: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => serde_wasm_bindgen::preserve::serialize(v, s),
        None => s.serialize_none(),
    }
}
