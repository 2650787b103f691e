"""Loss terms shared by several models (one place for each): KL to N(0, I), the gradient penalty,
the standard GAN losses and the L1 reconstruction."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I) (Kingma and Welling 2013, Section 2.4)."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Per-sample KL(N(mu, diag(sigma^2)) || N(0, I)) in nats.

    KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1) (Kingma and Welling 2013, Appendix B).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0).sum(dim=1)


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP penalty E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = a x + (1 - a) x_fake,
    a ~ U[0, 1] per sample (Gulrajani et al. 2017, Algorithm 1). ``lambda`` is applied by the caller."""
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    mixed = (alpha * real + (1.0 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1.0).pow(2).mean()


def discriminator_loss(real_logits: torch.Tensor, *fake_logits: torch.Tensor) -> torch.Tensor:
    """Standard GAN discriminator loss (Goodfellow et al. 2014) on logits:
    -E[log D(x)] - mean over the fake kinds of E[log(1 - D(x_fake))], with D = sigmoid(logit)."""
    fake = torch.stack([F.softplus(logits).mean() for logits in fake_logits]).mean()
    return F.softplus(-real_logits).mean() + fake


def generator_loss(*fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss -E[log D(G(z))] (Goodfellow et al. 2014, Section 3),
    averaged over the fake kinds."""
    return torch.stack([F.softplus(-logits).mean() for logits in fake_logits]).mean()


def l1_reconstruction(x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """Per-sample mean absolute error over all data dimensions, ||x - x_rec||_1 / D."""
    return (x - reconstruction).abs().flatten(1).mean(dim=1)


def wgan_gp_critic_step(critic: nn.Module, optimizer: torch.optim.Optimizer, real: torch.Tensor,
                        fakes: list[torch.Tensor], gp_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One WGAN-GP critic update (Gulrajani et al. 2017, Algorithm 1) against one or more kinds of fakes:

        L_D = mean_k E[D(fake_k)] - E[D(x)] + gp_weight * GP,

    with the penalty taken between x and a per-sample mix of the fake kinds (contiguous equal
    shares of the batch). Returns (L_D, the Wasserstein estimate E[D(x)] - mean_k E[D(fake_k)], GP).
    """
    d_real = critic(real).mean()
    d_fake = torch.stack([critic(fake).mean() for fake in fakes]).mean()
    n, k = real.shape[0], len(fakes)
    bounds = [i * n // k for i in range(k + 1)]
    mixed = torch.cat([fake[bounds[i] : bounds[i + 1]] for i, fake in enumerate(fakes)])
    penalty = gradient_penalty(critic, real, mixed)
    loss = d_fake - d_real + gp_weight * penalty
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss, d_real - d_fake, penalty
