"""Run an exported model through diffusers' own UnCLIPPipeline for one prompt and seed and save every
intermediate, as tests/fixtures/reference/gen_golden.py does for the tiny fixture, so the Rust engine can be compared
tensor by tensor.

The pipeline expects a CLIP text encoder (`.text_embeds`, `.last_hidden_state`, called with input ids only);
MiniLMForUnCLIP wraps the exported BertModel to that interface: attention mask = ids != [PAD], text_embeds =
masked mean of last_hidden_state, L2-normalised (train/text_encoder.py).

Output (safetensors, keys as gen_golden.py): tokens.{prompt,uncond}.{input_ids,attention_mask},
text_encoder.{i}.in.*/out.*, prior.{i}.in.*/out, prior_scheduler.{i}.{model_output,t,sample,
pred_original_sample,prev_sample}, text_proj.0.*, decoder.{i}.*, decoder_scheduler.{i}.*, super_res_first.{i}.*,
super_res_last.0.*, super_res_scheduler.{i}.*, image (1,64,64,3) in [0,1]; plus a PNG of the image.

Usage: python train/generate_reference.py train/runs/tiny-export --prompt "a happy dog" --seed 0 --steps 3 3 3
"""
import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from diffusers import PriorTransformer, UnCLIPPipeline, UnCLIPScheduler, UNet2DConditionModel, UNet2DModel
from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel
from PIL import Image
from safetensors.torch import save_file
from transformers import BertModel, BertTokenizer
from transformers.models.clip.modeling_clip import CLIPTextModelOutput

from text_encoder import PAD_ID, mean_pool_normalize


class MiniLMForUnCLIP(torch.nn.Module):
    """BertModel + mean pooling + L2 norm behind the CLIPTextModelWithProjection interface the pipeline uses."""

    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    @property
    def dtype(self):
        return self.bert.dtype

    @property
    def device(self):
        return self.bert.device

    def forward(self, input_ids):
        mask = input_ids != PAD_ID
        hidden = self.bert(input_ids=input_ids, attention_mask=mask.long()).last_hidden_state
        return CLIPTextModelOutput(text_embeds=mean_pool_normalize(hidden, mask), last_hidden_state=hidden)


def load_pipeline(folder):
    """Component by component (diffusers cannot resolve UnCLIPTextProjModel from model_index.json, docs/math.md §14.15)."""
    def sub(name):
        return os.path.join(folder, name)

    return UnCLIPPipeline(
        prior=PriorTransformer.from_pretrained(sub("prior")),
        decoder=UNet2DConditionModel.from_pretrained(sub("decoder")),
        text_proj=UnCLIPTextProjModel.from_pretrained(sub("text_proj")),
        text_encoder=MiniLMForUnCLIP(BertModel.from_pretrained(sub("text_encoder"))).eval(),
        tokenizer=BertTokenizer.from_pretrained(sub("tokenizer")),
        super_res_first=UNet2DModel.from_pretrained(sub("super_res_first")),
        super_res_last=UNet2DModel.from_pretrained(sub("super_res_last")),
        prior_scheduler=UnCLIPScheduler.from_pretrained(sub("prior_scheduler")),
        decoder_scheduler=UnCLIPScheduler.from_pretrained(sub("decoder_scheduler")),
        super_res_scheduler=UnCLIPScheduler.from_pretrained(sub("super_res_scheduler")),
    )


