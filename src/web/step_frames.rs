//! A run's steps as one picture for the page and the teaching panels (docs/formats.md, "Pictures"): the x_t or x̂0
//! frames of one stage, as the step events carried them (the frames `--steps-dir` writes), saved as an APNG or a
//! contact sheet ([`crate::image_settings::step_frames::steps_png`]), carrying the run's own record with the frames'
//! added.

use std::io::Cursor;

use wasm_bindgen::prelude::*;

use super::{from_js, js_error, JsResult};
use crate::image_settings::StepFramesRecord;
use crate::Error;

/// `frames` ({stage, image, t, frame_width, frame_height}: `StepFramesRecord` without `columns`) whose pixels are
/// `rgba` (every frame's RGBA8 in turn) as an APNG, or with `sheet` as a contact sheet; `run_png` is the run's
/// picture (the `done` message's png), whose record the file carries with the frames' added.
#[wasm_bindgen(js_name = stepsPng)]
pub fn steps_png(run_png: &[u8], frames: JsValue, rgba: &[u8], sheet: bool) -> JsResult<js_sys::Uint8Array> {
    let frames: StepFramesRecord = from_js(frames)?;
    let run = crate::png_file::read_settings(Cursor::new(run_png), "the run's picture")
        .map_err(js_error)?
        .ok_or_else(|| js_error(Error::Settings("the run's picture carries no settings".into())))?;
    let png = crate::image_settings::step_frames::steps_png(run, frames, rgba, sheet).map_err(js_error)?;
    Ok(js_sys::Uint8Array::from(&png[..]))
}
