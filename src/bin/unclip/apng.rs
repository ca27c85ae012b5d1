//! Animated PNG (APNG, which every current browser plays): each frame is compressed by the `image`
//! crate's PNG encoder, whose IDAT payload is re-wrapped as the animation's IDAT (frame 0) or fdAT
//! chunks, behind acTL/fcTL control chunks.

use std::path::Path;

use unclip::{Error, Result};

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend(kind);
    out.extend(data);
    let crc = crc32(&out[start..]);
    out.extend(crc.to_be_bytes());
}

/// (IHDR payload, concatenated IDAT payload) of one frame encoded as a PNG.
fn encode_frame(rgba: &[u8], w: usize, h: usize) -> Result<(Vec<u8>, Vec<u8>)> {
    use image::ImageEncoder;
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(rgba, w as u32, h as u32, image::ExtendedColorType::Rgba8)
        .map_err(|e| Error::Settings(format!("could not encode a PNG frame: {e}")))?;
    let (mut ihdr, mut idat, mut at) = (Vec::new(), Vec::new(), 8);
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().expect("4 bytes")) as usize;
        let (kind, data) = (&png[at + 4..at + 8], &png[at + 8..at + 8 + len]);
        match kind {
            b"IHDR" => ihdr = data.to_vec(),
            b"IDAT" => idat.extend(data),
            _ => {}
        }
        at += 12 + len;
    }
    Ok((ihdr, idat))
}

/// Writes `frames` (RGBA, all w×h) as an endlessly looping APNG showing each for `frame_ms`.
pub fn write_apng(path: &Path, frames: &[Vec<u8>], w: usize, h: usize, frame_ms: u16) -> Result<()> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut seq = 0u32;
    for (i, rgba) in frames.iter().enumerate() {
        let (ihdr, idat) = encode_frame(rgba, w, h)?;
        if i == 0 {
            chunk(&mut out, b"IHDR", &ihdr);
            let actl: Vec<u8> = [(frames.len() as u32).to_be_bytes(), 0u32.to_be_bytes()].concat(); // 0 = loop forever
            chunk(&mut out, b"acTL", &actl);
        }
        // fcTL: sequence, width, height, x, y, delay num/den, dispose none, blend source
        let mut fctl = Vec::new();
        for v in [seq, w as u32, h as u32, 0, 0] {
            fctl.extend(v.to_be_bytes());
        }
        fctl.extend(frame_ms.to_be_bytes());
        fctl.extend(1000u16.to_be_bytes());
        fctl.extend([0, 0]);
        chunk(&mut out, b"fcTL", &fctl);
        seq += 1;
        if i == 0 {
            chunk(&mut out, b"IDAT", &idat);
        } else {
            chunk(&mut out, b"fdAT", &[seq.to_be_bytes().as_slice(), &idat].concat());
            seq += 1;
        }
    }
    chunk(&mut out, b"IEND", &[]);
    std::fs::write(path, out).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_iend_is_the_well_known_value() {
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }

    #[test]
    fn the_first_frame_reads_back_as_a_still_png() {
        let path = std::env::temp_dir().join(format!("unclip-apng-{}.png", std::process::id()));
        let red = [255u8, 0, 0, 255].repeat(6);
        let blue = [0u8, 0, 255, 255].repeat(6);
        write_apng(&path, &[red.clone(), blue], 3, 2, 100).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.windows(4).filter(|w| w == b"fcTL").count(), 2);
        assert_eq!(bytes.windows(4).filter(|w| w == b"fdAT").count(), 1);
        let still = image::load_from_memory(&bytes).unwrap().to_rgba8();
        assert_eq!(still.into_raw(), red);
    }
}
