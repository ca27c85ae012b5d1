//! Pixels → the image tower's input, as transformers' `CLIPImageProcessor` does it, driven by the
//! checkpoint's `feature_extractor/preprocessor_config.json` (kept verbatim in model.json):
//!
//!   RGB → resize (shortest edge, PIL bicubic, 8-bit) → center crop → × rescale_factor → (x − mean) / std
//!
//! PIL resamples horizontally, then vertically, rounding to 8 bits after each pass; so does this.
//! One deliberate difference: a transparent pixel is composited on white (PIL's `convert("RGB")` drops
//! alpha, leaving whatever colour transparent pixels store); for opaque images the two agree.
//!
//! And the other way, the pipeline's output → pixels ([`chw_to_hwc01`], [`hwc_to_rgba8`]), as diffusers'
//! `UnCLIPPipeline` post-processes and PIL saves.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::nn::resize::{bicubic_aa_taps, Taps};

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

/// The most pixels an input image may have: an 8192×8192 photo (its RGBA copy is 256 MiB). Fitting an image to
/// the model needs memory linear in it (`RgbImage::resize_window`), whatever its aspect ratio.
pub const MAX_IMAGE_PIXELS: usize = 8192 * 8192;

/// Refuses images of more than [`MAX_IMAGE_PIXELS`] before anything is decoded or allocated for them.
pub fn check_image_size(width: usize, height: usize) -> Result<()> {
    if width.saturating_mul(height) > MAX_IMAGE_PIXELS {
        return Err(Error::Settings(format!(
            "the image is {width}×{height} pixels; at most {MAX_IMAGE_PIXELS} pixels (8192×8192) are accepted: scale it down first"
        )));
    }
    Ok(())
}

/// Decodes a PNG (or another format the `image` crate was built with) from `reader`, refusing more than
/// [`MAX_IMAGE_PIXELS`] from the header, before any pixel is decoded or allocated. `what` names the image in errors.
/// Natively, with the `cli` feature (the `image` crate); the page decodes pictures in the browser.
#[cfg(all(not(target_arch = "wasm32"), feature = "cli"))]
pub fn decode_image<R: std::io::BufRead + std::io::Seek>(reader: R, what: &str) -> Result<RgbaImage> {
    use image::ImageDecoder;
    let unreadable = |e: &dyn std::fmt::Display| {
        Error::Settings(format!("could not read the image {what}: {e} (PNG files can be read)"))
    };
    let mut reader = image::ImageReader::new(reader).with_guessed_format().map_err(|e| unreadable(&e))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some((MAX_IMAGE_PIXELS as u64) * 4 + (64 << 20)); // the RGBA copy and the decoder's own buffers
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(|e| unreadable(&e))?;
    let (w, h) = decoder.dimensions();
    check_image_size(w as usize, h as usize)?;
    let rgba = image::DynamicImage::from_decoder(decoder).map_err(|e| unreadable(&e))?.to_rgba8();
    RgbaImage::new(rgba.width() as usize, rgba.height() as usize, rgba.into_raw())
}

impl RgbaImage {
    pub fn new(width: usize, height: usize, rgba: Vec<u8>) -> Result<Self> {
        let image = RgbaImage { width, height, rgba };
        image.check()?;
        Ok(image)
    }

    /// What `new` checks, for an image built field by field (its fields are public).
    pub fn check(&self) -> Result<()> {
        let (width, height) = (self.width, self.height);
        check_image_size(width, height)?;
        if width == 0 || height == 0 || self.rgba.len() != width * height * 4 {
            return Err(Error::Settings(format!(
                "an image of {width}×{height} pixels needs {} RGBA bytes, got {}",
                width * height * 4,
                self.rgba.len()
            )));
        }
        Ok(())
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

/// A rectangle of an image, in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub top: usize,
    pub left: usize,
    pub height: usize,
    pub width: usize,
}

impl Window {
    /// transformers' `center_crop` of (height, width) out of (image_h, image_w).
    pub(crate) fn centered(image_h: usize, image_w: usize, height: usize, width: usize) -> Result<Window> {
        if height > image_h || width > image_w {
            return Err(Error::Settings(format!("cannot crop {width}×{height} out of a {image_w}×{image_h} image")));
        }
        Ok(Window { top: (image_h - height) / 2, left: (image_w - width) / 2, height, width })
    }
}

/// (height, width) with the shortest edge at `size` (transformers `get_resize_output_image_size`: the long edge
/// scaled and truncated, at least 1).
pub(crate) fn shortest_edge_size(h: usize, w: usize, size: usize) -> (usize, usize) {
    let (oh, ow) = if w <= h { (size * h / w, size) } else { (size, size * w / h) };
    (oh.max(1), ow.max(1))
}

impl RgbImage {
    /// Resamples to (height, width) with PIL's BICUBIC (antialiased when shrinking): horizontal pass,
    /// round to 8 bits, vertical pass, round to 8 bits.
    pub fn resize(&self, height: usize, width: usize) -> RgbImage {
        self.resize_window(height, width, Window { top: 0, left: 0, height, width })
    }

