//! A run's steps as one picture (docs/formats.md, "Pictures"): every step of one stage, x_t or x̂0 — the frames
//! `--steps-dir` writes one file each — as an animation (APNG) or as a contact sheet, for slides. The record says
//! which frames, and for a sheet how they are laid out; [`contact_sheet`] lays them out, [`steps_png`] writes the file.

use serde::{Deserialize, Serialize};

use crate::error::{ensure_setting, Result};
use crate::image_settings::ImageSettings;
use crate::pipeline::Stage;
use crate::settings::MAX_STEPS;

/// Pixels between a contact sheet's tiles (white).
pub const SHEET_GAP: usize = 2;

/// Each animation frame's time on screen.
pub const FRAME_MS: u16 = 200;

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

    /// Refuses a record that names no stage or image of a run, or whose frames (each at least 1×1) are not a
    /// `width`×`height` picture.
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
            (1..=width).contains(&self.frame_width)
                && (1..=height).contains(&self.frame_height)
                && self.size() == (width, height),
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

/// The picture of a run's steps: `frames` (its `columns` ignored) whose pixels are `rgba` (every frame's RGBA8 in
/// turn), as an APNG of [`FRAME_MS`] a frame, or with `sheet` as a contact sheet of [`sheet_columns`]; the file
/// carries `run` (the run's own record) with the frames' added. Frames that are not `rgba`, or a record unclip
/// would refuse to read back, are one sentence.
pub fn steps_png(run: ImageSettings, frames: StepFramesRecord, rgba: &[u8], sheet: bool) -> Result<Vec<u8>> {
    let (w, h, n) = (frames.frame_width, frames.frame_height, frames.t.len());
    let columns = sheet.then(|| sheet_columns(n));
    let frames = StepFramesRecord { columns, ..frames };
    let (width, height) = frames.size();
    let record = ImageSettings { width, height, step_frames: Some(frames), ..run };
    // first: the frames are then at least 1×1 and within MAX_IMAGE_PIXELS, so a frame's bytes are no overflow
    record.validate()?;
    let frame_bytes = w * h * 4;
    ensure_setting(frame_bytes.checked_mul(n) == Some(rgba.len()), || {
        format!("{} bytes are not {n} frames of {w}×{h} RGBA", rgba.len())
    })?;
    let tiles: Vec<&[u8]> = rgba.chunks_exact(frame_bytes).collect();
    match columns {
        Some(c) => crate::png_file::encode_png(&contact_sheet(&tiles, w, h, c), width, height, &record),
        None => crate::png_file::encode_apng(&tiles, w, h, FRAME_MS, &record),
    }
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

    /// The record of three decoder x̂0 frames (t = 999, 500, 0) of `w`×`h`.
    fn decoder_x0(w: usize, h: usize, columns: Option<usize>) -> StepFramesRecord {
        let t = vec![999, 500, 0];
        StepFramesRecord { stage: "decoder".into(), image: "x0".into(), t, frame_width: w, frame_height: h, columns }
    }

    #[test]
    fn records_are_checked_against_their_picture() {
        let r = decoder_x0(8, 8, None);
        r.check(8, 8).unwrap();
        assert!(r.check(9, 8).is_err());
        let sheet = StepFramesRecord { columns: Some(2), ..r.clone() };
        sheet.check(18, 18).unwrap();
        assert!(StepFramesRecord { stage: "prior".into(), ..r.clone() }.check(8, 8).is_err());
        assert!(StepFramesRecord { columns: Some(4), ..r.clone() }.check(8, 8).is_err());
        assert!(StepFramesRecord { columns: Some(usize::MAX), t: vec![0; 2000], ..r }.check(8, 8).is_err());
    }

    #[test]
    fn steps_png_carries_the_frames_and_refuses_bad_ones_without_panicking() {
        use crate::image_settings::ModelIdentity;
        use crate::settings::GenerateParams;
        let model = ModelIdentity { name: "m".into(), version: "1".into(), sha256: "0".repeat(64) };
        let run = ImageSettings::new(&GenerateParams::default(), None, &model, 8, 8);
        let frames = decoder_x0(2, 3, Some(7)); // columns ignored: `sheet` decides
        let rgba: Vec<u8> = (0..3u8).flat_map(|k| [k; 2 * 3 * 4]).collect();
        for sheet in [false, true] {
            let png = steps_png(run.clone(), frames.clone(), &rgba, sheet).unwrap();
            let back = crate::png_file::read_settings(std::io::Cursor::new(png), "s.png").unwrap().unwrap();
            let f = back.step_frames.clone().unwrap();
            assert_eq!(f.columns, sheet.then_some(2));
            assert_eq!((back.width, back.height), f.size());
            assert_eq!(back.params(), run.params());
        }
        let e = steps_png(run.clone(), frames.clone(), &rgba[1..], false).unwrap_err().to_string();
        assert!(e.contains("71 bytes are not 3 frames of 2×3 RGBA"), "{e}");
        // no pixels for frames of no pixels (a 0-byte chunk would panic), and sizes whose bytes overflow
        for (w, h) in [(0, 3), (2, 0), (usize::MAX, 2), (1 << 20, 1 << 20)] {
            for sheet in [false, true] {
                let bad = StepFramesRecord { frame_width: w, frame_height: h, ..frames.clone() };
                assert!(steps_png(run.clone(), bad, &[], sheet).is_err(), "{w}×{h}, sheet {sheet}");
            }
        }
    }
}
