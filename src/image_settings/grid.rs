//! An X/Y grid's record (docs/formats.md, "Pictures"): the page's grid varies two settings over the values a
//! person gives, one generation per cell; its PNG carries the base settings (the record's own fields), both axes,
//! and where each cell lies, so that every cell can be drawn again. The cells' settings are made here, and only
//! here, for the page's run and for the checks of a record read back.

use serde::{Deserialize, Serialize};

use crate::error::{ensure_setting, Result};
use crate::settings::GenerateParams;

/// Values an axis may take (and so a grid holds at most this squared cells).
pub const MAX_GRID_VALUES: usize = 8;

/// A setting a grid varies, by its [`GenerateParams`] name, with its values in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "setting", content = "values", rename_all = "snake_case")]
pub enum GridAxis {
    Seed(Vec<u64>),
    PriorGuidance(Vec<f32>),
    DecoderGuidance(Vec<f32>),
    PriorSteps(Vec<usize>),
    DecoderSteps(Vec<usize>),
    SrSteps(Vec<usize>),
    PriorBestOf(Vec<usize>),
}

impl GridAxis {
    /// Every setting an axis can vary, as [`GridAxis::setting`] names it (the page's menus: www/js/protocol.js).
    pub const SETTINGS: [&'static str; 7] =
        ["seed", "prior_guidance", "decoder_guidance", "prior_steps", "decoder_steps", "sr_steps", "prior_best_of"];

    /// The varied setting's [`GenerateParams`] name.
    pub fn setting(&self) -> &'static str {
        let k = match self {
            GridAxis::Seed(_) => 0,
            GridAxis::PriorGuidance(_) => 1,
            GridAxis::DecoderGuidance(_) => 2,
            GridAxis::PriorSteps(_) => 3,
            GridAxis::DecoderSteps(_) => 4,
            GridAxis::SrSteps(_) => 5,
            GridAxis::PriorBestOf(_) => 6,
        };
        Self::SETTINGS[k]
    }

    /// Each value as the `parameters` text writes it.
    pub fn labels(&self) -> Vec<String> {
        fn all<T: ToString>(v: &[T]) -> Vec<String> {
            v.iter().map(T::to_string).collect()
        }
        match self {
            GridAxis::Seed(v) => all(v),
            GridAxis::PriorGuidance(v) | GridAxis::DecoderGuidance(v) => all(v),
            GridAxis::PriorSteps(v) | GridAxis::DecoderSteps(v) | GridAxis::SrSteps(v) | GridAxis::PriorBestOf(v) => {
                all(v)
            }
        }
    }

    /// How many values the axis has.
    pub fn count(&self) -> usize {
        self.labels().len()
    }

    /// `p` with this axis' `k`-th value.
    fn apply(&self, k: usize, p: &mut GenerateParams) {
        match self {
            GridAxis::Seed(v) => p.seed = v[k],
            GridAxis::PriorGuidance(v) => p.prior_guidance = v[k],
            GridAxis::DecoderGuidance(v) => p.decoder_guidance = v[k],
            GridAxis::PriorSteps(v) => p.prior_steps = v[k],
            GridAxis::DecoderSteps(v) => p.decoder_steps = v[k],
            GridAxis::SrSteps(v) => p.sr_steps = v[k],
            GridAxis::PriorBestOf(v) => p.prior_best_of = v[k],
        }
    }
}

/// The settings of every cell of the grid `x` × `y` over `base`, row by row (y outer, x inner); refuses axes that
/// vary the same setting, have no values or more than [`MAX_GRID_VALUES`], and a cell the engine could not run
/// ([`GenerateParams::validate`]'s sentence).
pub fn grid_cells(base: &GenerateParams, x: &GridAxis, y: &GridAxis) -> Result<Vec<GenerateParams>> {
    ensure_setting(x.setting() != y.setting(), || {
        format!("both axes of the grid vary {}: choose two different settings", x.setting().replace('_', " "))
    })?;
    for (name, axis) in [("X", x), ("Y", y)] {
        ensure_setting((1..=MAX_GRID_VALUES).contains(&axis.count()), || {
            format!("the grid's {name} axis has {} values; give from 1 to {MAX_GRID_VALUES}", axis.count())
        })?;
    }
    let mut cells = Vec::with_capacity(x.count() * y.count());
    for row in 0..y.count() {
        for col in 0..x.count() {
            let mut p = base.clone();
            x.apply(col, &mut p);
            y.apply(row, &mut p);
            p.validate()?;
            cells.push(p);
        }
    }
    Ok(cells)
}

