//! Pixels → the image tower's input, as transformers' `CLIPImageProcessor` does it, driven by the
//! checkpoint's `feature_extractor/preprocessor_config.json` (kept verbatim in model.json):
//!
//!   RGB → resize (shortest edge, PIL bicubic, 8-bit) → center crop → × rescale_factor → (x − mean) / std
//!
//! PIL resamples horizontally, then vertically, rounding to 8 bits after each pass; so does this.
//! One deliberate difference: a transparent pixel is composited on white (PIL's `convert("RGB")` drops
//! alpha, leaving whatever colour transparent pixels store); for opaque images the two agree.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::nn::resize::bicubic_aa_weights;

/// An 8-bit RGBA image, row-major (what a canvas or a PNG decoder gives).
#[derive(Debug, Clone, PartialEq)]
pub struct RgbaImage {
    pub width: usize,
    pub height: usize,
    pub rgba: Vec<u8>,
}

/// An 8-bit RGB image, row-major, interleaved.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl RgbaImage {
    pub fn new(width: usize, height: usize, rgba: Vec<u8>) -> Result<Self> {
        if width == 0 || height == 0 || rgba.len() != width * height * 4 {
            return Err(Error::Settings(format!(
                "an image of {width}×{height} pixels needs {} RGBA bytes, got {}",
                width * height * 4,
                rgba.len()
            )));
        }
        Ok(RgbaImage { width, height, rgba })
    }

    /// Composited on white: c·α + 255·(1 − α), rounded.
    pub fn to_rgb(&self) -> RgbImage {
        let rgb = self
            .rgba
            .chunks_exact(4)
            .flat_map(|p| {
                let a = p[3] as u32;
                [0, 1, 2].map(|c| ((p[c] as u32 * a + 255 * (255 - a) + 127) / 255) as u8)
            })
            .collect();
        RgbImage { width: self.width, height: self.height, rgb }
    }
}

impl RgbImage {
    /// Resamples to (height, width) with PIL's BICUBIC (antialiased when shrinking): horizontal pass,
    /// round to 8 bits, vertical pass, round to 8 bits.
    pub fn resize(&self, height: usize, width: usize) -> RgbImage {
        let pass = |src: &[u8],
                    n_lines: usize,
                    in_len: usize,
                    out_len: usize,
                    stride_in: [usize; 2],
                    stride_out: [usize; 2]| {
            let m = bicubic_aa_weights(in_len, out_len);
            let mut out = vec![0u8; n_lines * out_len * 3];
            for line in 0..n_lines {
                for (i, row) in m.chunks(in_len).enumerate() {
                    let lo = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                    let hi = row.iter().rposition(|&w| w != 0.0).map_or(0, |h| h + 1);
                    for c in 0..3 {
                        let v: f64 = (lo..hi)
                            .map(|j| row[j] as f64 * src[(line * stride_in[0] + j * stride_in[1]) * 3 + c] as f64)
                            .sum();
                        out[(line * stride_out[0] + i * stride_out[1]) * 3 + c] = v.round().clamp(0.0, 255.0) as u8;
                    }
                }
            }
            out
        };
        let (h, w) = (self.height, self.width);
        let horizontal = if w == width { self.rgb.clone() } else { pass(&self.rgb, h, w, width, [w, 1], [width, 1]) };
        let rgb = if h == height { horizontal } else { pass(&horizontal, width, h, height, [1, width], [1, width]) };
        RgbImage { width, height, rgb }
    }

    /// The centered `height`×`width` window (transformers `center_crop`: top = (H − h) / 2, floored).
    pub fn center_crop(&self, height: usize, width: usize) -> Result<RgbImage> {
        if height > self.height || width > self.width {
            return Err(Error::Settings(format!(
                "cannot crop {width}×{height} out of a {}×{} image",
                self.width, self.height
            )));
        }
        let (top, left) = ((self.height - height) / 2, (self.width - width) / 2);
        let rgb = (top..top + height)
            .flat_map(|y| {
                let start = (y * self.width + left) * 3;
                self.rgb[start..start + width * 3].iter().copied()
            })
            .collect();
        Ok(RgbImage { width, height, rgb })
    }

