//! Image embeddings outside a generation (DALL·E 2 §3, the remix features): a prompt's through the text encoder
//! and the prior, exactly the one `generate` decodes; an image's through the checkpoint's image processor and
//! image tower.

use super::{Observer, UnCLIPPipeline};
use crate::backend::{Backend, Tensor};
use crate::error::{Error, Result};
use crate::image_processor::{ClipImageProcessorConfig, RgbaImage};
use crate::latent;
use crate::rng::TorchGenerator;
use crate::settings::GenerateParams;

impl<B: Backend> UnCLIPPipeline<B> {
    /// A prompt → an image embedding through the text encoder and the prior, exactly the one
    /// `generate(p)` decodes (same seed, steps, guidance and best-of).
    pub async fn embed_prompt<O: Observer<B::Tensor>>(&self, p: &GenerateParams, obs: &mut O) -> Result<Vec<f32>> {
        p.validate()?;
        let mut rng = TorchGenerator::new(p.seed);
        let text = self.encode_text(&p.prompt, &p.negative_prompt, p.do_classifier_free_guidance(), obs).await?;
        self.sample_prior(p, &text, &mut rng, obs).await?.embedding.to_vec().await
    }

    /// An image → its image embedding: the checkpoint's image processor, the image tower
    /// (`CLIPVisionModelWithProjection`), and L2 normalisation where the model was trained on it.
    pub async fn embed_image(&self, image: &RgbaImage) -> Result<Vec<f32>> {
        let Some(tower) = &self.image_encoder else {
            return Err(Error::Model(format!(
                "{} has no image encoder, so it cannot turn an image into an embedding: image variations need a model converted with an image_encoder folder (an UnCLIP image-variation checkpoint or unclip-emoji)",
                self.manifest.name
            )));
        };
        let Some(processor) = &self.manifest.image_processor else {
            return Err(Error::Model(
                "model.json lists an image encoder but no image_processor: convert the model again with this version of `unclip convert`".into(),
            ));
        };
        let config: ClipImageProcessorConfig = serde_json::from_value(processor.config.clone())
            .map_err(|e| Error::Model(format!("model.json: the image_processor config is not valid: {e}")))?;
        let (e, s) = (self.embedding_dim(), tower.config.image_size);
        if tower.config.projection_dim != e {
            return Err(Error::Model(format!(
                "the image encoder makes {}-d embeddings but the decoder is conditioned on {e}-d ones: they are not from one model",
                tower.config.projection_dim
            )));
        }
        let pixels = self.backend().tensor(config.preprocess(image, s)?, &[1, 3, s, s])?;
        let embedding = tower.forward(&pixels)?.to_vec().await?; // (1, E)
        if processor.normalize_embeddings {
            latent::normalize(&embedding)
        } else {
            Ok(embedding)
        }
    }
}