    /// The `window` of the image resized to (height, width), computing only the window's pixels: each output
    /// pixel depends on its own taps alone, so this equals `resize` then a crop, in memory linear in the input
    /// and the window (a 1×4000 image fitted to 64 px would otherwise be 64×256000 first).
    pub fn resize_window(&self, height: usize, width: usize, window: Window) -> RgbImage {
        let Window { top, left, height: wh, width: ww } = window;
        debug_assert!(top + wh <= height && left + ww <= width, "the window lies inside the resized image");
        // one pass along an axis: `lines` lines of `in_len` samples (strides in pixels) → the taps' outputs
        let pass = |src: &[u8], lines: usize, taps: &[Taps], stride_in: [usize; 2], stride_out: [usize; 2]| {
            let mut out = vec![0u8; lines * taps.len() * 3];
            for line in 0..lines {
                for (i, t) in taps.iter().enumerate() {
                    for c in 0..3 {
                        let v: f64 = (t.weights.iter().enumerate())
                            .map(|(k, &w)| {
                                w as f64 * src[(line * stride_in[0] + (t.start + k) * stride_in[1]) * 3 + c] as f64
                            })
                            .sum();
                        out[(line * stride_out[0] + i * stride_out[1]) * 3 + c] = v.round().clamp(0.0, 255.0) as u8;
                    }
                }
            }
            out
        };
        let (h, w) = (self.height, self.width);
        // horizontal: (h, w) → (h, ww); the same-size pass is the identity, as in PIL
        let horizontal = if w == width {
            let rows = (0..h).flat_map(|y| &self.rgb[(y * w + left) * 3..(y * w + left + ww) * 3]);
            rows.copied().collect()
        } else {
            pass(&self.rgb, h, &bicubic_aa_taps(w, width, left..left + ww), [w, 1], [ww, 1])
        };
        // vertical: (h, ww) → (wh, ww)
        let rgb = if h == height {
            horizontal[top * ww * 3..(top + wh) * ww * 3].to_vec()
        } else {
            pass(&horizontal, ww, &bicubic_aa_taps(h, height, top..top + wh), [1, ww], [1, ww])
        };
        RgbImage { width: ww, height: wh, rgb }
    }

    /// The centered `height`×`width` window (transformers `center_crop`: top = (H − h) / 2, floored).
    pub fn center_crop(&self, height: usize, width: usize) -> Result<RgbImage> {
        let window = Window::centered(self.height, self.width, height, width)?;
        Ok(self.resize_window(self.height, self.width, window))
    }

    /// Shortest edge to `size` (keeping the aspect ratio, the long edge truncated as transformers'
    /// `get_resize_output_image_size` does), then the centered size×size square.
    pub fn fit_square(&self, size: usize) -> Result<RgbImage> {
        let (oh, ow) = shortest_edge_size(self.height, self.width, size);
        Ok(self.resize_window(oh, ow, Window::centered(oh, ow, size, size)?))
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
        let img = image.to_rgb();
        // the sizes first, then one resize of only the pixels the crop keeps
        let (rh, rw) = match (self.do_resize, self.size) {
            (false, _) => (img.height, img.width),
            (true, Size::ShortestEdge { shortest_edge: s } | Size::Number(s)) => {
                shortest_edge_size(img.height, img.width, s)
            }
            (true, Size::HeightWidth { height, width }) => (height, width),
        };
        let (ch, cw) = match (self.do_center_crop, self.crop_size) {
            (false, _) => (rh, rw),
            (true, Some(Size::HeightWidth { height, width })) => (height, width),
            (true, Some(Size::ShortestEdge { shortest_edge: s } | Size::Number(s))) => (s, s),
            (true, None) => (tower_size, tower_size),
        };
        if (ch, cw) != (tower_size, tower_size) {
            return Err(Error::Model(format!(
                "the image processor makes {cw}×{ch} images but the image tower takes {tower_size}×{tower_size}: the checkpoint's preprocessor_config.json does not fit its image encoder"
            )));
        }
        let img = img.resize_window(rh, rw, Window::centered(rh, rw, ch, cw)?);
        let rescale = if self.do_rescale { self.rescale_factor } else { 1.0 };
        let (mean, std) = if self.do_normalize { (self.image_mean, self.image_std) } else { ([0.0; 3], [1.0; 3]) };
        Ok(img.to_chw([0, 1, 2].map(|c| rescale / std[c]), [0, 1, 2].map(|c| -mean[c] / std[c])))
    }
}

/// (H·W·3) in [0, 1] → RGBA bytes.
pub fn hwc_to_rgba8(hwc: &[f32]) -> Vec<u8> {
    hwc.chunks(3).flat_map(|p| [to_u8(p[0]), to_u8(p[1]), to_u8(p[2]), 255]).collect()
}

fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round_ties_even() as u8
}

/// A CHW image in [-1, 1] (one sample) → HWC in [0, 1]: (x·0.5 + 0.5).clamp(0, 1).
pub fn chw_to_hwc01(chw: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0f32; h * w * c];
    for ch in 0..c {
        for p in 0..h * w {
            out[p * c + ch] = (chw[ch * h * w + p] * 0.5 + 0.5).clamp(0.0, 1.0);
        }
    }
    out
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
