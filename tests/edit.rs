//! Editing (src/edit.rs): img2img (SDEdit) and inpainting (RePaint) on the tiny checkpoint and the bundled
//! unclip-emoji, on the CPU and on WebGPU: strength 0 gives the image back and strength 1 is the plain
//! generation, the distance to the image grows with strength, kept pixels come out as the input's, an empty
//! prompt decodes the image's own embedding, and bad settings are refused.

mod common;

use std::path::Path;

use common::*;
use unclip::backend::webgpu::WebGpu;
use unclip::backend::Backend;
use unclip::edit::EditParams;
use unclip::gguf::GgmlType;
use unclip::image_processor::RgbaImage;
use unclip::manifest::open_model_dir;
use unclip::pipeline::{GenerateOutput, GenerateParams, Silent};
use unclip::UnCLIPPipeline;

/// An 80×64 picture (not square: the middle 64×64 is used) with structure in every channel.
fn picture() -> RgbaImage {
    let (w, h) = (80, 64);
    let rgba = (0..w * h)
        .flat_map(|p| {
            let (x, y) = (p % w, p / w);
            [(x * 3) as u8, (y * 4) as u8, ((x * y) % 256) as u8, 255]
        })
        .collect();
    RgbaImage::new(w, h, rgba).unwrap()
}

/// A 40×32 mask stretched over the picture: white (paint) on its left half, transparent black on the right.
fn left_half_mask() -> RgbaImage {
    let rgba = (0..40 * 32).flat_map(|p| if p % 40 < 20 { [255, 255, 255, 255] } else { [0, 0, 0, 0] }).collect();
    RgbaImage::new(40, 32, rgba).unwrap()
}

fn bundled<B: Backend>(be: &B) -> UnCLIPPipeline<B> {
    let (manifest, open) = open_model_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models/unclip-emoji")).unwrap();
    UnCLIPPipeline::load(be, manifest, open).unwrap()
}

fn tiny<B: Backend>(be: &B) -> UnCLIPPipeline<B> {
    let (manifest, open) = open_model_dir(&tiny_model(GgmlType::F32)).unwrap();
    UnCLIPPipeline::load(be, manifest, open).unwrap()
}

fn params(prompt: &str) -> GenerateParams {
    GenerateParams {
        prompt: prompt.into(),
        seed: 3,
        prior_steps: 3,
        decoder_steps: 6,
        sr_steps: 4,
        ..Default::default()
    }
}

fn edit<B: Backend>(p: &UnCLIPPipeline<B>, params: &GenerateParams, e: &EditParams) -> GenerateOutput {
    pollster::block_on(p.edit(params, e, &mut Silent)).unwrap()
}

/// The input as the model sees it at the output size (RGB, 8 bits).
fn fitted(image: &RgbaImage, size: usize) -> Vec<u8> {
    image.to_rgb().fit_square(size).unwrap().rgb
}

fn rgb8(out: &GenerateOutput) -> Vec<u8> {
    out.to_rgba8().chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect()
}

fn mean_abs(a: &[u8], b: &[u8]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).abs()).sum::<f64>() / a.len() as f64
}

/// Pixels of a 64-px output in columns `cols` (RGB interleaved).
fn columns(rgb: &[u8], size: usize, cols: std::ops::Range<usize>) -> Vec<u8> {
    (0..size)
        .flat_map(|y| cols.clone().flat_map(move |x| (0..3).map(move |c| (y, x, c))))
        .map(|(y, x, c)| rgb[(y * size + x) * 3 + c])
        .collect()
}

/// Kept columns of the left-half mask in the 64-px output: the mask edge sits at column 32 (80 → crop 8..72,
/// mask edge at 40 − 8); bicubic resampling blurs it by two pixels.
const KEPT: std::ops::Range<usize> = 35..64;
const PAINTED: std::ops::Range<usize> = 0..29;

fn check_inpainting<B: Backend>(what: &str, p: &UnCLIPPipeline<B>, prompt: &str) {
    let image = picture();
    let size = p.output_size().0;
    let want = fitted(&image, size);
    for resample in [1, 2] {
        let e = EditParams { image: image.clone(), mask: Some(left_half_mask()), strength: 1.0, resample };
        let got = rgb8(&edit(p, &params(prompt), &e));
        assert_eq!(columns(&got, size, KEPT), columns(&want, size, KEPT), "{what}, U = {resample}: kept pixels");
        let painted = mean_abs(&columns(&got, size, PAINTED), &columns(&want, size, PAINTED));
        assert!(painted > 5.0, "{what}, U = {resample}: the painted half is {painted} from the input, not repainted");
    }
}

#[test]
fn inpainting_keeps_the_unmasked_pixels_on_the_cpu() {
    check_inpainting("tiny", &tiny(&unclip::backend::cpu::Cpu), "horse");
    check_inpainting("unclip-emoji", &bundled(&unclip::backend::cpu::Cpu), "a blue star");
}

