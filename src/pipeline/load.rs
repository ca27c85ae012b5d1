//! Building a pipeline from a model directory's manifest: each component's GGUF file → its weights → the model
//! of its diffusers class and config; the schedulers; then the check that the components fit together.

use serde::de::DeserializeOwned;

use super::{TextEncoder, UnCLIPPipeline};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::manifest::{Component, FileEntry, Manifest, SchedulerEntry};
use crate::models::*;
use crate::nn::Weights;
use crate::schedulers::{UnCLIPScheduler, UnCLIPSchedulerConfig};
use crate::tokenizer::Tokenizer;

/// `component`'s config, when it is of diffusers class `class`.
fn config<C: DeserializeOwned>(name: &str, component: &Component, class: &str) -> Result<C> {
    if component.class != class {
        return Err(Error::Model(format!("model.json: {name} is a {}, expected {class}", component.class)));
    }
    serde_json::from_value(component.config.clone())
        .map_err(|e| Error::Model(format!("model.json: the {name} config is not a valid {class} config: {e}")))
}

fn scheduler(name: &str, s: &SchedulerEntry) -> Result<UnCLIPScheduler> {
    if s.class != "UnCLIPScheduler" {
        return Err(Error::Model(format!("model.json: {name} is a {}, expected UnCLIPScheduler", s.class)));
    }
    let cfg: UnCLIPSchedulerConfig = serde_json::from_value(s.config.clone()).map_err(|e| {
        Error::Model(format!("model.json: the {name} config is not a valid UnCLIPScheduler config: {e}"))
    })?;
    Ok(UnCLIPScheduler::new(cfg)?)
}

/// Builds components on one backend from the files `open` returns.
struct Loader<'a, B, F> {
    be: &'a B,
    open: F,
}

impl<B: Backend, F: FnMut(&FileEntry) -> Result<Vec<u8>>> Loader<'_, B, F> {
    /// The component `name` of diffusers class `class`: its GGUF file, its weights under `name`, and the model
    /// `new` builds from them and its config.
    fn build<C: DeserializeOwned, M>(
        &mut self,
        name: &str,
        component: &Component,
        class: &str,
        new: impl FnOnce(&Weights<B>, C) -> Result<M>,
    ) -> Result<M> {
        let file = GgufFile::from_bytes((self.open)(&component.weights)?)?;
        new(&Weights::new(&file, self.be, name), config(name, component, class)?)
    }
}

impl<B: Backend> UnCLIPPipeline<B> {
    /// Builds every component. `open` returns the bytes of a file listed in the manifest (already
    /// verified against its hash); it is called once per file.
    pub fn load(be: &B, manifest: Manifest, mut open: impl FnMut(&FileEntry) -> Result<Vec<u8>>) -> Result<Self> {
        let tokenizer = Tokenizer::from_json(&open(&manifest.tokenizer.file)?, manifest.tokenizer.max_length)?;
        let mut load = Loader { be, open };
        let m = &manifest;
        let text_encoder = match m.text_encoder.class.as_str() {
            "BertModel" => {
                TextEncoder::Bert(load.build("text_encoder", &m.text_encoder, "BertModel", BertModel::new)?)
            }
            _ => TextEncoder::Clip(load.build(
                "text_encoder",
                &m.text_encoder,
                "CLIPTextModelWithProjection",
                ClipTextModelWithProjection::new,
            )?),
        };
        let prior = m.prior.as_ref().map(|c| load.build("prior", c, "PriorTransformer", PriorTransformer::new));
        let prior = prior.transpose()?;
        let text_proj = load.build("text_proj", &m.text_proj, "UnCLIPTextProjModel", UnCLIPTextProjModel::new)?;
        let decoder = load.build("decoder", &m.decoder, "UNet2DConditionModel", UNet2DConditionModel::new)?;
        let super_res_first = load.build("super_res_first", &m.super_res_first, "UNet2DModel", UNet2DModel::new)?;
        let super_res_last = load.build("super_res_last", &m.super_res_last, "UNet2DModel", UNet2DModel::new)?;
        let image_encoder = m.image_encoder.as_ref().map(|c| {
            load.build("image_encoder", c, "CLIPVisionModelWithProjection", ClipVisionModelWithProjection::new)
        });
        let pipeline = UnCLIPPipeline {
            be: be.clone(),
            tokenizer,
            text_encoder,
            prior,
            text_proj,
            decoder,
            super_res_first,
            super_res_last,
            image_encoder: image_encoder.transpose()?,
            prior_scheduler: m.prior_scheduler.as_ref().map(|s| scheduler("prior_scheduler", s)).transpose()?,
            decoder_scheduler: scheduler("decoder_scheduler", &m.decoder_scheduler)?,
            super_res_scheduler: scheduler("super_res_scheduler", &m.super_res_scheduler)?,
            manifest,
        };
        pipeline.check_shapes_agree()?;
        Ok(pipeline)
    }

    /// The components must fit together (embedding sizes, token counts, channels).
    fn check_shapes_agree(&self) -> Result<()> {
        let tp = &self.text_proj.config;
        let dc = &self.decoder.config;
        let sr = &self.super_res_first.config;
        let mismatch = |what: String| Err(Error::Model(format!("the model's components do not fit together: {what}")));
        if let Some(prior) = &self.prior {
            if prior.config.num_embeddings != self.tokenizer.max_length() {
                return mismatch(format!(
                    "the prior reads {} text tokens but the tokenizer pads to {}",
                    prior.config.num_embeddings,
                    self.tokenizer.max_length()
                ));
            }
            if tp.clip_embeddings_dim != prior.config.embedding_dim {
                return mismatch(format!(
                    "text_proj takes {}-d embeddings, the prior makes {}-d",
                    tp.clip_embeddings_dim, prior.config.embedding_dim
                ));
            }
        }
        if dc.cross_attention_dim != tp.cross_attention_dim || dc.block_out_channels[0] * 4 != tp.time_embed_dim {
            return mismatch("the decoder's cross_attention_dim / time embedding do not match text_proj".into());
        }
        if sr.in_channels != 2 * dc.in_channels || self.super_res_last.config.in_channels != sr.in_channels {
            return mismatch(format!("super-res takes {} channels, expected 2 × {}", sr.in_channels, dc.in_channels));
        }
        Ok(())
    }
}
