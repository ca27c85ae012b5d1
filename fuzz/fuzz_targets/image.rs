//! A hostile image file (the CLI's --image / --mask, a picture dropped on the page): decoded with the size check
//! from its header (`decode_image`), then fitted to the model the ways the engine fits images (the image tower's
//! processor, the edit stages' square).
#![no_main]

use libfuzzer_sys::fuzz_target;
use unclip::image_processor::{decode_image, ClipImageProcessorConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(image) = decode_image(std::io::Cursor::new(data), "fuzz input") else { return };
    let square = image.to_rgb().fit_square(64).expect("any decoded image fits a square");
    assert_eq!(square.rgb.len(), 64 * 64 * 3);
    let pixels = ClipImageProcessorConfig::signed_unit(64).preprocess(&image, 64).expect("and the tower's input");
    assert!(pixels.iter().all(|v| v.is_finite() && (-1.0..=1.0).contains(v)));
});
