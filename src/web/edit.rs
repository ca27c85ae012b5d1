//! The editing half of the wasm API ([`crate::edit`]): img2img and inpainting of a canvas' pixels, streaming the
//! same events as `Engine.generate` and resolving to the same {rgba, width, height, image_embedding, png}.

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::engine::{generate_on, on_backend, Engine};
use crate::edit::EditParams;
use crate::image_processor::RgbaImage;

#[wasm_bindgen]
impl Engine {
    /// img2img (`mask_rgba` empty) or inpainting of `width`×`height` RGBA pixels; the mask is
    /// `mask_width`×`mask_height` RGBA, white = paint (any size: stretched over the image). `params` as for
    /// `generate` (prompt "" = the image's own embedding where the model has an image tower), and `previews`.
    #[allow(clippy::too_many_arguments)]
    pub fn edit(
        &self,
        params: JsValue,
        rgba: Vec<u8>,
        width: usize,
        height: usize,
        mask_rgba: Vec<u8>,
        mask_width: usize,
        mask_height: usize,
        strength: f32,
        resample: usize,
        on_event: Function,
        previews: JsValue,
    ) -> Promise {
        let edit = (|| {
            let image = RgbaImage::new(width, height, rgba)?;
            let mask =
                if mask_rgba.is_empty() { None } else { Some(RgbaImage::new(mask_width, mask_height, mask_rgba)?) };
            Ok(EditParams { image, mask, strength, resample })
        })();
        on_backend!(self, i => future_to_promise(generate_on(i.clone(), params, on_event, Some(edit), JsValue::UNDEFINED, previews)))
    }
}
