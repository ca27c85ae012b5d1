//! diffusers `UNet2DConditionModel` as the unCLIP decoder uses it (docs/math.md §8): scale-shift resnets,
//! SimpleCrossAttn blocks over [extra image tokens; text tokens], `class_embed_type = "identity"`
//! (text_proj's additive time embedding), 6 output channels (ε̂ and the learned-variance v).

use super::resnet::{ResnetSettings, TimeConditioning};
use super::text_proj::DecoderConditioning;
use super::unet_2d_blocks::{CrossAttnInput, UNetLayout};
use super::unet_core::UNetCore;
use crate::backend::{Activation, Backend, Tensor};
use crate::config::UNet2DConditionConfig;
use crate::error::{Error, Result};
use crate::nn::{mask_bias, Weights};

pub struct UNet2DConditionModel<B: Backend> {
    be: B,
    core: UNetCore<B>,
    pub config: UNet2DConditionConfig,
}

impl<B: Backend> UNet2DConditionModel<B> {
    pub fn new(w: &Weights<B>, config: UNet2DConditionConfig) -> Result<Self> {
        let c = &config;
        let check = |ok: bool, what: String| {
            if ok {
                Ok(())
            } else {
                Err(Error::Model(format!("UNet2DConditionModel: {what} is not supported")))
            }
        };
        check(
            c.class_embed_type.as_deref() == Some("identity"),
            format!("class_embed_type {:?} (unCLIP uses \"identity\")", c.class_embed_type),
        )?;
        check(c.time_embedding_type == "positional", format!("time_embedding_type {}", c.time_embedding_type))?;
        check(c.encoder_hid_dim.is_none(), "encoder_hid_dim".into())?;
        check(c.addition_embed_type.is_none(), "addition_embed_type".into())?;
        check(
            c.time_embedding_act_fn.is_none() && c.timestep_post_act.is_none(),
            "extra time-embedding activations".into(),
        )?;
        check(c.cross_attention_norm.is_none(), "cross_attention_norm".into())?;
        check(
            c.act_fn == "silu" && !c.resnet_skip_time_act && !c.center_input_sample,
            "act_fn/resnet_skip_time_act/center_input_sample other than the defaults".into(),
        )?;
        check(c.conv_in_kernel % 2 == 1 && c.conv_out_kernel % 2 == 1, "even conv kernels".into())?;
        check(
            matches!(c.only_cross_attention, serde_json::Value::Bool(false) | serde_json::Value::Null),
            "only_cross_attention".into(),
        )?;
        check(
            c.mid_block_type.as_deref() == Some("UNetMidBlock2DSimpleCrossAttn"),
            format!("mid_block_type {:?}", c.mid_block_type),
        )?;

        c.check_layout("UNet2DConditionModel")?;
        let boc = &c.block_out_channels;
        let temb = boc[0] * 4;
        let s = ResnetSettings {
            temb_channels: temb,
            groups: c.norm_num_groups,
            eps: c.norm_eps,
            time: TimeConditioning::from_config(&c.resnet_time_scale_shift)?,
            output_scale_factor: c.resnet_out_scale_factor as f32,
        };
        if c.mid_block_scale_factor != 1.0 {
            return Err(Error::Model("UNet2DConditionModel: mid_block_scale_factor ≠ 1 is not supported".into()));
        }
        let head_dim = |i: usize| c.attention_head_dim.get(i);
        let layout = UNetLayout {
            block_out_channels: boc,
            down_block_types: &c.down_block_types,
            up_block_types: &c.up_block_types,
            layers_per_block: c.layers_per_block,
            head_dim: &head_dim,
            cross_attention_dim: c.cross_attention_dim,
            mid_attention: Some(true),
            mid_head_dim: c.attention_head_dim.get(boc.len() - 1),
            mid_attn_groups: c.norm_num_groups,
        };
        Ok(UNet2DConditionModel {
            be: w.backend().clone(),
            core: UNetCore::new(w, &c.unet, (c.conv_in_kernel, c.conv_out_kernel), &layout, s)?,
            config,
        })
    }

    /// sample (N, Cin, H, W); `cond`: text_proj's encoder_hidden_states (N, L, X) and its additive time embedding,
    /// diffusers' `class_labels` (N, T); attention_mask N rows of L → (N, Cout, H, W).
    pub fn forward(
        &self,
        sample: &B::Tensor,
        t: usize,
        cond: &DecoderConditioning<B::Tensor>,
        attention_mask: &[bool],
    ) -> Result<B::Tensor> {
        let n = sample.dim(0);
        let emb = self.core.time_embedding(t, n)?.add(&cond.additive_time_emb)?; // (N, T)
        let emb_act = emb.activation(Activation::Silu)?; // every resnet's time_emb_proj sees silu(emb)
        let bias = mask_bias(&self.be, attention_mask, n)?; // (N, 1, L)
        let ctx = CrossAttnInput { encoder_hidden_states: Some(&cond.encoder_hidden_states), text_bias: Some(&bias) };
        self.core.forward(sample, &emb_act, &ctx)
    }
}