    /// Shortest edge to `size` (keeping the aspect ratio, the long edge truncated as transformers'
    /// `get_resize_output_image_size` does), then the centered size×size square.
    pub fn fit_square(&self, size: usize) -> Result<RgbImage> {
        let (h, w) = (self.height, self.width);
        let (oh, ow) = if w <= h { (size * h / w, size) } else { (size, size * w / h) };
        self.resize(oh, ow).center_crop(size, size)
    }

    /// (3, H, W) floats `v · scale + offset` per channel, i.e. CHW.
    pub fn to_chw(&self, scale: [f32; 3], offset: [f32; 3]) -> Vec<f32> {
        let n = self.width * self.height;
        let mut out = vec![0f32; 3 * n];
        for (p, px) in self.rgb.chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * n + p] = px[c] as f32 * scale[c] + offset[c];
            }
        }
        out
    }
}

/// `size` / `crop_size` in a preprocessor config: `{"shortest_edge": n}`, `{"height": h, "width": w}`
/// or a bare number (older configs; a shortest edge for `size`, a square for `crop_size`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Size {
    ShortestEdge { shortest_edge: usize },
    HeightWidth { height: usize, width: usize },
    Number(usize),
}

fn yes() -> bool {
    true
}
fn bicubic() -> u32 {
    3
}
fn one_255th() -> f32 {
    1.0 / 255.0
}
/// transformers' OPENAI_CLIP_MEAN / OPENAI_CLIP_STD, CLIPImageProcessor's defaults (its literals, verbatim).
#[allow(clippy::excessive_precision)]
fn clip_mean() -> [f32; 3] {
    [0.481_454_66, 0.457_827_5, 0.408_210_73]
}
#[allow(clippy::excessive_precision)]
fn clip_std() -> [f32; 3] {
    [0.268_629_54, 0.261_302_58, 0.275_777_11]
}

/// The keys of `preprocessor_config.json` this port reads (transformers `CLIPImageProcessor`), with
/// its defaults; other keys are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipImageProcessorConfig {
    #[serde(default = "yes")]
    pub do_resize: bool,
    pub size: Size,
    /// PIL resampling filter; 3 = BICUBIC is the one CLIP uses and the only one supported.
    #[serde(default = "bicubic")]
    pub resample: u32,
    #[serde(default = "yes")]
    pub do_center_crop: bool,
    pub crop_size: Option<Size>,
    #[serde(default = "yes")]
    pub do_rescale: bool,
    #[serde(default = "one_255th")]
    pub rescale_factor: f32,
    #[serde(default = "yes")]
    pub do_normalize: bool,
    #[serde(default = "clip_mean")]
    pub image_mean: [f32; 3],
    #[serde(default = "clip_std")]
    pub image_std: [f32; 3],
}

impl ClipImageProcessorConfig {
    /// The unclip-emoji convention (train/export.py): resize to the tower's size, x / 127.5 − 1
    /// (= rescale 1/255, mean 0.5, std 0.5).
    pub fn signed_unit(image_size: usize) -> Self {
        ClipImageProcessorConfig {
            do_resize: true,
            size: Size::ShortestEdge { shortest_edge: image_size },
            resample: 3,
            do_center_crop: true,
            crop_size: Some(Size::HeightWidth { height: image_size, width: image_size }),
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: [0.5; 3],
            image_std: [0.5; 3],
        }
    }

