"""Annealed importance sampling (AIS) estimate of log p(x) for decoder-based models.

References
----------
R. M. Neal, "Annealed importance sampling", Statistics and Computing 11 (2001).
Y. Wu, Y. Burda, R. Salakhutdinov, R. Grosse, "On the quantitative analysis of decoder-based
generative models", ICLR 2017 (arXiv 1611.04273): AIS with HMC transitions for VAEs and GANs,
16 chains, one HMC trajectory of 10 leapfrog steps per distribution, step size adapted to an
acceptance rate of 0.65; "AIS+encoder" starts the chains from q(z|x) instead of the prior.

The estimator
-------------
Let q_0(z) be the initial distribution (the prior p(z) = N(0, I), or an encoder's q(z|x)) and
gamma(z) = p(z) p(x|z) the unnormalised posterior, whose normaliser is p(x). With a schedule
0 = beta_0 < beta_1 < ... < beta_T = 1 the intermediate targets are

    f_t(z) = q_0(z)^(1 - beta_t) gamma(z)^beta_t.

A chain starts at z_0 ~ q_0 and, for t = 1..T, adds (beta_t - beta_{t-1}) (log gamma(z) - log q_0(z))
to its log weight at the current state, then moves z by an HMC transition that leaves f_t
invariant. exp(log weight) is an unbiased estimate of p(x), so the log of the average over chains

    log p_hat(x) = logmeanexp_chains(log w)

is a stochastic lower bound on log p(x) in expectation (Jensen), which becomes exact as T grows.
The schedule is the sigmoid schedule of Grosse et al. (2013) used by Wu et al.:
beta_t = (s(delta (2t/T - 1)) - s(-delta)) / (s(delta) - s(-delta)), s the logistic, delta = 4.

HMC: momentum r ~ N(0, I), ``n_leapfrog`` leapfrog steps of size eps on U = -log f_t, a
Metropolis test on H = U + |r|^2 / 2. The step size is adapted per chain and image:
log eps += 0.02 (accepted - 0.65), which settles at an acceptance rate of 0.65.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from tqdm import tqdm

LogLikelihood = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_LOG_2PI = math.log(2 * math.pi)
TARGET_ACCEPTANCE = 0.65


def sigmoid_schedule(n_steps: int, delta: float = 4.0) -> torch.Tensor:
    """beta_0 = 0 < ... < beta_T = 1 (T = ``n_steps``), the sigmoid schedule of Grosse et al. 2013."""
    t = torch.linspace(-delta, delta, n_steps + 1, dtype=torch.float64)
    s = torch.sigmoid(t)
    beta = (s - s[0]) / (s[-1] - s[0])
    beta[0], beta[-1] = 0.0, 1.0
    return beta


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((z - mu).pow(2) / logvar.exp() + logvar + _LOG_2PI).sum(dim=-1)


def ais_log_likelihood(x: torch.Tensor, log_p_x_given_z: LogLikelihood, latent_dim: int, n_steps: int,
                       n_chains: int = 16, n_leapfrog: int = 10,
                       initial: tuple[torch.Tensor, torch.Tensor] | None = None,
                       initial_step_size: float = 0.05, generator: torch.Generator | None = None,
                       progress: str | None = None) -> torch.Tensor:
    """Per-image AIS estimate of log p(x) in nats, shape (n,), float64.

    ``log_p_x_given_z(x, z)`` takes x (n, ...) and z (m, n, d) and returns (m, n), differentiably in
    z. ``initial``: (mu, logvar), each (n, d), of a Gaussian q_0(z|x) to start from (AIS+encoder);
    None starts from the prior N(0, I). ``progress``: a progress-bar label (None: no bar).
    """
    if n_steps < 1 or n_chains < 1 or n_leapfrog < 1:
        raise ValueError(f"n_steps, n_chains and n_leapfrog must be >= 1, got {n_steps}, {n_chains}, {n_leapfrog}")
    n, device = x.shape[0], x.device
    if initial is None:
        dtype = x.dtype if x.dtype.is_floating_point else torch.float32
        mu = torch.zeros(n, latent_dim, device=device, dtype=dtype)
        logvar = torch.zeros(n, latent_dim, device=device, dtype=dtype)
    else:
        mu, logvar = (t.detach() for t in initial)
    zeros = torch.zeros_like(mu)

    def parts(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log q_0(z), log gamma(z)), each (chains, n)."""
        log_q0 = _log_normal(z, mu, logvar)
        log_gamma = _log_normal(z, zeros, zeros) + log_p_x_given_z(x, z)
        return log_q0, log_gamma

    def value_and_grad(z: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """log f_beta(z), its gradient in z, and the weight increment's integrand log gamma - log q_0."""
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            log_q0, log_gamma = parts(z)
            log_f = (1.0 - beta) * log_q0 + beta * log_gamma
            (grad,) = torch.autograd.grad(log_f.sum(), z)
        return log_f.detach(), grad, (log_gamma - log_q0).detach()

    eps = torch.randn((n_chains, n, latent_dim), generator=generator, dtype=mu.dtype).to(device)
    z = mu + (0.5 * logvar).exp() * eps
    log_w = torch.zeros(n_chains, n, dtype=torch.float64, device=device)
    step = torch.full((n_chains, n, 1), initial_step_size, dtype=mu.dtype, device=device)
    betas = sigmoid_schedule(n_steps).tolist()
    for t in tqdm(range(1, n_steps + 1), desc=progress, disable=None if progress else True, leave=False):
        beta = betas[t]
        log_f, grad, increment = value_and_grad(z, beta)
        log_w += (beta - betas[t - 1]) * increment.double()
        # one HMC trajectory leaving f_beta invariant
        momentum = torch.randn(z.shape, generator=generator, dtype=z.dtype).to(device)
        energy0 = -log_f + 0.5 * momentum.pow(2).sum(-1)
        z_new, r = z, momentum + 0.5 * step * grad
        for leap in range(n_leapfrog):
            z_new = z_new + step * r
            log_f_new, grad_new, _ = value_and_grad(z_new, beta)
            if leap < n_leapfrog - 1:
                r = r + step * grad_new
        r = r + 0.5 * step * grad_new
        energy1 = -log_f_new + 0.5 * r.pow(2).sum(-1)
        uniform = torch.rand(energy0.shape, generator=generator, dtype=energy0.dtype).to(device)
        accept = (uniform.log() < energy0 - energy1) & torch.isfinite(energy1)
        z = torch.where(accept.unsqueeze(-1), z_new, z)
        step = step * torch.exp(0.02 * (accept.unsqueeze(-1).to(step.dtype) - TARGET_ACCEPTANCE))
    return torch.logsumexp(log_w, dim=0) - math.log(n_chains)
