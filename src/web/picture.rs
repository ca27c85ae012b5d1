//! Pictures' settings for the page (src/image_settings.rs, docs/formats.md "Pictures"): the PNG a generation
//! resolves to carries them (engine.rs); this reads them back from a file the person drops, opens or pastes, and
//! names a remix's inputs for the record.

use std::io::Cursor;

use wasm_bindgen::prelude::*;

use super::{js_error, to_js, JsResult};
use crate::image_settings::{embedding_sha256, pixels_sha256};

/// The settings record of the PNG `bytes` (`file` names it in sentences) as an object with the record's fields
/// (`ImageSettings`), or null when the PNG carries none; a hostile or damaged record throws one sentence (code
/// "bad_input"), checked against the same limits as the URL's settings.
#[wasm_bindgen(js_name = readPngSettings)]
pub fn read_png_settings(bytes: &[u8], file: &str) -> JsResult<JsValue> {
    match crate::png_file::read_settings(Cursor::new(bytes), file).map_err(js_error)? {
        // a JS number holds integers exactly up to 2^53 (the page's seed field, serde-wasm-bindgen's u64)
        Some(r) if r.seed > (1 << 53) => Err(js_error(crate::Error::Settings(format!(
            "{file}'s seed {} is larger than this page can hold (2^53): redraw it with `unclip generate --from-png`",
            r.seed
        )))),
        Some(record) => to_js(&record),
        None => Ok(JsValue::NULL),
    }
}

/// How a remix record names a picture input: the SHA-256 of its RGBA8 pixels (as the CLI names a file's).
#[wasm_bindgen(js_name = pixelsSha256)]
pub fn pixels_sha256_js(rgba: &[u8]) -> String {
    pixels_sha256(rgba)
}

/// How a remix record names an image-embedding input (a History result): the SHA-256 of its f32 values.
#[wasm_bindgen(js_name = embeddingSha256)]
pub fn embedding_sha256_js(embedding: &[f32]) -> String {
    embedding_sha256(embedding)
}
