//! Model configs. Each struct deserializes the class's own `config.json` unchanged: field names are
//! the diffusers / transformers keys, defaults are the classes' defaults, unknown keys are ignored.

use serde::{Deserialize, Serialize};

fn one() -> f64 {
    1.0
}
fn eps_1e5() -> f64 {
    1e-5
}
fn groups_32() -> usize {
    32
}
fn yes() -> bool {
    true
}

/// `transformers.CLIPTextConfig` (CLIPTextModelWithProjection).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClipTextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub projection_dim: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "quick_gelu")]
    pub hidden_act: String,
    #[serde(default = "eps_1e5")]
    pub layer_norm_eps: f64,
    #[serde(default = "eos_2")]
    pub eos_token_id: i64,
}
fn quick_gelu() -> String {
    "quick_gelu".into()
}
fn eos_2() -> i64 {
    2
}

/// `transformers.BertConfig` (BertModel, used as the sentence-transformers MiniLM text encoder).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "gelu")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "type_vocab_2")]
    pub type_vocab_size: usize,
    #[serde(default = "eps_1e12")]
    pub layer_norm_eps: f64,
}
fn gelu() -> String {
    "gelu".into()
}
fn type_vocab_2() -> usize {
    2
}
fn eps_1e12() -> f64 {
    1e-12
}

/// `transformers.CLIPVisionConfig` (CLIPVisionModelWithProjection).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClipVisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub projection_dim: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default = "three")]
    pub num_channels: usize,
    pub image_size: usize,
    pub patch_size: usize,
    #[serde(default = "quick_gelu")]
    pub hidden_act: String,
    #[serde(default = "eps_1e5")]
    pub layer_norm_eps: f64,
}
fn three() -> usize {
    3
}

/// `diffusers.PriorTransformer`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PriorTransformerConfig {
    pub num_attention_heads: usize,
    pub attention_head_dim: usize,
    pub num_layers: usize,
    pub embedding_dim: usize,
    pub num_embeddings: usize,
    pub additional_embeddings: usize,
    #[serde(default = "silu")]
    pub time_embed_act_fn: String,
    pub norm_in_type: Option<String>,
    pub embedding_proj_norm_type: Option<String>,
    #[serde(default = "linear")]
    pub encoder_hid_proj_type: Option<String>,
    #[serde(default = "prd")]
    pub added_emb_type: Option<String>,
    pub time_embed_dim: Option<usize>,
    pub embedding_proj_dim: Option<usize>,
    pub clip_embed_dim: Option<usize>,
}
fn silu() -> String {
    "silu".into()
}
fn linear() -> Option<String> {
    Some("linear".into())
}
fn prd() -> Option<String> {
    Some("prd".into())
}

/// `diffusers.UnCLIPTextProjModel`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnCLIPTextProjConfig {
    pub clip_extra_context_tokens: usize,
    pub clip_embeddings_dim: usize,
    pub time_embed_dim: usize,
    pub cross_attention_dim: usize,
}

/// `attention_head_dim` may be an int or one int per block.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PerBlock {
    One(usize),
    Each(Vec<usize>),
}

impl PerBlock {
    pub fn get(&self, i: usize) -> usize {
        match self {
            PerBlock::One(v) => *v,
            PerBlock::Each(v) => v.get(i).or(v.last()).copied().unwrap_or(0), // 0 is refused by Attention
        }
    }
}

/// The fields diffusers' two UNet classes share, with the same names and defaults; each config below flattens it in
/// and derefs to it (`config.sample_size`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UNetCommonConfig {
    pub sample_size: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub layers_per_block: usize,
    pub block_out_channels: Vec<usize>,
    pub down_block_types: Vec<String>,
    pub up_block_types: Vec<String>,
    #[serde(default = "groups_32")]
    pub norm_num_groups: usize,
    #[serde(default = "eps_1e5")]
    pub norm_eps: f64,
    #[serde(default = "yes")]
    pub flip_sin_to_cos: bool,
    #[serde(default)]
    pub freq_shift: f64,
    #[serde(default = "default_shift")]
    pub resnet_time_scale_shift: String,
    pub class_embed_type: Option<String>,
    #[serde(default = "silu")]
    pub act_fn: String,
    #[serde(default = "one")]
    pub mid_block_scale_factor: f64,
    #[serde(default = "positional")]
    pub time_embedding_type: String,
    #[serde(default)]
    pub center_input_sample: bool,
}
fn default_shift() -> String {
    "default".into()
}
fn positional() -> String {
    "positional".into()
}

