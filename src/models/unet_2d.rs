//! diffusers `UNet2DModel` as the unCLIP super-resolution UNets use it (docs/math.md §10): additive time
//! conditioning, resnet down/up samplers, and a mid block with or without self-attention. The input
//! is cat([noisy sample, upsampled low-res image]).

use super::resnet::{ResnetSettings, TimeConditioning};
use super::unet_2d_blocks::{CrossAttnInput, UNetLayout};
use super::unet_core::UNetCore;
use crate::backend::{Activation, Backend, Tensor};
use crate::config::UNet2DConfig;
use crate::error::{Error, Result};
use crate::nn::Weights;

pub struct UNet2DModel<B: Backend> {
    core: UNetCore<B>,
    pub config: UNet2DConfig,
}

impl<B: Backend> UNet2DModel<B> {
    pub fn new(w: &Weights<B>, config: UNet2DConfig) -> Result<Self> {
        let c = &config;
        let unsupported = |what: String| Err(Error::Model(format!("UNet2DModel: {what} is not supported")));
        if c.class_embed_type.is_some() {
            return unsupported(format!("class_embed_type {:?}", c.class_embed_type));
        }
        if c.time_embedding_type != "positional" || c.act_fn != "silu" || c.center_input_sample {
            return unsupported("time_embedding_type/act_fn/center_input_sample other than the defaults".into());
        }
        if c.mid_block_type.as_deref() != Some("UNetMidBlock2D") {
            return unsupported(format!("mid_block_type {:?}", c.mid_block_type));
        }
        c.check_layout("UNet2DModel")?;
        let boc = &c.block_out_channels;
        let last = boc[boc.len() - 1];
        let temb = boc[0] * 4;
        let time = TimeConditioning::from_config(&c.resnet_time_scale_shift)?;
        let s = ResnetSettings {
            temb_channels: temb,
            groups: c.norm_num_groups,
            eps: c.norm_eps,
            time,
            output_scale_factor: 1.0,
        };
        if c.mid_block_scale_factor != 1.0 {
            return unsupported("mid_block_scale_factor ≠ 1".into());
        }
        // UNetMidBlock2D: attention_head_dim defaults to the channel count; attn groups to the resnet
        // groups when the time conditioning is "default".
        let mid_head_dim = c.attention_head_dim.unwrap_or(last);
        let mid_attn_groups = match (c.attn_norm_num_groups, time) {
            (Some(g), _) => g,
            (None, TimeConditioning::Additive) => c.norm_num_groups,
            (None, TimeConditioning::ScaleShift) => {
                return unsupported("a mid-block attention without group norm".into())
            }
        };
        let no_heads = |_: usize| 1;
        let layout = UNetLayout {
            block_out_channels: boc,
            down_block_types: &c.down_block_types,
            up_block_types: &c.up_block_types,
            layers_per_block: c.layers_per_block,
            head_dim: &no_heads,
            cross_attention_dim: 0,
            mid_attention: c.add_attention.then_some(false),
            mid_head_dim,
            mid_attn_groups,
        };
        Ok(UNet2DModel { core: UNetCore::new(w, &c.unet, (3, 3), &layout, s)?, config })
    }

    /// sample (N, Cin, H, W) → (N, Cout, H, W)
    pub fn forward(&self, sample: &B::Tensor, t: usize) -> Result<B::Tensor> {
        let emb_act = self.core.time_embedding(t, sample.dim(0))?.activation(Activation::Silu)?; // (N, T)
        let ctx = CrossAttnInput { encoder_hidden_states: None, text_bias: None };
        self.core.forward(sample, &emb_act, &ctx)
    }
}
