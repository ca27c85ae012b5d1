//! What diffusers' two UNet classes share (docs/math.md §8.1, §8.4, §10): the sinusoidal time embedding and its
//! `time_embedding` MLP, `conv_in`, the down → mid → up body, and `conv_norm_out` → SiLU → `conv_out`.
//! `UNet2DConditionModel` and `UNet2DModel` add only their checks and conditioning around it.

use super::resnet::ResnetSettings;
use super::unet_2d_blocks::{CrossAttnInput, UNetBody, UNetLayout};
use crate::backend::{Activation, Backend};
use crate::config::UNetCommonConfig;
use crate::error::Result;
use crate::nn::{timestep_embedding, Conv2d, GroupNorm, TimestepEmbedding, Weights};

pub struct UNetCore<B: Backend> {
    be: B,
    time_embedding: TimestepEmbedding<B>,
    conv_in: Conv2d<B>,
    body: UNetBody<B>,
    conv_norm_out: GroupNorm<B>,
    conv_out: Conv2d<B>,
    /// block_out_channels[0]: the sinusoidal embedding's width and conv_in's output channels.
    base_channels: usize,
    flip_sin_to_cos: bool,
    freq_shift: f64,
}

impl<B: Backend> UNetCore<B> {
    /// `s.temb_channels` is the time embedding's width (4 × `block_out_channels[0]` in diffusers); `kernels` are
    /// conv_in's and conv_out's sizes.
    pub fn new(
        w: &Weights<B>,
        c: &UNetCommonConfig,
        kernels: (usize, usize),
        layout: &UNetLayout,
        s: ResnetSettings,
    ) -> Result<Self> {
        let base = layout.block_out_channels[0];
        Ok(UNetCore {
            be: w.backend().clone(),
            time_embedding: TimestepEmbedding::new(&w.pp("time_embedding"), base, s.temb_channels, Activation::Silu)?,
            conv_in: Conv2d::new(&w.pp("conv_in"), c.in_channels, base, kernels.0)?,
            body: UNetBody::new(w, layout, s)?,
            conv_norm_out: GroupNorm::new(&w.pp("conv_norm_out"), s.groups, base, s.eps)?,
            conv_out: Conv2d::new(&w.pp("conv_out"), base, c.out_channels, kernels.1)?,
            base_channels: base,
            flip_sin_to_cos: c.flip_sin_to_cos,
            freq_shift: c.freq_shift,
        })
    }

    /// The time embedding of timestep `t` for a batch of `n`: (n, temb_channels), before any activation.
    pub fn time_embedding(&self, t: usize, n: usize) -> Result<B::Tensor> {
        let one = timestep_embedding(t, self.base_channels, self.flip_sin_to_cos, self.freq_shift);
        let temb = self.be.tensor(one.repeat(n), &[n, self.base_channels])?;
        self.time_embedding.forward(&temb)
    }

    /// sample (N, Cin, H, W), emb_act = silu(time embedding) (N, T) → (N, Cout, H, W).
    pub fn forward(
        &self,
        sample: &B::Tensor,
        emb_act: &B::Tensor,
        ctx: &CrossAttnInput<B::Tensor>,
    ) -> Result<B::Tensor> {
        let h = self.conv_in.forward(sample)?;
        let h = self.body.forward(&h, emb_act, ctx)?;
        self.conv_out.forward(&self.conv_norm_out.forward_act(&h, Activation::Silu)?)
    }
}
