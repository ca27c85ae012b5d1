//! `--from-png FILE` (generate, img2img, inpaint): a picture unclip wrote, whose settings a run starts from
//! (docs/formats.md, "Pictures").

use std::path::{Path, PathBuf};

use clap::Args;

use unclip::image_settings::ImageSettings;
use unclip::{Error, Result};

#[derive(Args)]
pub struct FromPng {
    /// Take every setting from this PNG's `unclip` settings chunk (a picture unclip wrote); flags given as well
    /// override them. With nothing overridden, the file written is the same, byte for byte.
    #[arg(long)]
    from_png: Option<PathBuf>,
}

/// A picture's checked settings record, and the file it came from.
pub struct FromRecord {
    pub file: String,
    pub record: ImageSettings,
}

impl FromPng {
    /// The record of `--from-png`, if given, for a generation (`edit` false) or an edit.
    pub fn read(&self, edit: bool) -> Result<Option<FromRecord>> {
        let Some(path) = &self.from_png else { return Ok(None) };
        let record = read_png_settings(path)?;
        let file = path.display().to_string();
        // a remix frame, one step of a run, an X/Y grid or a run's steps as slides: none is the picture its
        // settings draw, so redrawing them would not give the same file
        if record.remix.is_some() || record.step.is_some() || record.grid.is_some() || record.step_frames.is_some() {
            return Err(Error::Settings(format!(
                "{file} is {}: --from-png redraws generations and edits; `unclip info {file}` shows its settings",
                record.kind()
            )));
        }
        if let (Some(e), false) = (&record.edit, edit) {
            let command = if e.mask_sha256.is_some() { "inpaint --mask MASK.png" } else { "img2img" };
            return Err(Error::Settings(format!(
                "{file} is {} of a picture whose pixels' SHA-256 is {}…: redo it with `unclip {command} --from-png {file} --image SOURCE.png`",
                record.kind(),
                &e.source_sha256[..12]
            )));
        }
        Ok(Some(FromRecord { file, record }))
    }
}

/// The settings record of the PNG at `path`, or one sentence saying why there is none to use.
pub fn read_png_settings(path: &Path) -> Result<ImageSettings> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let name = path.display().to_string();
    unclip::png_file::read_settings(std::io::BufReader::new(file), &name)?.ok_or_else(|| {
        Error::Settings(format!(
            "{name} carries no unclip settings (no `unclip` text chunk): it was not written by unclip, or a program that rewrote it dropped them, so give the settings as flags instead"
        ))
    })
}
