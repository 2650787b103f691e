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
