"""The importance-weighted (IWAE) lower bound on log p(x) (Burda, Grosse and Salakhutdinov 2015).

For a latent-variable model p(x, z) = p(x|z) p(z) with p(z) = N(0, I), and a Gaussian proposal
q(z|x) = N(mu(x), diag sigma^2(x)):

    L_k(x) = E_{z_1..k ~ q(z|x)} [ log (1/k) sum_i p(x, z_i) / q(z_i|x) ]  <=  log p(x),

with L_1 the ELBO, L_k non-decreasing in k and L_k -> log p(x) as k -> infinity (their Theorem 1).
One draw of the k samples estimates L_k. The sum is taken in log space (logsumexp), streamed over
chunks of ``chunk`` samples so memory stays O(batch x chunk), never O(batch x k).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

Encoder = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
LogLikelihood = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_LOG_2PI = math.log(2 * math.pi)


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)) summed over the last axis."""
    return -0.5 * ((z - mu).pow(2) / logvar.exp() + logvar + _LOG_2PI).sum(dim=-1)


@torch.no_grad()
def iwae_log_likelihood(x: torch.Tensor, encode: Encoder, log_p_x_given_z: LogLikelihood, k: int,
                        chunk: int = 500, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample IWAE bound L_k(x) in nats, shape (n,).

    ``encode(x)`` gives (mu, logvar) of q(z|x), each (n, d); ``log_p_x_given_z(x, z)`` takes
    x (n, ...) and z (m, n, d) and returns log p(x|z) of shape (m, n).
    """
    if k < 1 or chunk < 1:
        raise ValueError(f"k and chunk must be >= 1, got k={k}, chunk={chunk}")
    mu, logvar = encode(x)
    std = (0.5 * logvar).exp()
    running = torch.full((x.shape[0],), -math.inf, dtype=torch.float64, device=x.device)
    for start in range(0, k, chunk):
        m = min(chunk, k - start)
        eps = torch.randn((m, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + std * eps
        log_w = (log_p_x_given_z(x, z) + _log_normal(z, torch.zeros_like(mu), torch.zeros_like(logvar))
                 - _log_normal(z, mu, logvar)).double()
        running = torch.logaddexp(running, torch.logsumexp(log_w, dim=0))
    return running - math.log(k)
