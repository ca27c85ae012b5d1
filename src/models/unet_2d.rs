//! diffusers `UNet2DModel` as the unCLIP super-resolution UNets use it (spec §10): additive time
//! conditioning, resnet down/up samplers, and a mid block with or without self-attention. The input
//! is cat([noisy sample, upsampled low-res image]).

use super::resnet::{ResnetSettings, TimeConditioning};
use super::unet_2d_blocks::{CrossAttnInput, UNetBody, UNetLayout};
use crate::backend::{Activation, Backend, Tensor};
use crate::config::UNet2DConfig;
use crate::error::{Error, Result};
use crate::nn::{timestep_embedding, Conv2d, GroupNorm, TimestepEmbedding, Weights};

pub struct UNet2DModel<B: Backend> {
    be: B,
    time_embedding: TimestepEmbedding<B>,
    conv_in: Conv2d<B>,
    body: UNetBody<B>,
    conv_norm_out: GroupNorm<B>,
    conv_out: Conv2d<B>,
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
        crate::config::check_unet_layout(
            "UNet2DModel",
            &c.block_out_channels,
            c.down_block_types.len(),
            c.up_block_types.len(),
            c.layers_per_block,
            c.sample_size,
        )?;
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
        Ok(UNet2DModel {
            be: w.backend().clone(),
            time_embedding: TimestepEmbedding::new(&w.pp("time_embedding"), boc[0], temb, Activation::Silu)?,
            conv_in: Conv2d::new(&w.pp("conv_in"), c.in_channels, boc[0], 3)?,
            body: UNetBody::new(w, &layout, s)?,
            conv_norm_out: GroupNorm::new(&w.pp("conv_norm_out"), c.norm_num_groups, boc[0], c.norm_eps)?,
            conv_out: Conv2d::new(&w.pp("conv_out"), boc[0], c.out_channels, 3)?,
            config,
        })
    }

    /// sample (N, Cin, H, W) → (N, Cout, H, W)
    pub fn forward(&self, sample: &B::Tensor, t: usize) -> Result<B::Tensor> {
        let c = &self.config;
        let n = sample.dim(0);
        let temb: Vec<f32> = (0..n)
            .flat_map(|_| timestep_embedding(t, c.block_out_channels[0], c.flip_sin_to_cos, c.freq_shift))
            .collect();
        let temb = self.be.tensor(temb, &[n, c.block_out_channels[0]])?;
        let emb_act = self.time_embedding.forward(&temb)?.activation(Activation::Silu)?;
        let ctx = CrossAttnInput { encoder_hidden_states: None, text_bias: None };
        let h = self.conv_in.forward(sample)?;
        let h = self.body.forward(&h, &emb_act, &ctx)?;
        self.conv_out.forward(&self.conv_norm_out.forward_act(&h, Activation::Silu)?)
    }
}
