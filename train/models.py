"""Component constructors and size presets. Every model is a stock diffusers/transformers class, so the export
is an ordinary diffusers UnCLIP folder (docs/math.md §5 prior, §7 text_proj, §8 decoder, §10 super-res).

Shapes fixed by the text tower (train/text_encoder.py): embeddings are 384-d (MiniLM), text length 32.
Presets: `tiny` proves the plumbing on a CPU in seconds per step; `cpu` is the lean model a 2-core machine can
train in hours (attention only at the lowest decoder resolution); `full` is the model to train on a GPU
(sized to fit the 80 MB int8 budget with the 22.7 M-parameter text encoder; see README).
"""
from diffusers import PriorTransformer, UNet2DConditionModel, UNet2DModel
from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from text_encoder import HIDDEN, MAX_LENGTH

EMBED_DIM = HIDDEN  # CLIP-space width: image embeddings are projected to the text tower's 384 dims
DECODER_SIZE = 32
SUPERRES_SIZE = 64

PRESETS = {
    "tiny": {
        "clip": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, patch_size=16),
        "prior": dict(num_layers=2, num_attention_heads=4, attention_head_dim=16),
        "decoder": dict(block_out_channels=(32, 64), layers_per_block=1, attention_head_dim=16, cross_attention_dim=64),
        "superres": dict(block_out_channels=(32, 64), layers_per_block=1),
    },
    "cpu": {
        "clip": dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4, patch_size=8),
        "prior": dict(num_layers=4, num_attention_heads=4, attention_head_dim=32),
        "decoder": dict(block_out_channels=(32, 64, 128), layers_per_block=1, attention_head_dim=32,
                        cross_attention_dim=128, attention_levels=1),
        "superres": dict(block_out_channels=(32, 64), layers_per_block=1),
    },
    "full": {
        "clip": dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=6, num_attention_heads=4, patch_size=8),
        "prior": dict(num_layers=8, num_attention_heads=6, attention_head_dim=64),
        "decoder": dict(block_out_channels=(96, 192, 256), layers_per_block=2, attention_head_dim=32,
                        cross_attention_dim=256),
        "superres": dict(block_out_channels=(64, 128, 128), layers_per_block=1),
    },
}


def image_tower(hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, patch_size):
    """The model's "CLIP" image encoder: a ViT on 64x64 images in [-1, 1], projected to 384 dims."""
    cfg = CLIPVisionConfig(
        image_size=SUPERRES_SIZE, patch_size=patch_size, num_channels=3, hidden_size=hidden_size,
        intermediate_size=intermediate_size, num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads, projection_dim=EMBED_DIM, hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
    )
    return CLIPVisionModelWithProjection(cfg)


def prior(num_layers, num_attention_heads, attention_head_dim):
    """PriorTransformer over [32 text tokens, text embedding, time, noisy x, prd] (docs/math.md §5)."""
    return PriorTransformer(
        num_attention_heads=num_attention_heads, attention_head_dim=attention_head_dim, num_layers=num_layers,
        embedding_dim=EMBED_DIM, num_embeddings=MAX_LENGTH, additional_embeddings=4, dropout=0.0,
    )


def text_proj(block_out_channels, cross_attention_dim, **_):
    """UnCLIPTextProjModel sized to the decoder: time_embed_dim = 4 * block_out_channels[0] (docs/math.md §7)."""
    return UnCLIPTextProjModel(
        clip_extra_context_tokens=4, clip_embeddings_dim=EMBED_DIM,
        time_embed_dim=4 * block_out_channels[0], cross_attention_dim=cross_attention_dim,
    )


def decoder(block_out_channels, layers_per_block, attention_head_dim, cross_attention_dim, attention_levels=None,
            sample_size=DECODER_SIZE):
    """Karlo-style UNet2DConditionModel (docs/math.md §8): resnet-only top level, SimpleCrossAttn below (only the lowest
    `attention_levels` levels when given), scale-shift norm, class_embed_type identity (receives text_proj's
    additive time embedding), 6 output channels (epsilon + learned-range variance). `sample_size` is the base
    resolution (32, or 16: train/README.md's decoder pilot); no weight depends on it, so one set of weights runs at
    either, and UnCLIPPipeline upsamples from it to the super-res size."""
    n = len(block_out_channels)
    attn = n - 1 if attention_levels is None else attention_levels
    return UNet2DConditionModel(
        sample_size=sample_size, in_channels=3, out_channels=6,
        down_block_types=("ResnetDownsampleBlock2D",) * (n - attn) + ("SimpleCrossAttnDownBlock2D",) * attn,
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        up_block_types=("SimpleCrossAttnUpBlock2D",) * attn + ("ResnetUpsampleBlock2D",) * (n - attn),
        block_out_channels=tuple(block_out_channels), layers_per_block=layers_per_block,
        cross_attention_dim=cross_attention_dim, attention_head_dim=attention_head_dim,
        resnet_time_scale_shift="scale_shift", class_embed_type="identity",
    )


def superres(block_out_channels, layers_per_block):
    """32->64 super-resolution UNet2DModel (docs/math.md §10): input = [noisy 64x64, bicubic-upsampled low-res],
    resnet blocks only, no attention (as Karlo's)."""
    n = len(block_out_channels)
    return UNet2DModel(
        sample_size=SUPERRES_SIZE, in_channels=6, out_channels=3, layers_per_block=layers_per_block,
        down_block_types=("ResnetDownsampleBlock2D",) * n, up_block_types=("ResnetUpsampleBlock2D",) * n,
        block_out_channels=tuple(block_out_channels), add_attention=False,
    )


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def main():
    """Print parameter counts and q8_0 sizes (34 bytes per 32 weights) of each preset."""
    from text_encoder import TextEncoder  # noqa: deferred: loads BERT only when sizing

    text = n_params(TextEncoder().model)
    for name, p in PRESETS.items():
        parts = {
            "text_encoder": text, "image_encoder": n_params(image_tower(**p["clip"])),
            "prior": n_params(prior(**p["prior"])), "text_proj": n_params(text_proj(**p["decoder"])),
            "decoder": n_params(decoder(**p["decoder"])), "super_res_first": n_params(superres(**p["superres"])),
        }
        parts["super_res_last"] = parts["super_res_first"]
        gen = sum(v for k, v in parts.items() if k != "image_encoder")
        print(name, {k: f"{v / 1e6:.2f}M" for k, v in parts.items()})
        print(f"  generation total {gen / 1e6:.1f}M params = {gen * 34 / 32 / 2**20:.1f} MiB q8_0 "
              f"(+ image encoder {parts['image_encoder'] * 34 / 32 / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