/// An X/Y grid picture: its axes, and where its cells lie — cell (col, row) is the `cell_width`×`cell_height`
/// rectangle at (`left` + col·`cell_width`, `top` + row·`cell_height`); the margins hold the labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridRecord {
    pub x: GridAxis,
    pub y: GridAxis,
    pub left: usize,
    pub top: usize,
    pub cell_width: usize,
    pub cell_height: usize,
}

impl GridRecord {
    /// Refuses a grid whose cells could not be drawn over `base` or do not fit a `width`×`height` picture.
    pub fn check(&self, base: &GenerateParams, width: usize, height: usize) -> Result<()> {
        grid_cells(base, &self.x, &self.y)?;
        let fits = |start: usize, n: usize, size: usize, total: usize| {
            size >= 1 && n.checked_mul(size).and_then(|s| s.checked_add(start)).is_some_and(|end| end <= total)
        };
        ensure_setting(
            fits(self.left, self.x.count(), self.cell_width, width)
                && fits(self.top, self.y.count(), self.cell_height, height),
            || {
                format!(
                    "the grid's {} × {} cells of {}×{} pixels at ({}, {}) do not fit its {width}×{height} picture",
                    self.x.count(),
                    self.y.count(),
                    self.cell_width,
                    self.cell_height,
                    self.left,
                    self.top
                )
            },
        )
    }

    /// The `parameters` text's pairs: `Grid: seed × decoder guidance, Grid X: "1, 2, 3", Grid Y: "2, 8"`.
    pub fn parameters(&self) -> String {
        let name = |a: &GridAxis| a.setting().replace('_', " ");
        format!(
            "Grid: {} × {}, Grid X: \"{}\", Grid Y: \"{}\"",
            name(&self.x),
            name(&self.y),
            self.x.labels().join(", "),
            self.y.labels().join(", ")
        )
    }

