"""A random-weight diffusers UnCLIP folder at the size of the emoji model (for benchmarks only):
CLIP text 384×6, prior 8×512 (embedding 384), decoder UNet (128, 256, 512) at 64×64 with Karlo's
block types, super-res UNet2DModel (64, 128, 256) 64→128. The tokenizer is the tiny fixture's.

    python bench/make_midsize.py tests/fixtures/tiny-unclip /tmp/midsize-unclip
"""
import json
import os
import shutil
import sys

import torch
from diffusers import PriorTransformer, UnCLIPScheduler, UNet2DConditionModel, UNet2DModel
from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel
from transformers import CLIPTextConfig, CLIPTextModelWithProjection


def main(tiny_dir, out):
    torch.manual_seed(0)
    os.makedirs(out, exist_ok=True)
    e = 384
    text = CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=1000, hidden_size=e, intermediate_size=4 * e, projection_dim=e, num_hidden_layers=6,
        num_attention_heads=6, max_position_embeddings=77, hidden_act="quick_gelu", bos_token_id=0, eos_token_id=2, pad_token_id=1))
    prior = PriorTransformer(num_attention_heads=8, attention_head_dim=64, num_layers=8, embedding_dim=e, num_embeddings=77,
                             additional_embeddings=4)
    prior.clip_mean.data.normal_(0, 0.1)
    prior.clip_std.data.uniform_(0.5, 1.5)
    text_proj = UnCLIPTextProjModel(clip_extra_context_tokens=4, clip_embeddings_dim=e, time_embed_dim=512, cross_attention_dim=512)
    decoder = UNet2DConditionModel(
        sample_size=64, in_channels=3, out_channels=6, layers_per_block=2, block_out_channels=(128, 256, 512),
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn", cross_attention_dim=512, attention_head_dim=64,
        resnet_time_scale_shift="scale_shift", class_embed_type="identity")
    sr = dict(sample_size=128, in_channels=6, out_channels=3, layers_per_block=1, block_out_channels=(64, 128, 256),
              down_block_types=("ResnetDownsampleBlock2D",) * 3, up_block_types=("ResnetUpsampleBlock2D",) * 3, add_attention=False)
    for name, model in [("text_encoder", text), ("prior", prior), ("text_proj", text_proj), ("decoder", decoder),
                        ("super_res_first", UNet2DModel(**sr)), ("super_res_last", UNet2DModel(**sr))]:
        model.save_pretrained(os.path.join(out, name), safe_serialization=True)
        print(name, sum(p.numel() for p in model.parameters()), "params")
    for name in ["prior_scheduler", "decoder_scheduler", "super_res_scheduler"]:
        shutil.copytree(os.path.join(tiny_dir, name), os.path.join(out, name), dirs_exist_ok=True)
    shutil.copytree(os.path.join(tiny_dir, "tokenizer"), os.path.join(out, "tokenizer"), dirs_exist_ok=True)
    # the tiny fixture's index, less the image tower it also carries (this folder has none: the text-to-image pipeline)
    index = json.load(open(os.path.join(tiny_dir, "model_index.json")))
    for component in ["image_encoder", "feature_extractor"]:
        index.pop(component, None)
    json.dump(index, open(os.path.join(out, "model_index.json"), "w"), indent=2)
    json.dump({"name": "midsize-random", "license": "random weights, for benchmarks"}, open(os.path.join(out, "unclip.json"), "w"))


if __name__ == "__main__":
    main(*sys.argv[1:3])
