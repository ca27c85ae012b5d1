//! diffusers `Attention` over a feature map, in the two forms unCLIP's UNets use (docs/math.md §8.3, §10):
//! added-KV cross-attention (`AttnAddedKVProcessor`, SimpleCrossAttn blocks: keys are the text tokens
//! followed by the image tokens) and plain self-attention (`AttnProcessor`, UNetMidBlock2D).

use crate::backend::{Backend, Tensor};
use crate::error::Result;
use crate::nn::{GroupNorm, Linear, Weights};

pub struct Attention<B: Backend> {
    be: B,
    group_norm: GroupNorm<B>,
    to_q: Linear<B>,
    to_k: Linear<B>,
    to_v: Linear<B>,
    /// `add_k_proj` / `add_v_proj` from the cross-attention tokens, when `added_kv_proj_dim` is set.
    add_kv: Option<(Linear<B>, Linear<B>)>,
    to_out: Linear<B>,
    heads: usize,
}

impl<B: Backend> Attention<B> {
    /// `channels` = query_dim; `head_dim` = attention_head_dim; `added_kv_dim` = cross_attention_dim
    /// for the SimpleCrossAttn form, None for plain self-attention.
    pub fn new(
        w: &Weights<B>,
        channels: usize,
        head_dim: usize,
        groups: usize,
        eps: f64,
        added_kv_dim: Option<usize>,
    ) -> Result<Self> {
        if head_dim == 0 || !channels.is_multiple_of(head_dim) {
            return Err(crate::Error::Model(format!(
                "attention over {channels} channels cannot use heads of {head_dim}"
            )));
        }
        let c = channels;
        let add_kv = match added_kv_dim {
            Some(x) => Some((Linear::new(&w.pp("add_k_proj"), x, c)?, Linear::new(&w.pp("add_v_proj"), x, c)?)),
            None => None,
        };
        Ok(Attention {
            be: w.backend().clone(),
            group_norm: GroupNorm::new(&w.pp("group_norm"), groups, c, eps)?,
            to_q: Linear::new(&w.pp("to_q"), c, c)?,
            to_k: Linear::new(&w.pp("to_k"), c, c)?,
            to_v: Linear::new(&w.pp("to_v"), c, c)?,
            add_kv,
            to_out: Linear::new(&w.pp("to_out.0"), c, c)?,
            heads: c / head_dim,
        })
    }

    /// x (N, C, H, W); encoder_hidden_states (N, L, X) and text_bias (N, 1, L) for the added-KV form
    /// → x + attention (N, C, H, W).
    pub fn forward(
        &self,
        x: &B::Tensor,
        encoder_hidden_states: Option<&B::Tensor>,
        text_bias: Option<&B::Tensor>,
    ) -> Result<B::Tensor> {
        let (n, c, h, w) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3));
        let hs = self.group_norm.forward(x)?.reshape(&[n, c, h * w])?.transpose(1, 2)?; // (N, HW, C)
        let q = self.to_q.forward(&hs)?;
        let (mut k, mut v) = (self.to_k.forward(&hs)?, self.to_v.forward(&hs)?);
        let mut bias = None;
        if let (Some((add_k, add_v)), Some(ehs)) = (&self.add_kv, encoder_hidden_states) {
            // keys/values = [text tokens ; image tokens]      (N, L + HW, C)
            k = B::Tensor::cat(&[&add_k.forward(ehs)?, &k], 1)?;
            v = B::Tensor::cat(&[&add_v.forward(ehs)?, &v], 1)?;
            if let Some(tb) = text_bias {
                let zeros = self.be.tensor(vec![0.0; tb.dim(0) * h * w], &[tb.dim(0), 1, h * w])?;
                bias = Some(B::Tensor::cat(&[tb, &zeros], 2)?); // image keys are never masked
            }
        }
        let o = self.to_out.forward(&B::Tensor::attention(&q, &k, &v, self.heads, bias.as_ref())?)?; // (N, HW, C)
        o.transpose(1, 2)?.reshape(&[n, c, h, w])?.add(x)
    }
}
