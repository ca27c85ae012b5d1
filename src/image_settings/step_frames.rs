//! A run's steps as one picture (docs/formats.md, "Pictures"): every step of one stage, x_t or x̂0 — the frames
//! `--steps-dir` writes one file each — as an animation (APNG) or as a contact sheet, for slides. The record says
//! which frames, and for a sheet how they are laid out; [`contact_sheet`] lays them out.

use serde::{Deserialize, Serialize};

use crate::error::{ensure_setting, Result};
use crate::pipeline::Stage;
use crate::settings::MAX_STEPS;

/// Pixels between a contact sheet's tiles (white).
pub const SHEET_GAP: usize = 2;

/// Which frames, and for a contact sheet its layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepFramesRecord {
    /// "decoder", "super_res" or "inversion".
    pub stage: String,
    /// "xt" or "x0".
    pub image: String,
    /// Each frame's timestep, in the run's order.
    pub t: Vec<usize>,
    pub frame_width: usize,
    pub frame_height: usize,
    /// A contact sheet: the frames row by row, this many to a row, [`SHEET_GAP`] pixels apart; absent for an
    /// animation, whose frames are the picture's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<usize>,
}

impl StepFramesRecord {
    /// The picture's size: a frame's for an animation, the sheet's ([`sheet_size`]) for a contact sheet.
    pub fn size(&self) -> (usize, usize) {
        match self.columns {
            None => (self.frame_width, self.frame_height),
            Some(c) => sheet_size(self.t.len(), self.frame_width, self.frame_height, c),
        }
    }

    /// Refuses a record that names no stage or image of a run, or whose frames are not a `width`×`height` picture.
    pub fn check(&self, width: usize, height: usize) -> Result<()> {
        let stages = [Stage::Inversion, Stage::Decoder, Stage::SuperRes];
        ensure_setting(stages.iter().any(|s| s.name() == self.stage) && ["xt", "x0"].contains(&&*self.image), || {
            "the step frames name no stage (decoder, super_res, inversion) and image (xt, x0) of a run".into()
        })?;
        let n = self.t.len();
        ensure_setting((1..=MAX_STEPS).contains(&n) && self.columns.is_none_or(|c| (1..=n).contains(&c)), || {
            format!("{n} step frames in {:?} columns are not a run's steps", self.columns)
        })?;
        ensure_setting(
            self.frame_width <= width && self.frame_height <= height && self.size() == (width, height),
            || format!("the step frames do not make a {width}×{height} picture"),
        )
    }

    /// "x0 of 25 decoder steps (a contact sheet of 5 columns)".
    pub fn describe(&self) -> String {
        let how = self.columns.map_or("an animation".to_string(), |c| format!("a contact sheet of {c} columns"));
        format!("{} of {} {} steps ({how})", self.image, self.t.len(), self.stage)
    }
}

/// A contact sheet's width and height: `n` tiles of `w`×`h`, `columns` to a row, [`SHEET_GAP`] apart (saturating,
/// so a hostile record gives a size no picture has).
pub fn sheet_size(n: usize, w: usize, h: usize, columns: usize) -> (usize, usize) {
    let rows = n.div_ceil(columns.max(1));
    let side = |k: usize, s: usize| k.saturating_mul(s).saturating_add(k.saturating_sub(1).saturating_mul(SHEET_GAP));
    (side(columns, w), side(rows, h))
}

/// Columns for `n` frames: as square a sheet as whole rows allow.
pub fn sheet_columns(n: usize) -> usize {
    (1..=n).find(|c| c * c >= n).unwrap_or(1)
}

/// The contact sheet of `frames` (each `w`×`h` RGBA8), `columns` to a row, on white: RGBA8 of [`sheet_size`].
pub fn contact_sheet(frames: &[&[u8]], w: usize, h: usize, columns: usize) -> Vec<u8> {
    let (sw, sh) = sheet_size(frames.len(), w, h, columns);
    let mut sheet = vec![255u8; sw * sh * 4];
    for (k, frame) in frames.iter().enumerate() {
        let (x, y) = ((k % columns) * (w + SHEET_GAP), (k / columns) * (h + SHEET_GAP));
        for row in 0..h {
            let at = ((y + row) * sw + x) * 4;
            sheet[at..at + w * 4].copy_from_slice(&frame[row * w * 4..(row + 1) * w * 4]);
        }
    }
    sheet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sheet_holds_every_frame_at_its_place() {
        let frames: Vec<Vec<u8>> = (0..5u8).map(|k| vec![k; 2 * 3 * 4]).collect();
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let columns = sheet_columns(5);
        assert_eq!(columns, 3);
        let (sw, sh) = sheet_size(5, 2, 3, columns);
        assert_eq!((sw, sh), (3 * 2 + 2 * SHEET_GAP, 2 * 3 + SHEET_GAP));
        let sheet = contact_sheet(&refs, 2, 3, columns);
        let px = |x: usize, y: usize| sheet[(y * sw + x) * 4];
        assert_eq!([px(0, 0), px(1, 2), px(4, 0), px(8, 2), px(0, 5), px(5, 7)], [0, 0, 1, 2, 3, 4]);
        assert_eq!([px(2, 0), px(0, 3), px(9, 7)], [255, 255, 255], "gaps and the unused tile are white");
    }

    #[test]
    fn records_are_checked_against_their_picture() {
        let r = StepFramesRecord {
            stage: "decoder".into(),
            image: "x0".into(),
            t: vec![999, 500, 0],
            frame_width: 8,
            frame_height: 8,
            columns: None,
        };
        r.check(8, 8).unwrap();
        assert!(r.check(9, 8).is_err());
        let sheet = StepFramesRecord { columns: Some(2), ..r.clone() };
        sheet.check(18, 18).unwrap();
        assert!(StepFramesRecord { stage: "prior".into(), ..r.clone() }.check(8, 8).is_err());
        assert!(StepFramesRecord { columns: Some(4), ..r.clone() }.check(8, 8).is_err());
        assert!(StepFramesRecord { columns: Some(usize::MAX), t: vec![0; 2000], ..r }.check(8, 8).is_err());
    }
}
