"""Training-side diffusion math matching diffusers' UnCLIPScheduler (docs/math.md §11): cosine schedule
(`squaredcos_cap_v2`, 1000 steps), forward noising, and the Improved-DDPM hybrid loss for the decoder's
learned-range variance.

References: Ho et al. 2020 (DDPM) eq. 4, 7; Nichol & Dhariwal 2021 (Improved DDPM) §3.1 (learned range,
L_hybrid = L_simple + lambda * L_vlb, lambda = 0.001); the loss terms follow openai/improved-diffusion
`gaussian_diffusion.py` (`_vb_terms_bpd`, `normal_kl`, `discretized_gaussian_log_likelihood`).
"""
import math

import torch
from diffusers import UnCLIPScheduler

NUM_TIMESTEPS = 1000
T_RANGES = ((0, 300), (300, 700), (700, 1000))  # the validation loss is also reported per range of t
VLB_WEIGHT = 0.001  # lambda of L_hybrid (Improved DDPM §3.1)


class Schedule:
    """Per-timestep tables in float64, taken from the scheduler the pipeline samples with."""

    def __init__(self, device):
        sched = UnCLIPScheduler(num_train_timesteps=NUM_TIMESTEPS, beta_schedule="squaredcos_cap_v2")
        betas = sched.betas.double()
        ab = torch.cumprod(1.0 - betas, 0)
        ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
        post_var = betas * (1.0 - ab_prev) / (1.0 - ab)
        self.betas = betas.to(device)
        self.sqrt_ab = ab.sqrt().to(device)
        self.sqrt_1m_ab = (1.0 - ab).sqrt().to(device)
        # posterior q(x_{t-1} | x_t, x_0) (DDPM eq. 7); log variance clipped at t=0 as in improved-diffusion
        self.post_log_var = torch.log(torch.cat([post_var[1:2], post_var[1:]])).to(device)
        self.post_c0 = (betas * ab_prev.sqrt() / (1.0 - ab)).to(device)
        self.post_ct = ((1.0 - ab_prev) * (1.0 - betas).sqrt() / (1.0 - ab)).to(device)
        self.log_betas = betas.log().to(device)

    @staticmethod
    def _at(table, t, like):
        return table[t].to(like.dtype).view(-1, *([1] * (like.dim() - 1)))

    def sample_t(self, n, device, generator=None, high=NUM_TIMESTEPS):
        return torch.randint(0, high, (n,), device=device, generator=generator)

    def q_sample(self, x0, t, noise):
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps (DDPM eq. 4)."""
        return self._at(self.sqrt_ab, t, x0) * x0 + self._at(self.sqrt_1m_ab, t, x0) * noise

    def predict_x0(self, x_t, t, eps):
        return (x_t - self._at(self.sqrt_1m_ab, t, x_t) * eps) / self._at(self.sqrt_ab, t, x_t)

    def posterior_mean(self, x0, x_t, t):
        return self._at(self.post_c0, t, x_t) * x0 + self._at(self.post_ct, t, x_t) * x_t

    def learned_range_log_var(self, v, t):
        """log sigma^2 = frac log(beta_t) + (1 - frac) log(beta~_t), frac = (v + 1) / 2 (Improved DDPM eq. 15);
        UnCLIPScheduler `learned_range` uses the same interpolation at sampling time."""
        frac = (v + 1.0) / 2.0
        return frac * self._at(self.log_betas, t, v) + (1.0 - frac) * self._at(self.post_log_var, t, v)


def normal_kl(mean1, logvar1, mean2, logvar2):
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise, in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def _approx_std_normal_cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def discretized_gaussian_log_likelihood(x, means, log_scales):
    """log p(x) of 8-bit data in [-1, 1] under a Gaussian discretised into 256 bins (DDPM §3.3)."""
    centered = x - means
    inv_stdv = torch.exp(-log_scales)
    cdf_plus = _approx_std_normal_cdf(inv_stdv * (centered + 1.0 / 255.0))
    cdf_min = _approx_std_normal_cdf(inv_stdv * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    cdf_delta = cdf_plus - cdf_min
    return torch.where(x < -0.999, log_cdf_plus,
                       torch.where(x > 0.999, log_one_minus_cdf_min, torch.log(cdf_delta.clamp(min=1e-12))))


PREDICTIONS = ("epsilon", "sample")  # what the UNet's first channels predict: UnCLIPScheduler's prediction_type
SAMPLE_SNR_GAMMA = 5.0  # Min-SNR's gamma (Hang et al. 2023: 5), the default cap of `sample` prediction's weights


def simple_loss(schedule, pred, x0, t, noise, prediction, snr_gamma=None):
    """Per-sample (weighted loss, unweighted MSE) of a prediction of epsilon or of x0 (`sample`).

    epsilon: ||eps - eps_theta||^2 (DDPM L_simple), optionally weighted by min(SNR_t, gamma) / SNR_t (Min-SNR-gamma,
    Hang et al. 2023, eq. 9; SNR_t = abar_t / (1 - abar_t)).

    sample: ||x0 - x0_theta||^2 weighted by clamp(SNR_t, 1, gamma): Min-SNR's min(SNR_t, gamma) with the floor of
    Salimans & Ho 2022's "truncated SNR" weighting max(SNR_t, 1), so the pure-noise steps still learn E[x0 | c].
    Why x0 at all: UnCLIPScheduler's cosine schedule ends at abar_999 ~ 2e-9, so an epsilon model's first step
    x0 = (x_T - sqrt(1 - abar) eps_theta) / sqrt(abar) multiplies any error in eps_theta by ~2e4; the clipped noise
    that comes out is then kept by every later step (measured on the first CPU run's super-res with
    train/diagnose_x0.py; its decoder survived it and stays ε: train/README.md). A model that predicts x0 gives its own estimate of the image at every step.
    """
    target = noise if prediction == "epsilon" else x0
    mse = (pred - target).pow(2).mean(dim=(1, 2, 3))
    snr = (schedule.sqrt_ab[t] / schedule.sqrt_1m_ab[t]).pow(2).float()
    if prediction == "epsilon":
        weight = 1.0 if snr_gamma is None else snr.clamp(max=snr_gamma) / snr
    else:
        weight = snr.clamp(min=1.0, max=SAMPLE_SNR_GAMMA if snr_gamma is None else snr_gamma)
    return weight * mse, mse


def hybrid_loss(schedule, model_out, x0, x_t, t, noise, prediction="epsilon", snr_gamma=None, reduce=True):
    """Improved-DDPM L_hybrid for a 6-channel output [eps or x0, v].

    L_simple as `simple_loss` (the reported `mse` stays unweighted, comparable across runs of one prediction type);
    L_vlb term L_t in bits/dim, computed with the predicted mean frozen (stop-gradient on the prediction) so it
    trains only the variance. improved-diffusion scales the per-sample L_t by num_timesteps / 1000
    ("rescale_learned_sigmas"), which equals lambda * T with lambda = 0.001: the paper's L_vlb = sum_t L_t =
    T * E_t[L_t]. Returns (loss, mse, vlb) averaged over the batch, or per sample (B,) with reduce=False.
    """
    pred, v = model_out.float().chunk(2, dim=1)
    weighted, mse = simple_loss(schedule, pred, x0, t, noise, prediction, snr_gamma)

    log_var = schedule.learned_range_log_var(v, t)
    x0_pred = schedule.predict_x0(x_t, t, pred.detach()) if prediction == "epsilon" else pred.detach().clamp(-1, 1)
    mean_pred = schedule.posterior_mean(x0_pred, x_t, t)
    true_mean = schedule.posterior_mean(x0, x_t, t)
    true_log_var = Schedule._at(schedule.post_log_var, t, x_t)
    kl = normal_kl(true_mean, true_log_var, mean_pred, log_var).mean(dim=(1, 2, 3)) / math.log(2.0)
    nll = -discretized_gaussian_log_likelihood(x0, mean_pred, 0.5 * log_var).mean(dim=(1, 2, 3)) / math.log(2.0)
    vlb = torch.where(t == 0, nll, kl)
    loss = weighted + VLB_WEIGHT * NUM_TIMESTEPS * vlb
    return (loss.mean(), mse.mean(), vlb.mean()) if reduce else (loss, mse, vlb)
