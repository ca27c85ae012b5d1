"""Train the 32->64 (or, `--low-size 16`, 16->64) super-resolution UNet2DModel (`super_res_first`, docs/math.md §10).

The model sees [noisy 64x64 image, low-res image upsampled with antialiased bicubic] (the pipeline's
F.interpolate(mode="bicubic", antialias=True)) and predicts x0 (`--prediction sample`, the default, with
clamp(SNR, 1, 5) weights) or epsilon (cosine schedule): train/diffusion.py `simple_loss` says why x0. As unCLIP
trains its upsamplers (Ramesh et al. 2022, §2.1 / appendix: "we slightly corrupt the conditioning image
during training ... gaussian blur" for the first upsampler), the 32x32 (16x16) conditioning image is corrupted so
the model tolerates the decoder's imperfect outputs: Gaussian blur (sigma ~ U(0.2, 1.0), half the time) and
Gaussian noise (std ~ U(0, 0.05) in [-1, 1] units, half the time).

`super_res_last` is not trained separately: the pipeline runs it only for the final step at t = 0, where
the predicted epsilon is scaled by sqrt(1 - abar_0) = 0.0064, so export.py writes a copy of this model.

Usage: python train/train_superres.py --preset tiny --steps 300
"""
import torch
import torch.nn.functional as F

import models
import trainer
from data import EmojiData, to_signed
from diffusion import Schedule, simple_loss

DEFAULTS = {"batch": {"tiny": 16, "cpu": 16, "full": 128}, "lr": {"tiny": 1e-3, "cpu": 1e-3, "full": 2e-4}}
BLUR_SIGMA = (0.2, 1.0)
NOISE_STD = (0.0, 0.05)


def gaussian_blur(x, sigma):
    """Per-sample separable Gaussian blur (5 taps, reflect padding); sigma: (N,) tensor."""
    taps = torch.arange(-2, 3, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (taps[None, :] / sigma[:, None]) ** 2)
    k = k / k.sum(1, keepdim=True)  # (N,5)
    n, c, h, w = x.shape
    y = F.pad(x.reshape(1, n * c, h, w), (2, 2, 2, 2), mode="reflect")
    kk = k.repeat_interleave(c, 0)
    y = F.conv2d(y, kk[:, None, None, :], groups=n * c)
    y = F.conv2d(y, kk[:, None, :, None], groups=n * c)
    return y.reshape(n, c, h, w)


def corrupt(low, generator=None):
    """Blur half the batch and add noise to (an independent) half: the unCLIP upsampler augmentation."""
    n, dev = low.shape[0], low.device

    def uniform(lo, hi):
        return torch.rand(n, device=dev, generator=generator) * (hi - lo) + lo

    blur = torch.rand(n, device=dev, generator=generator) < 0.5
    low = torch.where(blur[:, None, None, None], gaussian_blur(low, uniform(*BLUR_SIGMA)), low)
    noisy = torch.rand(n, device=dev, generator=generator) < 0.5
    std = torch.where(noisy, uniform(*NOISE_STD), torch.zeros(n, device=dev))
    return low + std[:, None, None, None] * torch.randn(low.shape, device=dev, generator=generator)


def upsample(low):
    """The pipeline's conditioning upsample (docs/math.md §10.1)."""
    return F.interpolate(low, size=(models.SUPERRES_SIZE, models.SUPERRES_SIZE), mode="bicubic",
                         align_corners=False, antialias=True)


def main():
    p = trainer.parser(__doc__.splitlines()[0], DEFAULTS)
    trainer.add_prediction_args(p, "sample")
    p.add_argument("--low-size", type=int, choices=[16, 32], default=models.DECODER_SIZE,
                   help="the conditioning image's size: the decoder's (16: the 64 px area-averaged, train/README.md's "
                   "pilot; start it from the 32 px weights with --init superres-cpu)")
    args = trainer.resolve(p.parse_args(), "superres")
    data = EmojiData(args.device, limit=args.limit_images, seed=args.seed)
    unet = models.superres(**models.PRESETS[args.preset]["superres"])
    run = trainer.Run(args, {"super_res_first": unet}, extra_state={"data_rng": (data.rng_state, data.set_rng_state)})
    sched = Schedule(run.device)

    def loss_on(model, idx, low, t, noise):
        x0 = to_signed(data.images64[idx])
        x_t = sched.q_sample(x0, t, noise)
        with run.autocast():
            pred = model(torch.cat([x_t, upsample(low)], dim=1), t).sample
        weighted, mse = simple_loss(sched, pred.float(), x0, t, noise, args.prediction, args.snr_gamma)
        return weighted.mean(), mse.mean()

    def step(_):
        idx = data.batch_indices(args.batch)
        low = corrupt(data.base_images(idx, args.low_size))
        t = sched.sample_t(len(idx), run.device)
        noise = torch.randn(len(idx), 3, models.SUPERRES_SIZE, models.SUPERRES_SIZE, device=run.device)
        idx, low, t, noise = run.shard(idx, low, t, noise)  # torchrun: trainer.py
        loss, mse = loss_on(unet, idx, low, t, noise)
        return loss, {"mse": mse.detach()}

    val_idx = data.validation_indices()
    val_t = torch.linspace(0, 999, len(val_idx), device=run.device).long()
    val_noise = torch.randn(len(val_idx), 3, models.SUPERRES_SIZE, models.SUPERRES_SIZE,
                            generator=torch.Generator().manual_seed(0)).to(run.device)
    val_low = data.base_images(val_idx, args.low_size)

    @torch.no_grad()
    def evaluate(r):
        loss, mse = loss_on(r.ema.models["super_res_first"], val_idx, val_low, val_t, val_noise)
        return {"val_loss": float(loss), "val_mse": float(mse)}

    run.train(step, on_checkpoint=evaluate)


if __name__ == "__main__":
    main()