def record_calls(module, name, rec):
    """Wrap module.forward to store every call's tensor inputs and outputs under '<name>.<call>.'."""
    orig, count = module.forward, [0]

    def forward(*args, **kwargs):
        out = orig(*args, **kwargs)
        i = count[0]
        count[0] += 1
        for k, v in list(kwargs.items()) + [(f"arg{j}", v) for j, v in enumerate(args)]:
            if torch.is_tensor(v):
                rec[f"{name}.{i}.in.{k}"] = v.detach().clone()
            elif isinstance(v, (int, float)):
                rec[f"{name}.{i}.in.{k}"] = torch.tensor(v)
        if isinstance(out, CLIPTextModelOutput):
            rec[f"{name}.{i}.out.text_embeds"] = out.text_embeds.detach().clone()
            rec[f"{name}.{i}.out.last_hidden_state"] = out.last_hidden_state.detach().clone()
        elif name == "text_proj":
            rec[f"{name}.{i}.out.encoder_hidden_states"] = out[0].detach().clone()
            rec[f"{name}.{i}.out.additive_time_emb"] = out[1].detach().clone()
        elif hasattr(out, "predicted_image_embedding"):
            rec[f"{name}.{i}.out"] = out.predicted_image_embedding.detach().clone()
        else:
            rec[f"{name}.{i}.out"] = out.sample.detach().clone()
        return out

    module.forward = forward


def record_steps(scheduler, name, rec):
    orig, count = scheduler.step, [0]

    def step(model_output, timestep, sample, *args, **kwargs):
        out = orig(model_output, timestep, sample, *args, **kwargs)
        i = count[0]
        count[0] += 1
        rec[f"{name}.{i}.model_output"] = model_output.detach().clone()
        rec[f"{name}.{i}.t"] = torch.tensor(int(timestep))
        rec[f"{name}.{i}.sample"] = sample.detach().clone()
        rec[f"{name}.{i}.prev_sample"] = out.prev_sample.detach().clone()
        if out.pred_original_sample is not None:
            rec[f"{name}.{i}.pred_original_sample"] = out.pred_original_sample.detach().clone()
        return out

    scheduler.step = step


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", help="exported model folder (train/export.py)")
    p.add_argument("--prompt", default="a happy dog")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, nargs=3, default=[3, 3, 3], metavar=("PRIOR", "DECODER", "SUPER_RES"))
    p.add_argument("--prior-guidance", type=float, default=4.0)
    p.add_argument("--decoder-guidance", type=float, default=8.0)
    p.add_argument("--out", help="output .safetensors (default <folder>/reference_<seed>_<steps>.safetensors)")
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    pipe = load_pipeline(args.folder)
    pipe.set_progress_bar_config(disable=True)
    rec = {}
    for name in ["text_encoder", "prior", "text_proj", "decoder", "super_res_first", "super_res_last"]:
        record_calls(getattr(pipe, name), name, rec)
    for name in ["prior_scheduler", "decoder_scheduler", "super_res_scheduler"]:
        record_steps(getattr(pipe, name), name, rec)

    g = torch.Generator().manual_seed(args.seed)
    image = pipe(args.prompt, generator=g, prior_num_inference_steps=args.steps[0],
                 decoder_num_inference_steps=args.steps[1], super_res_num_inference_steps=args.steps[2],
                 prior_guidance_scale=args.prior_guidance, decoder_guidance_scale=args.decoder_guidance,
                 output_type="np").images
    for tag, text in [("prompt", args.prompt), ("uncond", "")]:
        enc = pipe.tokenizer(text, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt")
        rec[f"tokens.{tag}.input_ids"] = enc.input_ids
        rec[f"tokens.{tag}.attention_mask"] = enc.attention_mask
    rec["image"] = torch.from_numpy(image)

    steps = "-".join(map(str, args.steps))
    out = args.out or os.path.join(args.folder, f"reference_seed{args.seed}_{steps}.safetensors")
    save_file({k: v.contiguous() for k, v in rec.items()}, out, metadata={
        "prompt": args.prompt, "seed": str(args.seed), "steps": json.dumps(args.steps),
        "guidance": json.dumps([args.prior_guidance, args.decoder_guidance]),
        "note": "diffusers UnCLIPPipeline with MiniLMForUnCLIP text encoder; keys <module>.<call>.in.<arg>/out, "
                "<scheduler>.<step>.*"})
    Image.fromarray((image[0] * 255).round().astype(np.uint8)).save(out.replace(".safetensors", ".png"))
    print(f"{len(rec)} tensors -> {out}; image mean {image.mean():.4f}")


if __name__ == "__main__":
    main()
