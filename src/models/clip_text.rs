//! transformers `CLIPTextModelWithProjection` (docs/math.md §3): pre-LN transformer with a causal mask,
//! pooled at the EOS token, projected without bias. `CLIPEncoderLayer` is shared with the vision tower.

use crate::backend::{Activation, Backend, Tensor};
use crate::config::ClipTextConfig;
use crate::error::Result;
use crate::nn::{embed_tokens, LayerNorm, Linear, SelfAttention, Weights};

/// transformers `CLIPEncoderLayer`: x + attn(LN1(x)); x + mlp(LN2(x)).
pub struct ClipEncoderLayer<B: Backend> {
    layer_norm1: LayerNorm<B>,
    /// `self_attn.{q,k,v,out}_proj`
    self_attn: SelfAttention<B>,
    layer_norm2: LayerNorm<B>,
    fc1: Linear<B>,
    fc2: Linear<B>,
    act: Activation,
}

impl<B: Backend> ClipEncoderLayer<B> {
    pub fn new(
        w: &Weights<B>,
        hidden: usize,
        intermediate: usize,
        heads: usize,
        eps: f64,
        act: Activation,
    ) -> Result<Self> {
        let projections = ["q_proj", "k_proj", "v_proj", "out_proj"];
        Ok(ClipEncoderLayer {
            layer_norm1: LayerNorm::new(&w.pp("layer_norm1"), hidden, eps)?,
            self_attn: SelfAttention::new(&w.pp("self_attn"), projections, hidden, heads)?,
            layer_norm2: LayerNorm::new(&w.pp("layer_norm2"), hidden, eps)?,
            fc1: Linear::new(&w.pp("mlp").pp("fc1"), hidden, intermediate)?,
            fc2: Linear::new(&w.pp("mlp").pp("fc2"), intermediate, hidden)?,
            act,
        })
    }

    /// x (N, L, D), bias (1|N, L|1, L) → (N, L, D)
    pub fn forward(&self, x: &B::Tensor, bias: Option<&B::Tensor>) -> Result<B::Tensor> {
        let x = x.add(&self.self_attn.forward(&self.layer_norm1.forward(x)?, bias)?)?;
        let h = self.fc1.forward(&self.layer_norm2.forward(&x)?)?.activation(self.act)?;
        x.add(&self.fc2.forward(&h)?)
    }
}

pub struct ClipTextModelWithProjection<B: Backend> {
    be: B,
    token_embedding: B::Tensor,
    position_embedding: B::Tensor,
    layers: Vec<ClipEncoderLayer<B>>,
    final_layer_norm: LayerNorm<B>,
    text_projection: Linear<B>,
    pub config: ClipTextConfig,
}

/// What a text encoder gives the prior and the decoder.
pub struct TextEncoding<T> {
    /// Pooled, projected text embedding (N, E).
    pub text_embeds: T,
    /// Last hidden states (N, L, D).
    pub last_hidden_state: T,
}

impl<B: Backend> ClipTextModelWithProjection<B> {
    pub fn new(w: &Weights<B>, config: ClipTextConfig) -> Result<Self> {
        let c = &config;
        let act = Activation::from_name(&c.hidden_act)?;
        let tm = w.pp("text_model");
        let emb = tm.pp("embeddings");
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let lw = tm.pp("encoder.layers").pp(i);
                ClipEncoderLayer::new(
                    &lw,
                    c.hidden_size,
                    c.intermediate_size,
                    c.num_attention_heads,
                    c.layer_norm_eps,
                    act,
                )
            })
            .collect::<Result<_>>()?;
        Ok(ClipTextModelWithProjection {
            be: w.backend().clone(),
            token_embedding: emb.tensor("token_embedding.weight", &[c.vocab_size, c.hidden_size])?,
            position_embedding: emb.tensor("position_embedding.weight", &[c.max_position_embeddings, c.hidden_size])?,
            layers,
            final_layer_norm: LayerNorm::new(&tm.pp("final_layer_norm"), c.hidden_size, c.layer_norm_eps)?,
            text_projection: Linear::no_bias(&w.pp("text_projection"), c.hidden_size, c.projection_dim)?,
            config,
        })
    }

    /// ids: N rows of L token ids (flattened). The pipeline passes no padding mask (docs/math.md §3).
    pub fn forward(&self, ids: &[u32], n: usize) -> Result<TextEncoding<B::Tensor>> {
        let mut x = embed_tokens(&self.token_embedding, &self.position_embedding, ids, n)?; // (N, L, D)
        let (l, d) = (x.dim(1), x.dim(2));
        // causal[i, j] = dtype-min for j > i (key after query)
        let causal: Vec<f32> = (0..l * l).map(|ij| if ij % l > ij / l { f32::MIN } else { 0.0 }).collect();
        let causal = self.be.tensor(causal, &[1, l, l])?;
        for layer in &self.layers {
            x = layer.forward(&x, Some(&causal))?;
        }
        let last = self.final_layer_norm.forward(&x)?; // (N, L, D)
                                                       // pooled at EOS: legacy configs (eos_token_id == 2) take argmax(ids), else the first EOS.
        let rows: Vec<u32> = ids
            .chunks(l)
            .enumerate()
            .map(|(b, row)| {
                let pos = if self.config.eos_token_id == 2 {
                    row.iter().enumerate().fold(0, |best, (j, &id)| if id > row[best] { j } else { best })
                } else {
                    row.iter().position(|&id| id as i64 == self.config.eos_token_id).unwrap_or(l - 1)
                };
                (b * l + pos) as u32
            })
            .collect();
        let pooled = last.reshape(&[n * l, d])?.gather_rows(&rows)?; // (N, D)
        Ok(TextEncoding { text_embeds: self.text_projection.forward(&pooled)?, last_hidden_state: last })
    }
}
