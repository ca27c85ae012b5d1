//! What a run shows while it works: a one-line progress bar per stage on stderr, and with `--steps-dir` each
//! decoder and super-res step's x_t and x̂0 as PNGs carrying the run's settings.

use std::io::Write;
use std::path::PathBuf;

use unclip::backend::Tensor;
use unclip::image_processor::{chw_to_hwc01, hwc_to_rgba8};
use unclip::image_settings::ImageSettings;
use unclip::pipeline::{Event, Flow, Observer, Stage};
use unclip::{Error, Result};

use crate::files::write_png;

/// The observer of a CLI run; `error` is what made it cancel (a step's file could not be written).
pub struct ProgressBar {
    pub steps_dir: Option<(PathBuf, ImageSettings)>,
    pub error: Option<Error>,
}

impl ProgressBar {
    /// A progress bar on stderr, writing no steps.
    pub fn plain() -> Self {
        ProgressBar { steps_dir: None, error: None }
    }

    /// The observer's own error (which made it cancel) before the pipeline's `result`.
    pub fn settle<T>(self, result: Result<T>) -> Result<T> {
        self.error.map_or(result, Err)
    }

    async fn write_step<T: Tensor>(
        &self,
        (dir, record): &(PathBuf, ImageSettings),
        stage: Stage,
        i: usize,
        t: usize,
        tensors: [(&str, &T); 2],
    ) -> Result<()> {
        for (what, x) in tensors {
            let (c, h, w) = (x.dim(1), x.dim(2), x.dim(3));
            let hwc = chw_to_hwc01(&x.to_vec().await?[..c * h * w], c, h, w);
            let name = format!("{}_{i:03}_t{t:03}_{what}.png", stage.name());
            write_png(&dir.join(name), &hwc_to_rgba8(&hwc), w, h, &record.at_step(stage, i, t, what, w, h))?;
        }
        Ok(())
    }
}

impl<T: Tensor> Observer<T> for ProgressBar {
    async fn on_event(&mut self, event: Event<'_, T>) -> Flow {
        match event {
            Event::StageStart { stage, .. } if stage != Stage::Text => eprint!("{:>9} …", stage.name()),
            Event::Step(s) => {
                let done = (s.i + 1) * 30 / s.n;
                let rate = (s.i + 1) as f64 / (s.elapsed_ms / 1000.0).max(1e-9);
                eprint!(
                    "\r{:>9} [{}{}] {:>3}/{} t={:<3} {:.2} it/s ",
                    s.stage.name(),
                    "#".repeat(done),
                    " ".repeat(30 - done),
                    s.i + 1,
                    s.n,
                    s.t,
                    rate
                );
                if let (Some(dir), true) = (&self.steps_dir, s.stage != Stage::Prior) {
                    if let Err(e) = self.write_step(dir, s.stage, s.i, s.t, [("xt", s.sample), ("x0", s.pred_x0)]).await
                    {
                        self.error = Some(e);
                        return Flow::Cancel;
                    }
                }
            }
            Event::StageEnd { stage, elapsed_ms } if stage != Stage::Text => eprintln!(" {:.1} s", elapsed_ms / 1000.0),
            Event::Warning(w) => eprintln!("warning: {w}"),
            _ => {}
        }
        let _ = std::io::stderr().flush();
        Flow::Continue
    }
}