/// `diffusers.UNet2DConditionModel` (the unCLIP decoder).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UNet2DConditionConfig {
    #[serde(flatten)]
    pub unet: UNetCommonConfig,
    pub mid_block_type: Option<String>,
    pub cross_attention_dim: usize,
    pub attention_head_dim: PerBlock,
    #[serde(default)]
    pub num_attention_heads: Option<PerBlock>,
    #[serde(default = "one")]
    pub resnet_out_scale_factor: f64,
    #[serde(default)]
    pub resnet_skip_time_act: bool,
    #[serde(default)]
    pub only_cross_attention: serde_json::Value,
    pub cross_attention_norm: Option<String>,
    pub encoder_hid_dim: Option<usize>,
    pub addition_embed_type: Option<String>,
    pub time_embedding_act_fn: Option<String>,
    pub timestep_post_act: Option<String>,
    #[serde(default = "three")]
    pub conv_in_kernel: usize,
    #[serde(default = "three")]
    pub conv_out_kernel: usize,
}

/// `diffusers.UNet2DModel` (the unCLIP super-resolution UNets).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UNet2DConfig {
    #[serde(flatten)]
    pub unet: UNetCommonConfig,
    #[serde(default = "unet_mid_2d")]
    pub mid_block_type: Option<String>,
    #[serde(default = "yes")]
    pub add_attention: bool,
    #[serde(default = "head_dim_8")]
    pub attention_head_dim: Option<usize>,
    pub attn_norm_num_groups: Option<usize>,
}

macro_rules! deref_to_common {
    ($($config:ty),*) => {$(
        impl std::ops::Deref for $config {
            type Target = UNetCommonConfig;
            fn deref(&self) -> &UNetCommonConfig {
                &self.unet
            }
        }
        impl std::ops::DerefMut for $config {
            fn deref_mut(&mut self) -> &mut UNetCommonConfig {
                &mut self.unet
            }
        }
    )*};
}
deref_to_common!(UNet2DConditionConfig, UNet2DConfig);

fn unet_mid_2d() -> Option<String> {
    Some("UNetMidBlock2D".into())
}
fn head_dim_8() -> Option<usize> {
    Some(8)
}

/// The most elements one image's activation at the UNet's full resolution may have (`block_out_channels[0]` ×
/// sample_size²): 512 MiB of f32.
pub const MAX_ACTIVATION_ELEMENTS: usize = 1 << 27;

impl UNetCommonConfig {
    /// Checks the UNet geometry shared by both UNet classes: at least one block, blocks that agree, and a
    /// sample size that survives every 2× downsampling. `class` names the config in the message.
    pub fn check_layout(&self, class: &str) -> crate::Result<()> {
        let (boc, down, up) = (&self.block_out_channels, self.down_block_types.len(), self.up_block_types.len());
        let (layers, sample_size) = (self.layers_per_block, self.sample_size);
        let bad = |what: String| Err(crate::Error::Model(format!("{class} config: {what}")));
        if boc.is_empty() || boc.contains(&0) {
            return bad(format!("block_out_channels {boc:?} must list at least one positive channel count"));
        }
        if down != boc.len() || up != boc.len() {
            return bad(format!("{} block_out_channels, {down} down blocks and {up} up blocks must match", boc.len()));
        }
        if layers == 0 || layers > 16 {
            return bad(format!("layers_per_block {layers} must be between 1 and 16"));
        }
        let factor = 1usize << (boc.len() - 1).min(16);
        if sample_size == 0 || !sample_size.is_multiple_of(factor) || sample_size > 4096 {
            return bad(format!(
                "sample_size {sample_size} must be a positive multiple of {factor} (one 2× step per block) up to 4096"
            ));
        }
        // no weight fixes sample_size, so a small file could ask for any activation size: bound the first one
        let elements = boc[0].saturating_mul(sample_size * sample_size);
        if elements > MAX_ACTIVATION_ELEMENTS {
            return bad(format!(
                "sample_size {sample_size} with {} channels would make activations of {} MiB per image; at most {} MiB are supported (Karlo's decoder needs 5)",
                boc[0],
                (elements * 4) >> 20,
                (MAX_ACTIVATION_ELEMENTS * 4) >> 20
            ));
        }
        Ok(())
    }
}
