//! diffusers `unet_2d_blocks` used by unCLIP (docs/math.md §8.4): ResnetDownsampleBlock2D,
//! SimpleCrossAttnDownBlock2D, UNetMidBlock2DSimpleCrossAttn, UNetMidBlock2D,
//! SimpleCrossAttnUpBlock2D, ResnetUpsampleBlock2D. A block with `attentions` is the SimpleCrossAttn
//! form; resampling is a resnet with `down=True` / `up=True`.

use super::attention::Attention;
use super::resnet::{Resample, ResnetBlock2D, ResnetSettings};
use crate::backend::{Backend, Tensor};
use crate::error::{Error, Result};
use crate::nn::Weights;

/// What every block's attention sees: the cross-attention tokens and their key bias.
pub struct CrossAttnInput<'a, T> {
    pub encoder_hidden_states: Option<&'a T>,
    pub text_bias: Option<&'a T>,
}

/// How a block's attentions are built.
#[derive(Debug, Clone, Copy)]
pub struct AttnSettings {
    pub head_dim: usize,
    pub cross_attention_dim: usize,
}

impl AttnSettings {
    /// The SimpleCrossAttn attention of a block with `channels` channels.
    fn build<B: Backend>(&self, w: &Weights<B>, channels: usize, s: ResnetSettings) -> Result<Attention<B>> {
        Attention::new(w, channels, self.head_dim, s.groups, s.eps, Some(self.cross_attention_dim))
    }
}

fn is_cross_attn(block_type: &str, allowed: &[&str]) -> Result<bool> {
    if !allowed.contains(&block_type) {
        return Err(Error::Model(format!("block type `{block_type}` is not supported (expected one of {allowed:?})")));
    }
    Ok(block_type.starts_with("SimpleCrossAttn"))
}

/// Which way a block moves through the UNet: a down block pushes every output as a skip connection, an up block
/// concatenates one popped skip onto each resnet's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Down,
    Up,
}

/// diffusers' ResnetDownsampleBlock2D, SimpleCrossAttnDownBlock2D, SimpleCrossAttnUpBlock2D and
/// ResnetUpsampleBlock2D, which differ only in direction and attention: resnet j, then (SimpleCrossAttn) attention
/// j; then the resampling resnet (`downsamplers.0` / `upsamplers.0`), if the block has one.
pub struct UNetBlock2D<B: Backend> {
    direction: Direction,
    resnets: Vec<ResnetBlock2D<B>>,
    attentions: Vec<Attention<B>>,
    sampler: Option<ResnetBlock2D<B>>,
}

impl<B: Backend> UNetBlock2D<B> {
    /// Resnet j maps `in_channels[j]` (an up block's include the skip) to `out_ch`; the sampler keeps `out_ch`.
    #[allow(clippy::too_many_arguments)]
    fn new(
        w: &Weights<B>,
        block_type: &str,
        direction: Direction,
        in_channels: &[usize],
        out_ch: usize,
        add_sampler: bool,
        s: ResnetSettings,
        attn: AttnSettings,
    ) -> Result<Self> {
        let (allowed, sampler_key, resample) = match direction {
            Direction::Down => {
                (["ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"], "downsamplers.0", Resample::Down)
            }
            Direction::Up => (["ResnetUpsampleBlock2D", "SimpleCrossAttnUpBlock2D"], "upsamplers.0", Resample::Up),
        };
        let cross = is_cross_attn(block_type, &allowed)?;
        let mut resnets = Vec::new();
        let mut attentions = Vec::new();
        for (j, &cin) in in_channels.iter().enumerate() {
            resnets.push(ResnetBlock2D::new(&w.pp("resnets").pp(j), cin, out_ch, Resample::None, s)?);
            if cross {
                attentions.push(attn.build(&w.pp("attentions").pp(j), out_ch, s)?);
            }
        }
        let sampler = match add_sampler {
            true => Some(ResnetBlock2D::new(&w.pp(sampler_key), out_ch, out_ch, resample, s)?),
            false => None,
        };
        Ok(UNetBlock2D { direction, resnets, attentions, sampler })
    }

    /// x (N, C, H, W) → (N, out_ch, H', W'); a down block pushes each output onto `skips`, an up block pops one
    /// per resnet.
    pub fn forward(
        &self,
        x: &B::Tensor,
        emb_act: &B::Tensor,
        ctx: &CrossAttnInput<B::Tensor>,
        skips: &mut Vec<B::Tensor>,
    ) -> Result<B::Tensor> {
        let mut h = x.clone();
        for (j, resnet) in self.resnets.iter().enumerate() {
            if self.direction == Direction::Up {
                let skip =
                    skips.pop().ok_or_else(|| Error::Model("UNet skip connections do not match its blocks".into()))?;
                h = B::Tensor::cat(&[&h, &skip], 1)?;
            }
            h = resnet.forward(&h, emb_act)?;
            if let Some(attn) = self.attentions.get(j) {
                h = attn.forward(&h, ctx.encoder_hidden_states, ctx.text_bias)?;
            }
            if self.direction == Direction::Down {
                skips.push(h.clone());
            }
        }
        if let Some(sampler) = &self.sampler {
            h = sampler.forward(&h, emb_act)?;
            if self.direction == Direction::Down {
                skips.push(h.clone());
            }
        }
        Ok(h)
    }
}

/// UNetMidBlock2DSimpleCrossAttn (cross-attention), or UNetMidBlock2D (self-attention or none).
pub struct MidBlock2D<B: Backend> {
    resnet_0: ResnetBlock2D<B>,
    attention: Option<Attention<B>>,
    resnet_1: ResnetBlock2D<B>,
}

