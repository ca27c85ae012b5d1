//! PNG files (docs/formats.md, "Pictures"): RGBA8 pictures and animations (APNG) written with the `png` crate,
//! each with its settings in two uncompressed iTXt chunks before the pixels (`unclip`: the JSON record,
//! `parameters`: its text form; [`crate::image_settings`]), and the `unclip` chunk found again by walking the
//! chunk headers, without decoding a pixel and reading at most [`MAX_SETTINGS_BYTES`] of it.

use std::io::{Read, Seek, SeekFrom};

use crate::error::{Error, Result};
use crate::image_settings::{ImageSettings, MAX_SETTINGS_BYTES, PARAMETERS_KEYWORD, SETTINGS_KEYWORD};

const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

fn encoding(e: png::EncodingError) -> Error {
    Error::Settings(format!("could not encode the PNG: {e}"))
}

/// An encoder for `width`×`height` RGBA8 with the settings chunks of `settings`.
fn encoder<'w>(
    out: &'w mut Vec<u8>,
    width: usize,
    height: usize,
    settings: &ImageSettings,
) -> Result<png::Encoder<'static, &'w mut Vec<u8>>> {
    let mut enc = png::Encoder::new(out, width as u32, height as u32);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Balanced);
    enc.add_itxt_chunk(PARAMETERS_KEYWORD.into(), settings.to_parameters()).map_err(encoding)?;
    enc.add_itxt_chunk(SETTINGS_KEYWORD.into(), settings.to_json()).map_err(encoding)?;
    Ok(enc)
}

/// A PNG of `width`×`height` RGBA8 pixels (row-major) carrying `settings`.
pub fn encode_png(rgba: &[u8], width: usize, height: usize, settings: &ImageSettings) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut writer = encoder(&mut out, width, height, settings)?.write_header().map_err(encoding)?;
    writer.write_image_data(rgba).map_err(encoding)?;
    writer.finish().map_err(encoding)?;
    Ok(out)
}

/// An animated PNG (every current browser plays it, forever) of `frames` (each `width`×`height` RGBA8), `frame_ms`
/// each, carrying `settings`; its default image is the first frame.
pub fn encode_apng<F: AsRef<[u8]>>(
    frames: &[F],
    width: usize,
    height: usize,
    frame_ms: u16,
    settings: &ImageSettings,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = encoder(&mut out, width, height, settings)?;
    enc.set_animated(frames.len() as u32, 0).map_err(encoding)?;
    enc.set_frame_delay(frame_ms, 1000).map_err(encoding)?;
    let mut writer = enc.write_header().map_err(encoding)?;
    for f in frames {
        writer.write_image_data(f.as_ref()).map_err(encoding)?;
    }
    writer.finish().map_err(encoding)?;
    Ok(out)
}

/// The text of the first `unclip` iTXt chunk of the PNG in `r` (`file` names it in sentences), or None when it has
/// none. Reads the chunk headers and skips every other chunk's data (seeks), so a huge picture costs little; refuses
/// a settings chunk over [`MAX_SETTINGS_BYTES`] before reading it, a compressed one, and text that is not UTF-8.
pub fn read_settings_text<R: Read + Seek>(mut r: R, file: &str) -> Result<Option<String>> {
    let bad = |what: String| Error::Settings(format!("{file} {what}"));
    let mut head = [0u8; 8];
    if r.read_exact(&mut head).is_err() || head != SIGNATURE {
        return Err(bad(
            "is not a PNG file (it does not start with PNG's signature): give a PNG that unclip wrote".into()
        ));
    }
    let keyword = format!("{SETTINGS_KEYWORD}\0");
    loop {
        if r.read_exact(&mut head).is_err() {
            return Ok(None); // cut off before IEND: no settings where there was room for them
        }
        let len = u32::from_be_bytes(head[..4].try_into().unwrap()) as u64;
        let kind = [head[4], head[5], head[6], head[7]];
        match &kind {
            b"IEND" => return Ok(None),
            b"iTXt" if len >= keyword.len() as u64 => {
                let mut start = vec![0u8; keyword.len()];
                r.read_exact(&mut start).map_err(|_| bad("is cut off inside a text chunk".into()))?;
                if start != keyword.as_bytes() {
                    skip(&mut r, len - start.len() as u64 + 4)?;
                    continue;
                }
                let rest = len - start.len() as u64;
                if rest > MAX_SETTINGS_BYTES as u64 {
                    return Err(bad(format!(
                        "has an unclip settings chunk of {len} bytes, more than the {MAX_SETTINGS_BYTES} unclip writes: the file was changed or made by another program, so give the settings as flags instead"
                    )));
                }
                let mut data = Vec::with_capacity(rest as usize);
                (&mut r).take(rest).read_to_end(&mut data).map_err(|e| bad(format!("could not be read: {e}")))?;
                if data.len() as u64 != rest {
                    return Err(bad("is cut off inside its unclip settings chunk".into()));
                }
                return itxt_text(&data).map(Some).map_err(bad);
            }
            _ => skip(&mut r, len + 4)?,
        }
    }
}

