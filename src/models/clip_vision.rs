//! transformers `CLIPVisionModelWithProjection`: patch embedding + class token, pre-LN ViT (the CLIP
//! encoder layers of the text tower, without a mask), the class token through `post_layernorm`,
//! projected without bias. The image tower of image variations (DALL·E 2 §3 "variations").

use super::clip_text::ClipEncoderLayer;
use crate::backend::{Activation, Backend, Tensor};
use crate::config::ClipVisionConfig;
use crate::error::{Error, Result};
use crate::nn::{LayerNorm, Linear, Weights};

pub struct ClipVisionModelWithProjection<B: Backend> {
    /// The stride-p patch convolution as a (D, C·p·p) matrix over flattened patches.
    patch_embedding: Linear<B>,
    class_embedding: B::Tensor,
    position_embedding: B::Tensor,
    pre_layrnorm: LayerNorm<B>,
    layers: Vec<ClipEncoderLayer<B>>,
    post_layernorm: LayerNorm<B>,
    visual_projection: Linear<B>,
    pub config: ClipVisionConfig,
}

impl<B: Backend> ClipVisionModelWithProjection<B> {
    pub fn new(w: &Weights<B>, config: ClipVisionConfig) -> Result<Self> {
        let c = &config;
        if c.patch_size == 0 || !c.image_size.is_multiple_of(c.patch_size) {
            return Err(Error::Model(format!(
                "image_size {} is not a multiple of patch_size {}",
                c.image_size, c.patch_size
            )));
        }
        let d = c.hidden_size;
        let patches = (c.image_size / c.patch_size).pow(2);
        let vm = w.pp("vision_model");
        let emb = vm.pp("embeddings");
        let act = Activation::from_name(&c.hidden_act)?;
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                ClipEncoderLayer::new(
                    &vm.pp("encoder.layers").pp(i),
                    d,
                    c.intermediate_size,
                    c.num_attention_heads,
                    c.layer_norm_eps,
                    act,
                )
            })
            .collect::<Result<_>>()?;
        Ok(ClipVisionModelWithProjection {
            patch_embedding: Linear::from_kernel(
                &emb.pp("patch_embedding"),
                &[d, c.num_channels, c.patch_size, c.patch_size],
            )?,
            class_embedding: emb.tensor("class_embedding", &[d])?.reshape(&[1, 1, d])?,
            position_embedding: emb.tensor("position_embedding.weight", &[patches + 1, d])?,
            pre_layrnorm: LayerNorm::new(&vm.pp("pre_layrnorm"), d, c.layer_norm_eps)?,
            layers,
            post_layernorm: LayerNorm::new(&vm.pp("post_layernorm"), d, c.layer_norm_eps)?,
            visual_projection: Linear::no_bias(&w.pp("visual_projection"), d, c.projection_dim)?,
            config,
        })
    }

    /// pixel_values (N, C, S, S), already normalised as the image processor does → image_embeds (N, P).
    pub fn forward(&self, pixel_values: &B::Tensor) -> Result<B::Tensor> {
        let c = &self.config;
        let (n, ch, s) = (pixel_values.dim(0), c.num_channels, c.image_size);
        if pixel_values.dims() != [n, ch, s, s] {
            return Err(Error::Settings(format!(
                "the image tower takes {ch}×{s}×{s} images, got {:?}",
                pixel_values.dims()
            )));
        }
        let (p, g, d) = (c.patch_size, s / c.patch_size, c.hidden_size);
        // (N, C, g·p, g·p) → (N, g, g, C, p, p) → (N, g², C·p²): one row per patch, in conv-kernel order
        let patches = pixel_values
            .reshape(&[n, ch, g, p, g, p])?
            .transpose(1, 2)?
            .transpose(2, 4)?
            .transpose(3, 4)?
            .reshape(&[n, g * g, ch * p * p])?;
        let tokens = self.patch_embedding.forward(&patches)?; // (N, g², D)
        let class = B::Tensor::cat(&vec![&self.class_embedding; n], 0)?; // (N, 1, D)
        let x = B::Tensor::cat(&[&class, &tokens], 1)?.add(&self.position_embedding)?;
        let mut x = self.pre_layrnorm.forward(&x)?;
        for layer in &self.layers {
            x = layer.forward(&x, None)?;
        }
        let pooled = self.post_layernorm.forward(&x.narrow(1, 0, 1)?.reshape(&[n, d])?)?;
        self.visual_projection.forward(&pooled)
    }
}
