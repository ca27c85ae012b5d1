"""The emoji decoder UNet for the browser UNet-step benchmark (bench/browser_unet_step.mjs).

Builds the `UNet2DConditionModel` of train/models.py (preset `full` by default, `--preset cpu` for the lean one) with
random weights from a fixed seed, and writes to OUT_DIR:

    unet/                  the diffusers folder (config.json + diffusion_pytorch_model.safetensors): our side
                           converts it to GGUF f32 (examples/convert_component.rs)
    unet.onnx              one call unet(sample, timestep, encoder_hidden_states, class_labels, attention_mask)
                           → sample, opset 17: onnxruntime-web's side
    inputs.bin             the fixed inputs, f32 little-endian, concatenated in the order of inputs.json, then the
                           PyTorch output (so both browser sides run the same numbers and can be checked against it)
    inputs.json            names, shapes, byte offsets, the timestep, the ONNX exporter used and the check below

Shapes are the decoder's call inside the unCLIP pipeline with classifier-free guidance: batch 2, 3×32×32 samples,
L = 32 text tokens + text_proj's 4 extra tokens, class_labels = text_proj's additive time embedding (4·C0).
Before anything is timed the ONNX file is run with onnxruntime (CPU) and compared with PyTorch.

    .venv/bin/python bench/onnx/export_unet.py target/unet-step [--preset full|cpu] [--seed 0]
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "train"))
# train/models.py imports text_encoder for two constants; this benchmark needs neither BERT nor the caption table
import types  # noqa: E402

sys.modules.setdefault("text_encoder", types.SimpleNamespace(HIDDEN=384, MAX_LENGTH=32))
import models  # noqa: E402

TEXT_TOKENS = models.MAX_LENGTH
EXTRA_TOKENS = 4  # text_proj's clip_extra_context_tokens (train/models.py text_proj)
BATCH = 2  # unconditional + conditional rows of one guided step
TIMESTEP = 500
OPSET = 17


class Call(torch.nn.Module):
    """unet(...).sample as a plain function of tensors, for the exporter."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, class_labels, attention_mask):
        return self.unet(sample, timestep, encoder_hidden_states, class_labels=class_labels,
                         attention_mask=attention_mask, return_dict=False)[0]


def inputs(unet, seed):
    cfg = unet.config
    g = torch.Generator().manual_seed(seed + 1)
    length = TEXT_TOKENS + EXTRA_TOKENS
    mask = torch.zeros(BATCH, length)
    for row, words in enumerate((5, 17)):  # the extra tokens are always attended, then a row's real text tokens
        mask[row, : EXTRA_TOKENS + words] = 1.0
    return {
        "sample": torch.randn(BATCH, cfg.in_channels, cfg.sample_size, cfg.sample_size, generator=g),
        "timestep": torch.tensor(TIMESTEP, dtype=torch.int64),
        "encoder_hidden_states": torch.randn(BATCH, length, cfg.cross_attention_dim, generator=g),
        "class_labels": torch.randn(BATCH, 4 * cfg.block_out_channels[0], generator=g),
        "attention_mask": mask,
    }


def export(model, args, path):
    names = list(args)
    common = dict(input_names=names, output_names=["out_sample"], opset_version=OPSET)
    try:
        torch.onnx.export(model, tuple(args.values()), str(path), dynamo=True, external_data=False, **common)
        import onnx

        got = {o.domain: o.version for o in onnx.load(str(path), load_external_data=False).opset_import}.get("")
        if got != OPSET:
            raise RuntimeError(f"it wrote opset {got}, not {OPSET}")
        return "dynamo"
    except Exception as e:  # noqa: BLE001 - any exporter failure falls back to the TorchScript exporter
        print(f"dynamo exporter: {type(e).__name__}: {str(e)[:200]}; using the legacy exporter", file=sys.stderr)
        path.unlink(missing_ok=True)
        torch.onnx.export(model, tuple(args.values()), str(path), dynamo=False, **common)
        return "legacy"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--preset", choices=["full", "cpu", "tiny"], default="full")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(a.seed)
    unet = models.decoder(**models.PRESETS[a.preset]["decoder"]).eval()
    # random init leaves diffusers' zero-initialised output conv at 0: give every tensor nonzero values so the
    # comparison below sees the whole network
    with torch.no_grad():
        for name, t in unet.named_parameters():
            if not t.abs().sum():
                t.normal_(0.0, 0.02 if t.dim() > 1 else 0.1)
    unet.save_pretrained(a.out / "unet", safe_serialization=True)
    params = sum(t.numel() for t in unet.parameters())

    x = inputs(unet, a.seed)
    with torch.no_grad():
        ref = Call(unet)(**x)
        exporter = export(Call(unet), x, a.out / "unet.onnx")

    import onnxruntime as ort

    sess = ort.InferenceSession(str(a.out / "unet.onnx"), providers=["CPUExecutionProvider"])
    feed = {i.name: x[i.name].numpy() for i in sess.get_inputs()}
    got = sess.run(None, feed)[0]
    diff = float(np.abs(got - ref.numpy()).max())
    scale = float(np.abs(ref.numpy()).max())
    print(f"{a.preset}: {params / 1e6:.2f} M params, exporter {exporter}, ONNX vs PyTorch max abs diff {diff:.2e} "
          f"(output max |x| {scale:.2f})")
    if not diff <= 1e-3 * max(1.0, scale):
        sys.exit(f"the ONNX export disagrees with PyTorch: max abs diff {diff}")

    layout, blob, offset = [], bytearray(), 0
    for name, t in list(x.items()) + [("expected", ref)]:
        if name == "timestep":
            continue
        b = t.numpy().astype("<f4").tobytes()
        layout.append({"name": name, "shape": list(t.shape), "offset": offset, "bytes": len(b)})
        blob += b
        offset += len(b)
    (a.out / "inputs.bin").write_bytes(bytes(blob))
    (a.out / "inputs.json").write_text(json.dumps({
        "preset": a.preset, "seed": a.seed, "params": params, "timestep": TIMESTEP, "tensors": layout,
        "onnx": {"exporter": exporter, "opset": OPSET, "torch": torch.__version__, "onnxruntime_check": diff,
                 "input_names": [i.name for i in sess.get_inputs()]},
        "config": dict(unet.config),
    }, indent=1, default=list))


if __name__ == "__main__":
    main()
