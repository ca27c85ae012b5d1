//! A run's steps as one picture for the page and the teaching panels (docs/formats.md, "Pictures"): the x_t or x̂0
//! frames of one stage, as the step events carried them (the frames `--steps-dir` writes), saved as an APNG or a
//! contact sheet by [`crate::png_file`], carrying the run's own record with the frames' added.

use std::io::Cursor;

use wasm_bindgen::prelude::*;

use super::{from_js, js_error, JsResult};
use crate::image_settings::step_frames::{contact_sheet, sheet_columns};
use crate::image_settings::StepFramesRecord;
use crate::Error;

/// Each animation frame's time on screen.
const FRAME_MS: u16 = 200;

/// `frames` ({stage, image, t, frame_width, frame_height}: `StepFramesRecord` without `columns`) whose pixels are
/// `rgba` (every frame's RGBA8 in turn) as an APNG, or with `sheet` as a contact sheet; `run_png` is the run's
/// picture (the `done` message's png), whose record the file carries with the frames' added.
#[wasm_bindgen(js_name = stepsPng)]
pub fn steps_png(run_png: &[u8], frames: JsValue, rgba: &[u8], sheet: bool) -> JsResult<js_sys::Uint8Array> {
    let frames: StepFramesRecord = from_js(frames)?;
    let run = crate::png_file::read_settings(Cursor::new(run_png), "the run's picture")
        .map_err(js_error)?
        .ok_or_else(|| js_error(Error::Settings("the run's picture carries no settings".into())))?;
    let (w, h, n) = (frames.frame_width, frames.frame_height, frames.t.len());
    if rgba.len() != w * h * 4 * n {
        return Err(js_error(Error::Settings(format!("{} bytes are not {n} frames of {w}×{h} RGBA", rgba.len()))));
    }
    let tiles: Vec<&[u8]> = rgba.chunks_exact(w * h * 4).collect();
    let frames = StepFramesRecord { columns: sheet.then(|| sheet_columns(n)), ..frames };
    let (width, height) = frames.size();
    let record = crate::image_settings::ImageSettings { width, height, step_frames: Some(frames), ..run };
    record.validate().map_err(js_error)?;
    let png = if let Some(columns) = record.step_frames.as_ref().and_then(|f| f.columns) {
        crate::png_file::encode_png(&contact_sheet(&tiles, w, h, columns), width, height, &record)
    } else {
        let owned: Vec<Vec<u8>> = tiles.iter().map(|t| t.to_vec()).collect();
        crate::png_file::encode_apng(&owned, w, h, FRAME_MS, &record)
    };
    Ok(js_sys::Uint8Array::from(&png.map_err(js_error)?[..]))
}