    /// `pixel_values` (3, S, S) for an image tower of input size S.
    pub fn preprocess(&self, image: &RgbaImage, tower_size: usize) -> Result<Vec<f32>> {
        if self.resample != 3 {
            return Err(Error::Model(format!(
                "the image processor asks for PIL resample filter {}, this port implements only 3 (bicubic), which CLIP uses",
                self.resample
            )));
        }
        let mut img = image.to_rgb();
        if self.do_resize {
            let (h, w) = (img.height, img.width);
            img = match self.size {
                Size::ShortestEdge { shortest_edge: s } | Size::Number(s) => {
                    let (oh, ow) = if w <= h { (s * h / w, s) } else { (s, s * w / h) };
                    img.resize(oh.max(1), ow.max(1))
                }
                Size::HeightWidth { height, width } => img.resize(height, width),
            };
        }
        if self.do_center_crop {
            let (h, w) = match self.crop_size {
                Some(Size::HeightWidth { height, width }) => (height, width),
                Some(Size::ShortestEdge { shortest_edge: s } | Size::Number(s)) => (s, s),
                None => (tower_size, tower_size),
            };
            img = img.center_crop(h, w)?;
        }
        if (img.height, img.width) != (tower_size, tower_size) {
            return Err(Error::Model(format!(
                "the image processor makes {}×{} images but the image tower takes {tower_size}×{tower_size}: the checkpoint's preprocessor_config.json does not fit its image encoder",
                img.width, img.height
            )));
        }
        let rescale = if self.do_rescale { self.rescale_factor } else { 1.0 };
        let (mean, std) = if self.do_normalize { (self.image_mean, self.image_std) } else { ([0.0; 3], [1.0; 3]) };
        Ok(img.to_chw([0, 1, 2].map(|c| rescale / std[c]), [0, 1, 2].map(|c| -mean[c] / std[c])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: usize, h: usize) -> RgbaImage {
        let rgba = (0..w * h).flat_map(|p| [(p % w * 255 / w) as u8, (p / w * 255 / h) as u8, 100, 255]).collect();
        RgbaImage::new(w, h, rgba).unwrap()
    }

    #[test]
    fn transparent_pixels_become_white_and_opaque_ones_stay() {
        let img = RgbaImage::new(2, 1, vec![10, 20, 30, 255, 0, 0, 0, 0]).unwrap();
        assert_eq!(img.to_rgb().rgb, [10, 20, 30, 255, 255, 255]);
        assert!(RgbaImage::new(2, 2, vec![0; 15]).unwrap_err().to_string().contains("needs 16 RGBA bytes"));
    }

    #[test]
    fn resizing_a_flat_image_keeps_it_flat_and_same_size_is_identity() {
        let flat = RgbaImage::new(7, 5, [200u8, 50, 9, 255].repeat(35)).unwrap().to_rgb();
        let r = flat.resize(16, 3);
        assert!(r.rgb.chunks(3).all(|p| p == [200, 50, 9]));
        let g = gradient(9, 6).to_rgb();
        assert_eq!(g.resize(6, 9), g);
    }

    #[test]
    fn fit_square_crops_the_middle_of_the_long_side() {
        // 8×4: the shortest edge is already 4, the crop keeps columns 2..6
        let g = gradient(8, 4).to_rgb();
        let sq = g.fit_square(4).unwrap();
        assert_eq!((sq.width, sq.height), (4, 4));
        assert_eq!(sq.rgb[..3], g.rgb[2 * 3..2 * 3 + 3]);
    }

    #[test]
    fn signed_unit_processing_is_x_over_127_5_minus_1() {
        let img = gradient(4, 4);
        let px = ClipImageProcessorConfig::signed_unit(4).preprocess(&img, 4).unwrap();
        let rgb = img.to_rgb();
        for p in 0..16 {
            for c in 0..3 {
                let want = rgb.rgb[p * 3 + c] as f32 / 127.5 - 1.0;
                assert!((px[c * 16 + p] - want).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn configs_parse_as_transformers_writes_them_and_mismatches_are_explained() {
        let json = r#"{"crop_size": {"height": 32, "width": 32}, "do_center_crop": true, "do_normalize": true,
            "do_resize": true, "image_processor_type": "CLIPImageProcessor", "resample": 3,
            "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 32}}"#;
        let c: ClipImageProcessorConfig = serde_json::from_str(json).unwrap();
        assert_eq!(c.image_mean, clip_mean());
        assert_eq!(c.size, Size::ShortestEdge { shortest_edge: 32 });
        let px = c.preprocess(&gradient(48, 40), 32).unwrap();
        assert_eq!(px.len(), 3 * 32 * 32);
        let err = c.preprocess(&gradient(48, 40), 30).unwrap_err().to_string();
        assert!(err.contains("32×32 images but the image tower takes 30×30"), "{err}");
        let bilinear = ClipImageProcessorConfig { resample: 2, ..c };
        assert!(bilinear.preprocess(&gradient(4, 4), 32).unwrap_err().to_string().contains("only 3 (bicubic)"));
    }
}
