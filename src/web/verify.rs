//! Downloads, checked as they arrive: a [`FileVerifier`] per model file (byte count, SHA-256, the GGUF header),
//! and model.json's summary for the page.

use serde::Serialize;
use sha2::{Digest, Sha256};
use wasm_bindgen::prelude::*;

use super::{from_js, js_error, to_js, JsResult};
use crate::gguf::HeaderStream;
use crate::manifest::{Attribution, FileEntry, Manifest, Recommended};
use crate::Error;

/// Checks one file while it downloads: byte count, SHA-256, and (for .gguf) the header, parsed as
/// soon as enough bytes have arrived.
#[wasm_bindgen]
pub struct FileVerifier {
    entry: FileEntry,
    hasher: Sha256,
    received: u64,
    /// The GGUF header as it arrives (None for files that are not GGUF).
    header: Option<HeaderStream>,
}

#[wasm_bindgen]
impl FileVerifier {
    /// `entry`: {file, bytes, sha256} from model.json.
    #[wasm_bindgen(constructor)]
    pub fn new(entry: JsValue) -> JsResult<FileVerifier> {
        let entry: FileEntry = from_js(entry)?;
        let gguf = entry.file.ends_with(".gguf");
        Ok(FileVerifier { entry, hasher: Sha256::new(), received: 0, header: gguf.then(HeaderStream::new) })
    }

    /// Feeds the next chunk. Errors as soon as the file is known to be wrong (too long, not GGUF).
    pub fn push(&mut self, chunk: &[u8]) -> JsResult<()> {
        self.received += chunk.len() as u64;
        if self.received > self.entry.bytes {
            return Err(js_error(Error::SizeMismatch(format!(
                "{} is longer than the {} bytes model.json lists: the server sent another file",
                self.entry.file, self.entry.bytes
            ))));
        }
        self.hasher.update(chunk);
        match &mut self.header {
            Some(header) => header.push(chunk).map_err(|e| header_error(&self.entry, e)),
            None => Ok(()),
        }
    }

    /// Tensors in the GGUF header, once it has been parsed.
    #[wasm_bindgen(getter)]
    pub fn tensors(&self) -> Option<usize> {
        self.header.as_ref()?.header().map(|h| h.tensors.len())
    }

    /// Checks the complete file's size and hash.
    pub fn finish(&mut self) -> JsResult<()> {
        if self.received != self.entry.bytes {
            return Err(js_error(Error::SizeMismatch(format!(
                "{} stopped after {} of {} bytes: the download was cut off",
                self.entry.file, self.received, self.entry.bytes
            ))));
        }
        if let Some(header) = &mut self.header {
            header.finish().map_err(|e| header_error(&self.entry, e))?;
        }
        let got: String = self.hasher.finalize_reset().iter().map(|b| format!("{b:02x}")).collect();
        if !got.eq_ignore_ascii_case(&self.entry.sha256) {
            return Err(js_error(Error::HashMismatch(format!(
                "model.json lists {} with sha256 {}…, the download hashed to {}…",
                self.entry.file,
                &self.entry.sha256[..12.min(self.entry.sha256.len())],
                &got[..12]
            ))));
        }
        Ok(())
    }
}

/// A GGUF header that does not parse, named by its file.
fn header_error(entry: &FileEntry, e: crate::gguf::GgufError) -> JsValue {
    js_error(Error::Weights(format!("{}: {e}", entry.file)))
}

/// model.json as the page shows it, with the files to fetch.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ManifestSummary<'a> {
    name: &'a str,
    version: &'a str,
    license: &'a str,
    attribution: &'a [Attribution],
    /// The settings the model recommends over diffusers' defaults (the page fills its form with them).
    recommended: &'a Recommended,
    files: Vec<&'a FileEntry>,
    total_bytes: f64,
}

/// Validates model.json and returns it with the list of files to fetch.
#[wasm_bindgen(js_name = parseManifest)]
pub fn parse_manifest(json: &str) -> JsResult<JsValue> {
    let m = Manifest::from_json(json.as_bytes()).map_err(js_error)?;
    to_js(&ManifestSummary {
        name: &m.name,
        version: &m.version,
        license: &m.license,
        attribution: &m.attribution,
        recommended: &m.recommended,
        files: m.files(),
        total_bytes: m.total_bytes() as f64,
    })
}