impl<B: Backend> MidBlock2D<B> {
    /// `attn`: None = no attention; Some((settings, cross)) = SimpleCrossAttn when `cross`.
    pub fn new(
        w: &Weights<B>,
        channels: usize,
        s: ResnetSettings,
        attn: Option<(AttnSettings, bool)>,
        attn_groups: usize,
    ) -> Result<Self> {
        let attention = match attn {
            None => None,
            Some((a, cross)) => Some(Attention::new(
                &w.pp("attentions.0"),
                channels,
                a.head_dim,
                attn_groups,
                s.eps,
                cross.then_some(a.cross_attention_dim),
            )?),
        };
        Ok(MidBlock2D {
            resnet_0: ResnetBlock2D::new(&w.pp("resnets.0"), channels, channels, Resample::None, s)?,
            attention,
            resnet_1: ResnetBlock2D::new(&w.pp("resnets.1"), channels, channels, Resample::None, s)?,
        })
    }

    pub fn forward(&self, x: &B::Tensor, emb_act: &B::Tensor, ctx: &CrossAttnInput<B::Tensor>) -> Result<B::Tensor> {
        let mut h = self.resnet_0.forward(x, emb_act)?;
        if let Some(attn) = &self.attention {
            h = attn.forward(&h, ctx.encoder_hidden_states, ctx.text_bias)?;
        }
        self.resnet_1.forward(&h, emb_act)
    }
}

/// The down → mid → up body both UNets share, with diffusers' channel bookkeeping.
pub struct UNetBody<B: Backend> {
    down_blocks: Vec<UNetBlock2D<B>>,
    mid_block: MidBlock2D<B>,
    up_blocks: Vec<UNetBlock2D<B>>,
}

/// The layout of a UNet body, read from its config.
pub struct UNetLayout<'a> {
    pub block_out_channels: &'a [usize],
    pub down_block_types: &'a [String],
    pub up_block_types: &'a [String],
    pub layers_per_block: usize,
    /// attention_head_dim of block i (the up blocks index it un-reversed, as diffusers does).
    pub head_dim: &'a dyn Fn(usize) -> usize,
    pub cross_attention_dim: usize,
    /// Mid-block attention: None, or Some(cross) for SimpleCrossAttn (true) / self-attention (false).
    pub mid_attention: Option<bool>,
    pub mid_head_dim: usize,
    pub mid_attn_groups: usize,
}

impl<B: Backend> UNetBody<B> {
    pub fn new(w: &Weights<B>, l: &UNetLayout, s: ResnetSettings) -> Result<Self> {
        let boc = l.block_out_channels;
        let n = boc.len();
        if n == 0 || l.down_block_types.len() != n || l.up_block_types.len() != n {
            return Err(Error::Model(format!(
                "the UNet config has {} block_out_channels, {} down blocks and {} up blocks; they must match",
                n,
                l.down_block_types.len(),
                l.up_block_types.len()
            )));
        }
        let attn = |i: usize| AttnSettings { head_dim: (l.head_dim)(i), cross_attention_dim: l.cross_attention_dim };
        let mut down_blocks = Vec::new();
        let mut out_ch = boc[0];
        for (i, bt) in l.down_block_types.iter().enumerate() {
            let in_ch = out_ch;
            out_ch = boc[i];
            let bw = w.pp("down_blocks").pp(i);
            let cins: Vec<usize> = (0..l.layers_per_block).map(|j| if j == 0 { in_ch } else { out_ch }).collect();
            down_blocks.push(UNetBlock2D::new(&bw, bt, Direction::Down, &cins, out_ch, i + 1 < n, s, attn(i))?);
        }
        let mid_attn = l.mid_attention.map(|cross| {
            (AttnSettings { head_dim: l.mid_head_dim, cross_attention_dim: l.cross_attention_dim }, cross)
        });
        let mid_block = MidBlock2D::new(&w.pp("mid_block"), boc[n - 1], s, mid_attn, l.mid_attn_groups)?;
        let rev: Vec<usize> = boc.iter().rev().copied().collect();
        let mut up_blocks = Vec::new();
        let mut out_ch = rev[0];
        for (i, bt) in l.up_block_types.iter().enumerate() {
            let prev_out = out_ch;
            out_ch = rev[i];
            let in_ch = rev[(i + 1).min(n - 1)];
            let bw = w.pp("up_blocks").pp(i);
            // diffusers' bookkeeping: resnet j takes (j == 0 ? prev_out : out) channels plus a skip, which has
            // `in_ch` channels for the last resnet and `out_ch` for the others
            let layers = l.layers_per_block + 1;
            let cins: Vec<usize> = (0..layers)
                .map(|j| {
                    let skip = if j == layers - 1 { in_ch } else { out_ch };
                    let cin = if j == 0 { prev_out } else { out_ch };
                    cin + skip
                })
                .collect();
            up_blocks.push(UNetBlock2D::new(&bw, bt, Direction::Up, &cins, out_ch, i + 1 < n, s, attn(i))?);
        }
        Ok(UNetBody { down_blocks, mid_block, up_blocks })
    }

    /// h = conv_in output (N, C0, H, W) → (N, C0, H, W) before conv_norm_out.
    pub fn forward(&self, h: &B::Tensor, emb_act: &B::Tensor, ctx: &CrossAttnInput<B::Tensor>) -> Result<B::Tensor> {
        let mut skips = vec![h.clone()];
        let mut h = h.clone();
        for block in &self.down_blocks {
            h = block.forward(&h, emb_act, ctx, &mut skips)?;
        }
        h = self.mid_block.forward(&h, emb_act, ctx)?;
        for block in &self.up_blocks {
            h = block.forward(&h, emb_act, ctx, &mut skips)?;
        }
        Ok(h)
    }
}
