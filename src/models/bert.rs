//! transformers `BertModel` used as a sentence-transformers encoder (all-MiniLM-L6-v2): post-LN
//! transformer; the sentence embedding is the mask-weighted mean of the last hidden states, L2
//! normalised. The prior and decoder also get the hidden states and the mask, as unCLIP gets CLIP's.

use super::clip_text::TextEncoding;
use crate::backend::{Activation, Backend, Tensor};
use crate::config::BertConfig;
use crate::error::Result;
use crate::nn::{embed_tokens, LayerNorm, Linear, SelfAttention, Weights};

/// transformers `BertLayer`: LN(x + attn(x)); LN(h + ffn(h)).
struct BertLayer<B: Backend> {
    /// `attention.self.{query,key,value}` and `attention.output.dense`
    attention: SelfAttention<B>,
    attention_norm: LayerNorm<B>,
    intermediate: Linear<B>,
    output: Linear<B>,
    output_norm: LayerNorm<B>,
    act: Activation,
}

impl<B: Backend> BertLayer<B> {
    fn new(w: &Weights<B>, c: &BertConfig) -> Result<Self> {
        let (d, i) = (c.hidden_size, c.intermediate_size);
        let (attn, heads) = (w.pp("attention"), c.num_attention_heads);
        Ok(BertLayer {
            attention: SelfAttention::new(&attn, ["self.query", "self.key", "self.value", "output.dense"], d, heads)?,
            attention_norm: LayerNorm::new(&attn.pp("output.LayerNorm"), d, c.layer_norm_eps)?,
            intermediate: Linear::new(&w.pp("intermediate.dense"), d, i)?,
            output: Linear::new(&w.pp("output.dense"), i, d)?,
            output_norm: LayerNorm::new(&w.pp("output.LayerNorm"), d, c.layer_norm_eps)?,
            act: Activation::from_name(&c.hidden_act)?,
        })
    }

    /// x (N, L, D), bias (N, 1, L) → (N, L, D)
    fn forward(&self, x: &B::Tensor, bias: &B::Tensor) -> Result<B::Tensor> {
        let a = self.attention.forward(x, Some(bias))?;
        let h = self.attention_norm.forward(&x.add(&a)?)?;
        let f = self.output.forward(&self.intermediate.forward(&h)?.activation(self.act)?)?;
        self.output_norm.forward(&h.add(&f)?)
    }
}

pub struct BertModel<B: Backend> {
    be: B,
    word_embeddings: B::Tensor,
    position_embeddings: B::Tensor,
    token_type_embeddings: B::Tensor,
    embeddings_norm: LayerNorm<B>,
    layers: Vec<BertLayer<B>>,
    pub config: BertConfig,
}

impl<B: Backend> BertModel<B> {
    pub fn new(w: &Weights<B>, config: BertConfig) -> Result<Self> {
        let c = &config;
        let (v, d) = (c.vocab_size, c.hidden_size);
        let emb = w.pp("embeddings");
        let layers =
            (0..c.num_hidden_layers).map(|i| BertLayer::new(&w.pp("encoder.layer").pp(i), c)).collect::<Result<_>>()?;
        Ok(BertModel {
            be: w.backend().clone(),
            word_embeddings: emb.tensor("word_embeddings.weight", &[v, d])?,
            position_embeddings: emb.tensor("position_embeddings.weight", &[c.max_position_embeddings, d])?,
            token_type_embeddings: emb.tensor("token_type_embeddings.weight", &[c.type_vocab_size, d])?,
            embeddings_norm: LayerNorm::new(&emb.pp("LayerNorm"), d, c.layer_norm_eps)?,
            layers,
            config,
        })
    }

    /// ids and mask: N rows of L (flattened). Returns the L2-normalised mean-pooled sentence
    /// embedding (N, D) and the last hidden states (N, L, D).
    pub fn forward(&self, ids: &[u32], mask: &[bool], n: usize) -> Result<TextEncoding<B::Tensor>> {
        let token_type = self.token_type_embeddings.narrow(0, 0, 1)?; // every token is of type 0
        let x = embed_tokens(&self.word_embeddings, &self.position_embeddings, ids, n)?.add(&token_type)?;
        let mut x = self.embeddings_norm.forward(&x)?; // (N, L, D)
        let (l, d) = (x.dim(1), x.dim(2));
        // extended attention mask: 0 for real tokens, dtype-min for padding (as a key)
        let bias: Vec<f32> = mask.iter().map(|&m| if m { 0.0 } else { f32::MIN }).collect();
        let bias = self.be.tensor(bias, &[n, 1, l])?;
        for layer in &self.layers {
            x = layer.forward(&x, &bias)?;
        }
        // mean pooling as a (N, 1, L)·(N, L, D) product with weights mask / count
        let weights: Vec<f32> = mask
            .chunks(l)
            .flat_map(|row| {
                let count = row.iter().filter(|&&m| m).count().max(1) as f32;
                row.iter().map(move |&m| if m { 1.0 / count } else { 0.0 })
            })
            .collect();
        let pooled = self.be.tensor(weights, &[n, 1, l])?.matmul(&x)?.reshape(&[n, d])?.l2_normalize()?;
        Ok(TextEncoding { text_embeds: pooled, last_hidden_state: x })
    }
}
