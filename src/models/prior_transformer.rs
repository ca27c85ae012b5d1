//! diffusers `PriorTransformer` (docs/math.md §5): a causal transformer over [text tokens, text embedding,
//! time, noisy image embedding, prd] that predicts the clean (normalised) image embedding from the
//! last (prd) token.

use crate::backend::{Activation, Backend, Tensor};
use crate::config::PriorTransformerConfig;
use crate::error::{Error, Result};
use crate::nn::{timestep_embedding, LayerNorm, Linear, TimestepEmbedding, Weights};

/// diffusers `BasicTransformerBlock` as the prior uses it: self-attention only, LayerNorm (eps 1e-5),
/// exact-GELU feed-forward of 4·D.
struct BasicTransformerBlock<B: Backend> {
    norm1: LayerNorm<B>,
    to_q: Linear<B>,
    to_k: Linear<B>,
    to_v: Linear<B>,
    to_out: Linear<B>,
    norm3: LayerNorm<B>,
    ff_in: Linear<B>,
    ff_out: Linear<B>,
    heads: usize,
}

impl<B: Backend> BasicTransformerBlock<B> {
    fn new(w: &Weights<B>, dim: usize, heads: usize) -> Result<Self> {
        let attn = w.pp("attn1");
        Ok(BasicTransformerBlock {
            norm1: LayerNorm::new(&w.pp("norm1"), dim, 1e-5)?,
            to_q: Linear::new(&attn.pp("to_q"), dim, dim)?,
            to_k: Linear::new(&attn.pp("to_k"), dim, dim)?,
            to_v: Linear::new(&attn.pp("to_v"), dim, dim)?,
            to_out: Linear::new(&attn.pp("to_out.0"), dim, dim)?,
            norm3: LayerNorm::new(&w.pp("norm3"), dim, 1e-5)?,
            ff_in: Linear::new(&w.pp("ff.net.0.proj"), dim, 4 * dim)?,
            ff_out: Linear::new(&w.pp("ff.net.2"), 4 * dim, dim)?,
            heads,
        })
    }

    /// x (N, S, D), bias (N, S, S) → (N, S, D)
    fn forward(&self, x: &B::Tensor, bias: &B::Tensor) -> Result<B::Tensor> {
        let n = self.norm1.forward(x)?;
        let (q, k, v) = (self.to_q.forward(&n)?, self.to_k.forward(&n)?, self.to_v.forward(&n)?);
        let x = x.add(&self.to_out.forward(&B::Tensor::attention(&q, &k, &v, self.heads, Some(bias))?)?)?;
        let f = self.ff_in.forward(&self.norm3.forward(&x)?)?.activation(Activation::Gelu)?;
        x.add(&self.ff_out.forward(&f)?)
    }
}

pub struct PriorTransformer<B: Backend> {
    be: B,
    time_embedding: TimestepEmbedding<B>,
    proj_in: Linear<B>,
    embedding_proj: Linear<B>,
    encoder_hidden_states_proj: Linear<B>,
    positional_embedding: B::Tensor,
    prd_embedding: B::Tensor,
    transformer_blocks: Vec<BasicTransformerBlock<B>>,
    norm_out: LayerNorm<B>,
    proj_to_clip_embeddings: Linear<B>,
    /// (1, E) statistics that de-normalise the final sample (`post_process_latents`).
    pub clip_mean: B::Tensor,
    pub clip_std: B::Tensor,
    pub config: PriorTransformerConfig,
}

