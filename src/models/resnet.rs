//! diffusers `ResnetBlock2D` (docs/math.md §8.2) with the unCLIP options: scale-shift or additive time
//! conditioning, and resampling inside the block (avg-pool down / nearest up on both branches).

use crate::backend::{Activation, Backend, Tensor};
use crate::error::Result;
use crate::nn::{Conv2d, GroupNorm, Linear, Weights};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    None,
    /// `down=True`: AvgPool2d(2) on both branches.
    Down,
    /// `up=True`: nearest 2× on both branches.
    Up,
}

/// How the time embedding enters (`resnet_time_scale_shift`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeConditioning {
    /// "default": GN(h + t)
    Additive,
    /// "scale_shift": GN(h)·(1 + s) + b
    ScaleShift,
}

impl TimeConditioning {
    pub fn from_config(name: &str) -> Result<Self> {
        match name {
            "default" => Ok(TimeConditioning::Additive),
            "scale_shift" => Ok(TimeConditioning::ScaleShift),
            other => Err(crate::Error::Model(format!(
                "resnet_time_scale_shift `{other}` is not supported (expected default or scale_shift)"
            ))),
        }
    }
}

/// Settings every resnet of a UNet shares.
#[derive(Debug, Clone, Copy)]
pub struct ResnetSettings {
    pub temb_channels: usize,
    pub groups: usize,
    pub eps: f64,
    pub time: TimeConditioning,
    pub output_scale_factor: f32,
}

pub struct ResnetBlock2D<B: Backend> {
    norm1: GroupNorm<B>,
    conv1: Conv2d<B>,
    time_emb_proj: Linear<B>,
    norm2: GroupNorm<B>,
    conv2: Conv2d<B>,
    conv_shortcut: Option<Conv2d<B>>,
    out_channels: usize,
    resample: Resample,
    s: ResnetSettings,
}

impl<B: Backend> ResnetBlock2D<B> {
    pub fn new(w: &Weights<B>, in_ch: usize, out_ch: usize, resample: Resample, s: ResnetSettings) -> Result<Self> {
        let temb_out = if s.time == TimeConditioning::ScaleShift { 2 * out_ch } else { out_ch };
        Ok(ResnetBlock2D {
            norm1: GroupNorm::new(&w.pp("norm1"), s.groups, in_ch, s.eps)?,
            conv1: Conv2d::new(&w.pp("conv1"), in_ch, out_ch, 3)?,
            time_emb_proj: Linear::new(&w.pp("time_emb_proj"), s.temb_channels, temb_out)?,
            norm2: GroupNorm::new(&w.pp("norm2"), s.groups, out_ch, s.eps)?,
            conv2: Conv2d::new(&w.pp("conv2"), out_ch, out_ch, 3)?,
            conv_shortcut: if in_ch != out_ch {
                Some(Conv2d::new(&w.pp("conv_shortcut"), in_ch, out_ch, 1)?)
            } else {
                None
            },
            out_channels: out_ch,
            resample,
            s,
        })
    }

    /// x (N, Cin, H, W), emb_act = silu(emb) (N, T) → (N, Cout, H', W')
    pub fn forward(&self, x: &B::Tensor, emb_act: &B::Tensor) -> Result<B::Tensor> {
        let n = x.dim(0);
        let mut h = self.norm1.forward_act(x, Activation::Silu)?;
        let mut x = x.clone();
        match self.resample {
            Resample::None => {}
            Resample::Down => (x, h) = (x.avg_pool2x2()?, h.avg_pool2x2()?),
            Resample::Up => (x, h) = (x.upsample_nearest2x()?, h.upsample_nearest2x()?),
        }
        let h = self.conv1.forward(&h)?;
        let t = self.time_emb_proj.forward(emb_act)?; // (N, T')
        let c = self.out_channels;
        let h = match self.s.time {
            TimeConditioning::Additive => {
                let t = t.reshape(&[n, c, 1, 1])?;
                self.norm2.forward_act(&h.add(&t)?, Activation::Silu)?
            }
            TimeConditioning::ScaleShift => {
                let scale = t.narrow(1, 0, c)?.affine(1.0, 1.0)?; // (N, C)
                let shift = t.narrow(1, c, c)?;
                self.norm2.forward_modulated(&h, (&scale, &shift), Activation::Silu)?
            }
        };
        let h = self.conv2.forward(&h)?; // dropout is the identity at inference
        let x = match &self.conv_shortcut {
            Some(conv) => conv.forward(&x)?,
            None => x,
        };
        let out = x.add(&h)?;
        if self.s.output_scale_factor == 1.0 {
            Ok(out)
        } else {
            out.affine(1.0 / self.s.output_scale_factor, 0.0)
        }
    }
}
