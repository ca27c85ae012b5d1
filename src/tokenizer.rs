//! The prompt tokenizer: a HuggingFace `tokenizer.json` (CLIP byte-level BPE for Karlo, WordPiece for
//! the MiniLM text encoder) run by the `tokenizers` crate, always padded and truncated to the fixed
//! length the text encoder and prior were built for (docs/math.md §2).

use tokenizers::{PaddingParams, PaddingStrategy, TruncationParams};

use crate::error::{Error, Result};

/// Prompts longer than this are refused before tokenizing (a guard against absurd input; diffusers itself
/// has none): tokenizing 100k characters takes milliseconds, and the encoder reads only its first
/// `max_length` tokens of any prompt anyway.
pub const MAX_PROMPT_CHARS: usize = 100_000;

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// The same tokenizer without truncation: what diffusers runs to name the dropped text.
    untruncated: tokenizers::Tokenizer,
    max_length: usize,
}

/// One tokenized prompt, padded to `max_length`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokens {
    pub ids: Vec<u32>,
    /// true for real tokens (incl. BOS/EOS), false for padding.
    pub mask: Vec<bool>,
    /// The text cut off when the prompt had more tokens than fit, as diffusers' `UnCLIPPipeline` names it in
    /// its warning (`batch_decode(untruncated_ids[:, max_length - 1 : -1])`); `None` when all of it fit.
    pub dropped: Option<String>,
}

impl Tokenizer {
    /// Parses `tokenizer.json`. Padding is forced to `Fixed(max_length)` (keeping the file's pad
    /// token, or `[PAD]`/id 0 when it has none) and truncation to `max_length`.
    pub fn from_json(json: &[u8], max_length: usize) -> Result<Self> {
        let mut inner = tokenizers::Tokenizer::from_bytes(json)
            .map_err(|e| Error::Tokenizer(format!("tokenizer.json could not be parsed: {e}")))?;
        let mut padding = inner.get_padding().cloned().unwrap_or_else(|| {
            let pad_token = ["[PAD]", "<pad>", "<|endoftext|>"]
                .into_iter()
                .find(|t| inner.token_to_id(t).is_some())
                .unwrap_or("[PAD]");
            PaddingParams {
                pad_id: inner.token_to_id(pad_token).unwrap_or(0),
                pad_token: pad_token.into(),
                ..Default::default()
            }
        });
        padding.strategy = PaddingStrategy::Fixed(max_length);
        inner.with_padding(Some(padding));
        let mut untruncated = inner.clone();
        untruncated.with_truncation(None).expect("removing truncation cannot fail");
        inner
            .with_truncation(Some(TruncationParams { max_length, ..Default::default() }))
            .map_err(|e| Error::Tokenizer(format!("cannot truncate to {max_length} tokens: {e}")))?;
        Ok(Tokenizer { inner, untruncated, max_length })
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Tokenizes one prompt ("" gives the unconditional prompt: BOS, EOS, padding). A prompt longer than
    /// `max_length` tokens keeps its first `max_length - 2` and its end is named in `dropped`, as diffusers does.
    pub fn encode(&self, text: &str) -> Result<Tokens> {
        if text.chars().count() > MAX_PROMPT_CHARS {
            return Err(Error::Settings(format!(
                "the prompt is {} characters long; at most {MAX_PROMPT_CHARS} are accepted (the text encoder reads only its first {} tokens)",
                text.chars().count(),
                self.max_length
            )));
        }
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|e| Error::Tokenizer(format!("the prompt could not be tokenized: {e}")))?;
        let dropped = if enc.get_overflowing().is_empty() { None } else { Some(self.dropped_text(text)?) };
        Ok(Tokens {
            ids: enc.get_ids().to_vec(),
            mask: enc.get_attention_mask().iter().map(|&m| m == 1).collect(),
            dropped,
        })
    }

    /// diffusers' `removed_text`: the untruncated ids after the first `max_length - 1` (BOS + the kept
    /// tokens), less the final EOS, decoded. CLIP's BPE marks word ends with `</w>`, which its decode turns
    /// into spaces.
    fn dropped_text(&self, text: &str) -> Result<String> {
        let all = self
            .untruncated
            .encode(text, true)
            .map_err(|e| Error::Tokenizer(format!("the prompt could not be tokenized: {e}")))?;
        let ids = all.get_ids();
        let cut = &ids[(self.max_length - 1).min(ids.len())..ids.len().saturating_sub(1)];
        let decoded = self
            .untruncated
            .decode(cut, false)
            .map_err(|e| Error::Tokenizer(format!("the dropped tokens could not be decoded: {e}")))?;
        Ok(decoded.replace("</w>", " ").split_whitespace().collect::<Vec<_>>().join(" "))
    }
}