impl<B: Backend> PriorTransformer<B> {
    pub fn new(w: &Weights<B>, config: PriorTransformerConfig) -> Result<Self> {
        let c = &config;
        let unsupported = |what: &str, v: &Option<String>| {
            Err(Error::Model(format!("PriorTransformer with {what} = {v:?} is not supported (Karlo uses the default)")))
        };
        if c.norm_in_type.is_some() {
            return unsupported("norm_in_type", &c.norm_in_type);
        }
        if c.embedding_proj_norm_type.is_some() {
            return unsupported("embedding_proj_norm_type", &c.embedding_proj_norm_type);
        }
        if c.encoder_hid_proj_type.as_deref() != Some("linear") {
            return unsupported("encoder_hid_proj_type", &c.encoder_hid_proj_type);
        }
        if c.added_emb_type.as_deref() != Some("prd") {
            return unsupported("added_emb_type", &c.added_emb_type);
        }
        let d = c.num_attention_heads * c.attention_head_dim;
        let e = c.embedding_dim;
        let time_dim = c.time_embed_dim.unwrap_or(d);
        let proj_dim = c.embedding_proj_dim.unwrap_or(e);
        let clip_dim = c.clip_embed_dim.unwrap_or(e);
        let seq = c.num_embeddings + c.additional_embeddings;
        let blocks = (0..c.num_layers)
            .map(|i| BasicTransformerBlock::new(&w.pp("transformer_blocks").pp(i), d, c.num_attention_heads))
            .collect::<Result<_>>()?;
        Ok(PriorTransformer {
            be: w.backend().clone(),
            time_embedding: TimestepEmbedding::new(
                &w.pp("time_embedding"),
                d,
                time_dim,
                Activation::from_name(&c.time_embed_act_fn)?,
            )?,
            proj_in: Linear::new(&w.pp("proj_in"), e, d)?,
            embedding_proj: Linear::new(&w.pp("embedding_proj"), proj_dim, d)?,
            encoder_hidden_states_proj: Linear::new(&w.pp("encoder_hidden_states_proj"), e, d)?,
            positional_embedding: w.tensor("positional_embedding", &[1, seq, d])?,
            prd_embedding: w.tensor("prd_embedding", &[1, 1, d])?,
            transformer_blocks: blocks,
            norm_out: LayerNorm::new(&w.pp("norm_out"), d, 1e-5)?,
            proj_to_clip_embeddings: Linear::new(&w.pp("proj_to_clip_embeddings"), d, clip_dim)?,
            clip_mean: w.tensor("clip_mean", &[1, clip_dim])?,
            clip_std: w.tensor("clip_std", &[1, clip_dim])?,
            config,
        })
    }

    /// x (N, E) noisy normalised image embedding; proj_embedding (N, E) text embedding;
    /// encoder_hidden_states (N, L, E); text_mask N rows of L → predicted x̂0 (N, E).
    pub fn forward(
        &self,
        x: &B::Tensor,
        t: usize,
        proj_embedding: &B::Tensor,
        encoder_hidden_states: &B::Tensor,
        text_mask: &[bool],
    ) -> Result<B::Tensor> {
        let c = &self.config;
        let n = x.dim(0);
        let d = c.num_attention_heads * c.attention_head_dim;
        let l = encoder_hidden_states.dim(1);
        if l != c.num_embeddings {
            return Err(Error::Model(format!(
                "the prior was trained on {} text tokens, the text encoder gave {l}",
                c.num_embeddings
            )));
        }
        let temb: Vec<f32> = (0..n).flat_map(|_| timestep_embedding(t, d, true, 0.0)).collect();
        let temb = self.time_embedding.forward(&self.be.tensor(temb, &[n, d])?)?.reshape(&[n, 1, d])?;
        let pe = self.embedding_proj.forward(proj_embedding)?.reshape(&[n, 1, d])?;
        let ehs = self.encoder_hidden_states_proj.forward(encoder_hidden_states)?; // (N, L, D)
        let h = self.proj_in.forward(x)?.reshape(&[n, 1, d])?;
        let prd = B::Tensor::cat(&vec![&self.prd_embedding; n], 0)?; // (N, 1, D)
        let mut seq = B::Tensor::cat(&[&ehs, &pe, &temb, &h, &prd], 1)?.add(&self.positional_embedding)?; // (N, S, D)

        // bias[b, i, j] = −10000·(text key j padded) − 10000·(j > i)      (docs/math.md §5)
        let s = l + c.additional_embeddings;
        let mut bias = vec![0f32; n * s * s];
        for b in 0..n {
            for i in 0..s {
                for j in 0..s {
                    let padded = j < l && !text_mask[b * l + j];
                    bias[(b * s + i) * s + j] =
                        if padded { -10000.0 } else { 0.0 } + if j > i { -10000.0 } else { 0.0 };
                }
            }
        }
        let bias = self.be.tensor(bias, &[n, s, s])?;
        for block in &self.transformer_blocks {
            seq = block.forward(&seq, &bias)?;
        }
        let seq = self.norm_out.forward(&seq)?;
        let last = seq.narrow(1, s - 1, 1)?.reshape(&[n, d])?; // the prd token
        self.proj_to_clip_embeddings.forward(&last)
    }

    /// `post_process_latents`: x·clip_std + clip_mean.
    pub fn post_process_latents(&self, x: &B::Tensor) -> Result<B::Tensor> {
        x.mul(&self.clip_std)?.add(&self.clip_mean)
    }
}
