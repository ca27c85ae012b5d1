//! One file per diffusers / transformers class. Struct and field names follow the classes and their
//! state-dict keys; configs are the classes' own `config.json`.

pub mod attention;
pub mod bert;
pub mod clip_text;
pub mod clip_vision;
pub mod prior_transformer;
pub mod resnet;
pub mod text_proj;
pub mod unet_2d;
pub mod unet_2d_blocks;
pub mod unet_2d_condition;
pub mod unet_core;

pub use bert::BertModel;
pub use clip_text::{ClipTextModelWithProjection, TextEncoding};
pub use clip_vision::ClipVisionModelWithProjection;
pub use prior_transformer::PriorTransformer;
pub use text_proj::{DecoderConditioning, UnCLIPTextProjModel};
pub use unet_2d::UNet2DModel;
pub use unet_2d_condition::UNet2DConditionModel;
