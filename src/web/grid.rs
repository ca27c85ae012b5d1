//! The page's X/Y grid (docs/formats.md, "Pictures"): the settings of every cell, made and checked by the engine
//! ([`crate::image_settings::grid_cells`]) before the page runs them one by one as ordinary generations, and the
//! labelled grid the page draws, written as one PNG carrying the grid's record.

use wasm_bindgen::prelude::*;

use super::engine::{on_backend, Engine};
use super::{from_js, js_error, to_js, JsResult};
use crate::image_settings::{grid_cells, GridAxis, GridRecord, ImageSettings};
use crate::settings::GenerateParams;

/// The cells' settings (`params` with `x`'s and `y`'s values, {setting, values} each: `GridAxis`), row by row;
/// axes or a cell the engine cannot run throw one sentence (code "bad_input").
#[wasm_bindgen(js_name = gridCells)]
pub fn grid_cells_js(params: JsValue, x: JsValue, y: JsValue) -> JsResult<JsValue> {
    let (params, x, y): (GenerateParams, GridAxis, GridAxis) = (from_js(params)?, from_js(x)?, from_js(y)?);
    to_js(&grid_cells(&params, &x, &y).map_err(js_error)?)
}

#[wasm_bindgen]
impl Engine {
    /// The grid picture (`width`×`height` RGBA8, drawn by the page) as a PNG carrying `params` (the grid's base)
    /// and `grid` ({x, y, left, top, cell_width, cell_height}: `GridRecord`), checked as a record read back is.
    #[wasm_bindgen(js_name = gridPng)]
    pub fn grid_png(
        &self,
        params: JsValue,
        grid: JsValue,
        rgba: Vec<u8>,
        width: usize,
        height: usize,
    ) -> JsResult<js_sys::Uint8Array> {
        let (params, grid): (GenerateParams, GridRecord) = (from_js(params)?, from_js(grid)?);
        let model = on_backend!(self, i => i.model.clone());
        let record = ImageSettings { grid: Some(grid), ..ImageSettings::new(&params, None, &model, width, height) };
        record.validate().map_err(js_error)?;
        let png = crate::png_file::encode_png(&rgba, width, height, &record).map_err(js_error)?;
        Ok(js_sys::Uint8Array::from(&png[..]))
    }
}