#[test]
fn inpainting_keeps_the_unmasked_pixels_on_webgpu() {
    let gpu = pollster::block_on(WebGpu::new()).expect("a WebGPU adapter (apt-get install mesa-vulkan-drivers)");
    check_inpainting("tiny", &tiny(&gpu), "horse");
    check_inpainting("unclip-emoji", &bundled(&gpu), "a blue star");
}

#[test]
fn img2img_strength_goes_from_the_image_to_a_new_picture() {
    let p = bundled(&unclip::backend::cpu::Cpu);
    let image = picture();
    let input = fitted(&image, 64);
    let at = |strength: f32| {
        edit(&p, &params("a red heart"), &EditParams { image: image.clone(), strength, ..Default::default() })
    };
    let zero = rgb8(&at(0.0));
    assert_eq!(zero, input, "strength 0 gives the image back");
    let generated = pollster::block_on(p.generate(&params("a red heart"), &mut Silent)).unwrap();
    assert_eq!(at(1.0).image, generated.image, "strength 1 is the plain generation, bit for bit");
    let d: Vec<f64> = [0.0, 0.3, 0.7, 1.0].map(|s| mean_abs(&rgb8(&at(s)), &input)).to_vec();
    assert!(d.windows(2).all(|w| w[0] < w[1]), "the distance to the image grows with strength: {d:?}");
}

#[test]
fn an_empty_prompt_decodes_the_images_own_embedding() {
    let p = tiny(&unclip::backend::cpu::Cpu);
    let image = picture();
    let own = pollster::block_on(p.embed_image(&image)).unwrap();
    let e = EditParams { image, strength: 0.5, ..Default::default() };
    let out = edit(&p, &params(""), &e);
    assert_eq!(out.image_embedding, own);
    let prompted = edit(&p, &params("horse"), &e);
    assert_ne!(prompted.image_embedding, own, "a prompt goes through the prior");
}

#[test]
fn bad_edit_settings_are_refused_with_a_sentence() {
    let p = tiny(&unclip::backend::cpu::Cpu);
    let image = picture();
    let err = |params: GenerateParams, e: EditParams| {
        pollster::block_on(p.edit(&params, &e, &mut Silent)).err().unwrap().to_string()
    };
    let e = EditParams { image: image.clone(), ..Default::default() };
    assert!(err(params("x"), EditParams { strength: f32::NAN, ..e.clone() }).contains("strength must be a number"));
    assert!(err(params("x"), EditParams { resample: 2, ..e.clone() }).contains("give a mask"));
    let empty = RgbaImage { width: 0, height: 0, rgba: vec![] }; // (fields are public: built without `new`)
    assert!(err(params("x"), EditParams { image: empty.clone(), ..e.clone() }).contains("0×0 pixels"));
    assert!(err(params("x"), EditParams { mask: Some(empty), ..e.clone() }).starts_with("the mask: "));
    let with_noise = GenerateParams { decoder_latents: Some(vec![0.0; 3 * 8 * 8]), ..params("x") };
    assert!(err(with_noise, e).contains("takes no initial noise"));
}

#[test]
fn the_cli_edits_with_the_fixed_interface() {
    let dir = std::env::temp_dir().join(format!("unclip-edit-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let save = |name: &str, img: &RgbaImage| {
        let path = dir.join(name);
        image::save_buffer(&path, &img.rgba, img.width as u32, img.height as u32, image::ExtendedColorType::Rgba8)
            .unwrap();
        path.to_str().unwrap().to_string()
    };
    let (input, mask) = (save("in.png", &picture()), save("mask.png", &left_half_mask()));
    let model = tiny_model(GgmlType::F32);
    let model = model.to_str().unwrap();
    let steps = ["--prior-steps", "2", "--decoder-steps", "3", "--sr-steps", "2"];
    let unclip = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_unclip")).args(args).args(steps).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let read = |path: &Path| image::open(path).unwrap().to_rgb8().into_raw();
    let want = fitted(&picture(), 64);

    let out = dir.join("img2img.png");
    let img2img = ["img2img", "--model", model, "--image", &input, "--prompt", "horse", "--strength"];
    let (ok, err) = unclip(&[&img2img[..], &["0", "--out", out.to_str().unwrap()]].concat());
    assert!(ok, "{err}");
    assert_eq!(read(&out), want, "strength 0 writes the image back");

    let out = dir.join("inpaint.png");
    let inpaint = ["inpaint", "--model", model, "--image", &input, "--mask", &mask, "--prompt", "horse"];
    let (ok, err) = unclip(&[&inpaint[..], &["--out", out.to_str().unwrap()]].concat());
    assert!(ok, "{err}");
    assert_eq!(columns(&read(&out), 64, KEPT), columns(&want, 64, KEPT), "kept pixels");

    let (ok, err) = unclip(&[&img2img[..], &["1.5", "--out", out.to_str().unwrap()]].concat());
    assert!(!ok && err.contains("strength must be a number from 0"), "{err}");
    let missing = dir.join("no-such-mask.png");
    let (ok, err) = unclip(&[&inpaint[..5], &["--mask", missing.to_str().unwrap(), "--out", "x.png"]].concat());
    assert!(!ok && err.contains("could not read the image") && err.lines().count() == 1, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
