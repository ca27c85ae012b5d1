//! The remix operations on WebGPU equal the CPU's: the image tower's embedding, DDIM inversion and a
//! variation frame (the features use the Backend/Tensor traits only).

mod common;

use common::*;
use unclip::backend::webgpu::WebGpu;
use unclip::gguf::GgmlType;
use unclip::image_processor::RgbaImage;
use unclip::manifest::open_model_dir;
use unclip::pipeline::{GenerateParams, Silent};
use unclip::remix::{frame_params, variation_params};
use unclip::UnCLIPPipeline;

#[test]
fn remix_on_webgpu_equals_cpu() {
    let gpu = pollster::block_on(WebGpu::new()).expect("a WebGPU adapter (apt-get install mesa-vulkan-drivers)");
    let cpu = tiny_pipeline(GgmlType::F32);
    let (manifest, open) = open_model_dir(&tiny_model(GgmlType::F32)).unwrap();
    let on_gpu = UnCLIPPipeline::load(&gpu, manifest, open).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("www/gallery/rocket.png");
    let img = image::open(path).unwrap().to_rgba8();
    let rocket = RgbaImage::new(img.width() as usize, img.height() as usize, img.into_raw()).unwrap();

    let z = pollster::block_on(cpu.embed_image(&rocket)).unwrap();
    let e = max_abs_diff(&z, &pollster::block_on(on_gpu.embed_image(&rocket)).unwrap());
    assert!(e < 1e-4, "image embedding {e}");

    let base = GenerateParams { decoder_steps: 3, sr_steps: 2, ..Default::default() };
    let frame = frame_params(&base, z.clone(), 0);
    let x_t = pollster::block_on(cpu.invert(&rocket, &z, &frame, &mut Silent)).unwrap();
    let e = max_abs_diff(&x_t, &pollster::block_on(on_gpu.invert(&rocket, &z, &frame, &mut Silent)).unwrap());
    assert!(e < 1e-3, "inverted noise {e}");

    // the same embedding and noise on both (seed 0, 2/2 steps: a setting where the random decoder is not chaotic)
    let p = variation_params(&GenerateParams { decoder_steps: 2, sr_steps: 2, ..Default::default() }, &z, None, 0);
    let a = pollster::block_on(cpu.generate(&p, &mut Silent)).unwrap().image;
    let b = pollster::block_on(on_gpu.generate(&p, &mut Silent)).unwrap().image;
    let e = max_abs_diff(&a, &b);
    assert!(e < 1e-3, "variation frame {e}");
}
