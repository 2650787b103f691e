"""WGAN-GP (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", arXiv 1704.00028).

Critic D, generator G, z ~ N(0, I). Per generator step, ``n_critic`` critic steps on

    L_D = E[D(G(z))] - E[D(x)] + gp_weight * E[(||grad D(x_hat)||_2 - 1)^2],
    x_hat = a x + (1 - a) G(z), a ~ U[0, 1]   (Algorithm 1),

then one generator step on L_G = -E[D(G(z))]. Defaults follow their MNIST code
(``gan_mnist.py``): lambda 10, 5 critic steps, Adam lr 1e-4, betas (0.5, 0.9), 128-d noise,
DIM 64. (Their Algorithm 1 uses beta1 = 0; the code's 0.5 is taken since it is the MNIST setting.)
The generator ends in tanh because the data are scaled to [-1, 1] (their code ends in a sigmoid on
[0, 1], the same map up to an affine change).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gvae_bench.contracts.benchmark import DataSpec
from gvae_bench.registry import MODELS
from gvae_bench.contracts.model import BatchSource, GenerativeModel, GeneratorMixin, ModelConfig, adam
from gvae_bench.models.losses import wgan_gp_critic_step
from gvae_bench.models.networks import build_critic, build_generator


@dataclass
class WGANGPConfig(ModelConfig):
    """WGAN-GP settings: ``n_critic`` critic steps per generator step, ``gp_weight`` (lambda),
    Adam ``lr``/``betas`` for both networks."""

    latent_dim: int = 128
    width: int = 64
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    n_critic: int = 5
    gp_weight: float = 10.0

    def validate(self) -> None:
        super().validate()
        self.require(positive=("lr", "n_critic"), non_negative=("gp_weight",))


@MODELS.register("wgan_gp")
class WGANGP(GeneratorMixin, GenerativeModel):
    """WGAN-GP (Gulrajani et al. 2017): Wasserstein critic with gradient penalty, 5 critic steps."""

    Config = WGANGPConfig

    def __init__(self, config: WGANGPConfig, data: DataSpec) -> None:
        super().__init__(config, data)
        self.generator = build_generator(data.shape, config.latent_dim, config.width, output=self.output_activation())
        self.critic = build_critic(data.shape, config.width)
        self._opt_g = adam(self.generator.parameters(), config.lr, config.betas)
        self._opt_d = adam(self.critic.parameters(), config.lr, config.betas)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self._opt_g, "critic": self._opt_d}

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.config.latent_dim, device=self.device)

    def train_step(self, next_batch: BatchSource) -> dict[str, float]:
        cfg = self.config
        self.critic.requires_grad_(True)
        for _ in range(cfg.n_critic):
            real = next_batch()
            with torch.no_grad():
                fake = self.generator(self._noise(real.shape[0]))
            critic_loss, wasserstein, penalty = wgan_gp_critic_step(self.critic, self._opt_d, real, [fake], cfg.gp_weight)
        self.critic.requires_grad_(False)
        generator_loss = -self.critic(self.generator(self._noise(real.shape[0]))).mean()
        self._opt_g.zero_grad(set_to_none=True)
        generator_loss.backward()
        self._opt_g.step()
        self.critic.requires_grad_(True)
        return {
            "critic_loss": critic_loss.item(),
            "wasserstein": wasserstein.item(),
            "gradient_penalty": penalty.item(),
            "generator_loss": generator_loss.item(),
        }