/// The text of an iTXt chunk after its keyword's NUL: compression flag, method, language tag, translated keyword.
fn itxt_text(data: &[u8]) -> std::result::Result<String, String> {
    let malformed = || {
        "has a malformed unclip settings chunk (an iTXt chunk without its fields): the file was changed or made by another program".to_string()
    };
    let [flag, _method, rest @ ..] = data else { return Err(malformed()) };
    if *flag != 0 {
        return Err("has a compressed unclip settings chunk, and unclip writes it uncompressed: the file was changed or made by another program".into());
    }
    let after_language = rest.iter().position(|&b| b == 0).ok_or_else(malformed)? + 1;
    let rest = &rest[after_language..];
    let after_translated = rest.iter().position(|&b| b == 0).ok_or_else(malformed)? + 1;
    String::from_utf8(rest[after_translated..].to_vec()).map_err(|e| {
        format!("has unclip settings that are not UTF-8 text (invalid byte at {}): the file was changed or made by another program, so give the settings as flags instead", e.utf8_error().valid_up_to())
    })
}

fn skip<R: Seek>(r: &mut R, n: u64) -> Result<()> {
    r.seek(SeekFrom::Current(n as i64)).map_err(|e| Error::Settings(format!("could not read the PNG: {e}")))?;
    Ok(())
}

/// The checked settings record of the PNG in `r`, or None when it carries none.
pub fn read_settings<R: Read + Seek>(r: R, file: &str) -> Result<Option<ImageSettings>> {
    read_settings_text(r, file)?.map(|json| ImageSettings::from_json(&json, file)).transpose()
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::image_settings::ModelIdentity;
    use crate::settings::GenerateParams;

    fn settings() -> ImageSettings {
        let model = ModelIdentity { name: "m".into(), version: "1".into(), sha256: "0".repeat(64) };
        ImageSettings::new(&GenerateParams { prompt: "a cat".into(), ..Default::default() }, None, &model, 2, 1)
    }

    #[test]
    fn a_written_png_decodes_and_gives_its_settings_back() {
        let rgba = [1, 2, 3, 255, 4, 5, 6, 255];
        let bytes = encode_png(&rgba, 2, 1, &settings()).unwrap();
        let mut dec = png::Decoder::new(Cursor::new(&bytes)).read_info().unwrap();
        let mut buf = vec![0; dec.output_buffer_size().unwrap()];
        dec.next_frame(&mut buf).unwrap();
        assert_eq!(buf, rgba);
        let texts: Vec<String> = dec.info().utf8_text.iter().map(|t| t.keyword.clone()).collect();
        assert_eq!(texts, ["parameters", "unclip"]);
        assert_eq!(read_settings(Cursor::new(&bytes), "x.png").unwrap(), Some(settings()));
        assert_eq!(encode_png(&rgba, 2, 1, &settings()).unwrap(), bytes, "deterministic");
        // pixels that are not width×height RGBA (the page's gridPng passes them through) are an error, not a panic
        for wrong in [&rgba[..7], &[0; 12][..], &[]] {
            assert!(encode_png(wrong, 2, 1, &settings()).is_err(), "{} bytes", wrong.len());
        }
    }

    #[test]
    fn an_apng_has_every_frame() {
        let frames = vec![vec![0u8; 4], vec![255u8; 4], vec![9u8; 4]];
        let bytes = encode_apng(&frames, 1, 1, 100, &settings()).unwrap();
        let mut dec = png::Decoder::new(Cursor::new(&bytes)).read_info().unwrap();
        assert_eq!(dec.info().animation_control().unwrap().num_frames, 3);
        let mut buf = vec![0; dec.output_buffer_size().unwrap()];
        for f in &frames {
            dec.next_frame(&mut buf).unwrap();
            assert_eq!(&buf, f);
        }
        assert!(read_settings(Cursor::new(&bytes), "a.png").unwrap().is_some());
    }

    #[test]
    fn not_a_png_and_no_chunk() {
        assert!(read_settings(Cursor::new(b"GIF89a"), "x.gif").unwrap_err().to_string().contains("not a PNG"));
        let mut plain = Vec::new();
        let mut w = png::Encoder::new(&mut plain, 1, 1);
        w.set_color(png::ColorType::Rgba);
        w.write_header().unwrap().write_image_data(&[0; 4]).unwrap();
        assert_eq!(read_settings(Cursor::new(&plain), "p.png").unwrap(), None);
    }
}
