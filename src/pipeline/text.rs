//! Stage 1, text (docs/math.md §4): the prompt and the unconditional caption → tokens → the text encoder's
//! embeddings (N, E) and hidden states (N, L, E), [uncond; cond] under classifier-free guidance.

use super::{emit, Event, Observer, Silent, Stage, UnCLIPPipeline};
use crate::backend::{Backend, Tensor};
use crate::error::Result;
use crate::models::*;
use crate::time::now_ms;
use crate::tokenizer::Tokens;

pub enum TextEncoder<B: Backend> {
    Clip(ClipTextModelWithProjection<B>),
    Bert(BertModel<B>),
}

impl<B: Backend> TextEncoder<B> {
    /// N prompts' tokens → text embeddings (N, E) and hidden states (N, L, E).
    pub fn encode(&self, tokens: &[&Tokens]) -> Result<TextEncoding<B::Tensor>> {
        let ids: Vec<u32> = tokens.iter().flat_map(|t| t.ids.iter().copied()).collect();
        match self {
            TextEncoder::Clip(m) => m.forward(&ids, tokens.len()),
            TextEncoder::Bert(m) => {
                let mask: Vec<bool> = tokens.iter().flat_map(|t| t.mask.iter().copied()).collect();
                m.forward(&ids, &mask, tokens.len())
            }
        }
    }
}

/// What the text encoder gives the prior and the decoder: [uncond; cond] under CFG, and their masks.
pub struct TextConditioning<T> {
    pub encoding: TextEncoding<T>,
    /// (rows · L) token masks.
    pub mask: Vec<bool>,
    pub do_cfg: bool,
}

/// What the page and the CLI say when a prompt is cut to the text encoder's length: diffusers'
/// `UnCLIPPipeline._encode_prompt` warning, naming the same text.
pub fn truncation_warning(max_length: usize, dropped: &str) -> String {
    format!("the text encoder reads at most {max_length} tokens, so this part of the prompt was dropped: \"{dropped}\"")
}

impl<B: Backend> UnCLIPPipeline<B> {
    /// [uncond; cond] under CFG. The unconditional caption is `negative_prompt`, "" in diffusers'
    /// UnCLIPPipeline (a negative prompt steers both guided stages away from it).
    pub async fn encode_text<O: Observer<B::Tensor>>(
        &self,
        prompt: &str,
        negative_prompt: &str,
        do_cfg: bool,
        obs: &mut O,
    ) -> Result<TextConditioning<B::Tensor>> {
        let start = now_ms();
        emit!(obs, Event::StageStart { stage: Stage::Text, steps: 1 });
        let cond = self.tokenizer.encode(prompt)?;
        let uncond = self.tokenizer.encode(if do_cfg { negative_prompt } else { "" })?;
        for dropped in [&cond.dropped, &uncond.dropped].into_iter().flatten() {
            emit!(obs, Event::Warning(truncation_warning(self.tokenizer.max_length(), dropped)));
        }
        let tokens: Vec<&Tokens> = if do_cfg { vec![&uncond, &cond] } else { vec![&cond] };
        let encoding = self.text_encoder.encode(&tokens)?;
        let mask: Vec<bool> = tokens.iter().flat_map(|t| t.mask.iter().copied()).collect();
        emit!(obs, Event::TextEncoded { text_embeds: &encoding.text_embeds });
        emit!(obs, Event::StageEnd { stage: Stage::Text, elapsed_ms: now_ms() - start });
        Ok(TextConditioning { encoding, mask, do_cfg })
    }

    /// The text embedding z_t of a prompt (the text encoder's pooled output), the space text diffs
    /// are taken in.
    pub async fn text_embedding(&self, prompt: &str) -> Result<Vec<f32>> {
        let text = self.encode_text(prompt, "", false, &mut Silent).await?;
        text.encoding.text_embeds.to_vec().await
    }
}