    /// "an X/Y grid of seed (3) × decoder guidance (2)".
    pub fn kind(&self) -> String {
        let axis = |a: &GridAxis| format!("{} ({})", a.setting().replace('_', " "), a.count());
        format!("an X/Y grid of {} × {}", axis(&self.x), axis(&self.y))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_run_row_by_row_and_bad_axes_are_one_sentence() {
        let base = GenerateParams { prompt: "horse".into(), ..Default::default() };
        let (x, y) = (GridAxis::Seed(vec![1, 2, 3]), GridAxis::DecoderGuidance(vec![2.0, 8.0]));
        let cells = grid_cells(&base, &x, &y).unwrap();
        let got: Vec<(u64, f32)> = cells.iter().map(|p| (p.seed, p.decoder_guidance)).collect();
        assert_eq!(got, [(1, 2.0), (2, 2.0), (3, 2.0), (1, 8.0), (2, 8.0), (3, 8.0)]);
        assert!(cells.iter().all(|p| p.prompt == "horse" && p.prior_steps == base.prior_steps));
        for (x, y, needle) in [
            (GridAxis::Seed(vec![1]), GridAxis::Seed(vec![2]), "both axes of the grid vary seed"),
            (GridAxis::Seed(vec![]), y.clone(), "X axis has 0 values"),
            (x.clone(), GridAxis::PriorSteps(vec![1]), "prior steps must be between"),
            (x.clone(), GridAxis::PriorBestOf((1..=9).collect()), "Y axis has 9 values"),
        ] {
            let e = grid_cells(&base, &x, &y).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn the_cells_must_fit_the_picture() {
        let base = GenerateParams::default();
        let g = GridRecord {
            x: GridAxis::SrSteps(vec![2, 7]),
            y: GridAxis::PriorGuidance(vec![4.0]),
            left: 10,
            top: 20,
            cell_width: 64,
            cell_height: 64,
        };
        g.check(&base, 138, 84).unwrap();
        assert!(g.check(&base, 137, 84).unwrap_err().to_string().contains("do not fit its 137×84 picture"));
        let huge = GridRecord { left: usize::MAX, ..g.clone() };
        assert!(huge.check(&base, 138, 84).is_err());
        assert_eq!(g.parameters(), "Grid: sr steps × prior guidance, Grid X: \"2, 7\", Grid Y: \"4\"");
    }

    #[test]
    fn a_grid_picture_round_trips_and_a_hostile_one_is_refused() {
        use crate::image_settings::{ImageSettings, ModelIdentity};
        let model = ModelIdentity { name: "m".into(), version: "1".into(), sha256: "0".repeat(64) };
        let grid = GridRecord {
            x: GridAxis::Seed(vec![1, 2, 3]),
            y: GridAxis::DecoderGuidance(vec![2.0, 8.0]),
            left: 40,
            top: 20,
            cell_width: 64,
            cell_height: 64,
        };
        let r = ImageSettings {
            grid: Some(grid),
            ..ImageSettings::new(&GenerateParams::default(), None, &model, 232, 148)
        };
        let json = r.to_json();
        assert!(json.contains(r#""grid":{"x":{"setting":"seed","values":[1,2,3]},"y":{"setting":"decoder_guidance","values":[2.0,8.0]}"#), "{json}");
        assert_eq!(ImageSettings::from_json(&json, "g.png").unwrap(), r);
        assert!(r.kind().starts_with("an X/Y grid of seed (3) × decoder guidance (2)"));
        for (bad, needle) in [
            (json.replace("[2.0,8.0]", "[2.0,1e9]"), "decoder guidance must be"),
            (
                json.replace("\"decoder_guidance\",\"values\":[2.0,8.0]", "\"seed\",\"values\":[2,8]"),
                "both axes of the grid vary seed",
            ),
            (json.replace("\"setting\":\"seed\"", "\"setting\":\"prompt\""), "not the record unclip writes"),
            (json.replace("\"left\":40", "\"left\":41"), "do not fit"),
        ] {
            let e = ImageSettings::from_json(&bad, "g.png").unwrap_err().to_string();
            assert!(e.contains(needle) && !e.contains('\n'), "{needle}: {e}");
        }
    }

    #[test]
    fn each_axis_is_named_as_its_record_and_the_page_name_it_and_sets_that_setting() {
        let axes = [
            GridAxis::Seed(vec![12345]),
            GridAxis::PriorGuidance(vec![3.5]),
            GridAxis::DecoderGuidance(vec![6.5]),
            GridAxis::PriorSteps(vec![11]),
            GridAxis::DecoderSteps(vec![13]),
            GridAxis::SrSteps(vec![5]),
            GridAxis::PriorBestOf(vec![3]),
        ];
        for a in &axes {
            match a {
                // a new axis fails to compile here until it is listed above
                GridAxis::Seed(_)
                | GridAxis::PriorGuidance(_)
                | GridAxis::DecoderGuidance(_)
                | GridAxis::PriorSteps(_)
                | GridAxis::DecoderSteps(_)
                | GridAxis::SrSteps(_)
                | GridAxis::PriorBestOf(_) => {}
            }
        }
        assert_eq!(axes.iter().map(GridAxis::setting).collect::<Vec<_>>(), GridAxis::SETTINGS);
        let defaults = GenerateParams::default();
        for a in &axes {
            // SETTINGS (the page's menus) and serde's tag (the record, and what the page sends) are one name
            let record = serde_json::to_value(a).unwrap();
            assert_eq!(record["setting"], a.setting());
            // ... and the GenerateParams field that the axis' value goes into
            let mut p = defaults.clone();
            a.apply(0, &mut p);
            let (set, before) = (serde_json::to_value(&p).unwrap(), serde_json::to_value(&defaults).unwrap());
            assert_eq!(set[a.setting()], record["values"][0], "{}", a.setting());
            assert_ne!(before[a.setting()], record["values"][0], "{}: pick a value off the default", a.setting());
        }
    }
}
