//! Milliseconds from a monotonic clock, natively and in the browser (where `std::time::Instant`
//! is not available on wasm32-unknown-unknown).

#[cfg(not(target_arch = "wasm32"))]
pub fn now_ms() -> f64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
}

/// `performance.now()` of the window or worker (sub-millisecond), or `Date.now()` where there is none.
#[cfg(target_arch = "wasm32")]
pub fn now_ms() -> f64 {
    use js_sys::{Function, Reflect};
    use wasm_bindgen::JsCast;
    let perf = Reflect::get(&js_sys::global(), &"performance".into()).ok();
    let now =
        perf.as_ref().and_then(|p| Reflect::get(p, &"now".into()).ok()).and_then(|f| f.dyn_into::<Function>().ok());
    match (perf, now) {
        (Some(p), Some(f)) => f.call0(&p).ok().and_then(|v| v.as_f64()).unwrap_or_else(js_sys::Date::now),
        _ => js_sys::Date::now(),
    }
}
