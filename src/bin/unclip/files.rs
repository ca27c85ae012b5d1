//! The files the CLI reads and writes: images in, PNGs (with their settings, docs/formats.md "Pictures") and NumPy
//! arrays out. Every file is written whole or not at all ([`write_atomically`]): an interrupted or failed write leaves
//! what the path held before. A path that is not a file (`/dev/null`, a named pipe) is written in place: renaming over
//! it would replace the device by a file, which as root breaks `/dev/null` for every other program on the machine.

use std::path::{Path, PathBuf};

use unclip::image_processor::RgbaImage;
use unclip::image_settings::ImageSettings;
use unclip::{Error, Result};

/// Writes the file at `path` through `write`, which fills `<path>.partial`; only a complete file is renamed into
/// place (on the same file system, one step), and on any error the partial file is removed and `path` untouched.
/// A device or pipe at `path` is opened and written as it is (nothing to keep whole there).
pub fn write_atomically(path: &Path, write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>) -> Result<()> {
    let is_special = std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir());
    if is_special {
        return std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| write(&mut f))
            .map_err(|e| Error::io(path, e));
    }
    let partial = partial_path(path);
    let written = std::fs::File::create(&partial).and_then(|mut f| {
        write(&mut f)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&partial, path)) {
        let _ = std::fs::remove_file(&partial);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// `<path>.partial`, beside `path`.
fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// `bytes` as the file at `path`, atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically(path, |f| std::io::Write::write_all(f, bytes))
}

/// A PNG with `settings` in its chunks (docs/formats.md, "Pictures").
pub fn write_png(path: &Path, rgba: &[u8], w: usize, h: usize, settings: &ImageSettings) -> Result<()> {
    write_bytes(path, &unclip::png_file::encode_png(rgba, w, h, settings)?)
}

/// NumPy .npy v1.0, little-endian float32, C order.
pub fn write_npy(path: &Path, data: &[f32], shape: &[usize]) -> Result<()> {
    write_bytes(path, &npy_bytes(data, shape))
}

fn npy_bytes(data: &[f32], shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}", dims.join(", "));
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data.iter().flat_map(|v| v.to_le_bytes()));
    bytes
}

/// The image file at `path` (PNG), decoded under the engine's size limits.
pub fn read_image(path: &Path) -> Result<RgbaImage> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::Settings(format!("could not read the image {}: {e}", path.display())))?;
    unclip::image_processor::decode_image(std::io::BufReader::new(file), &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("unclip-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_partial() {
        let dir = scratch("failed");
        let path = dir.join("picture.png");
        std::fs::write(&path, b"the old picture").unwrap();
        let failed = write_atomically(&path, |f| {
            std::io::Write::write_all(f, b"half a new pic")?;
            Err(std::io::Error::other("the disk is full"))
        });
        assert!(failed.unwrap_err().to_string().contains("the disk is full"));
        assert_eq!(std::fs::read(&path).unwrap(), b"the old picture");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "the partial file is removed");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_named_pipe_is_written_through_not_replaced_by_a_file() {
        use std::os::unix::fs::FileTypeExt;
        let dir = scratch("fifo");
        let fifo = dir.join("out.png");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success(), "mkfifo");
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        write_bytes(&fifo, b"the picture").unwrap();
        // the old code renamed a file over the pipe (and so, as root, over /dev/null): the reader would never finish
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the pipe is still a pipe");
        assert_eq!(reader.join().unwrap(), b"the picture");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no partial file beside it");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_complete_write_replaces_the_file() {
        let dir = scratch("complete");
        let path = dir.join("image.npy");
        std::fs::write(&path, b"old").unwrap();
        write_npy(&path, &[0.5, 1.0], &[1, 2]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..6], b"\x93NUMPY");
        assert_eq!(bytes.len() % 64, 8, "a header padded to 64 bytes, then two f32");
        assert_eq!(&bytes[bytes.len() - 8..], [0.5f32.to_le_bytes(), 1.0f32.to_le_bytes()].concat());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
