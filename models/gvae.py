"""GVAE, the model of Sagar, "Generate High Fidelity Images With Generative Variational Autoencoder".

The reading of SPEC.md and the paper's Sections 4.2-4.4 (the choices it leaves open are config
fields, discussed in docs/models.md):

* encoder E: q(z|x) = N(mu(x), diag sigma^2(x)), reparameterised z_enc = mu + sigma * eps;
* generator G in place of the VAE decoder; prior z_p ~ N(0, I);
* critic D (WGAN-GP) judges real x against both fakes G(z_enc) and G(z_p).

Critic, ``n_critic`` steps per step (Gulrajani et al. 2017):

    L_D = 1/2 (E[D(G(z_enc))] + E[D(G(z_p))]) - E[D(x)] + gp_weight * GP,

with GP = E[(||grad D(x_hat)||_2 - 1)^2] at x_hat between x and a fake (half the batch from each kind).

Encoder and generator, trained as one network (Section 4.2: "the encoder and the generator are
considered as one network"):

    L_EG = adversarial_weight * (-1/2 (E[D(G(z_enc))] + E[D(G(z_p))]))
         + recon_weight * E[||x - G(z_enc)||_1 / D_x]          (L1 reconstruction, per data dim)
         + kl_weight * E[KL(q(z|x) || N(0, I))]                (nats, summed over latent dims)

Defaults: latent 1000 (the paper's Table 5 best), Adam 1e-4 (Section 5; Table 3 says 5e-4) with
WGAN-GP's betas (0.5, 0.9), lambda 10, 5 critic steps. The paper gives no loss weights:
recon_weight 20 and kl_weight 0.01 are ours, set so that the L1 term's gradient per pixel
(20 / 784) is of the size of the critic's (a unit-norm gradient spread over 784 pixels, about
1/28), and the KL is weighed on the same per-dimension scale. That reasoning is about images: on
the 2D mixtures (2 data and 2 latent dims) the profiles set kl_weight 1, measured in
``gvae_bench/profiles.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gvae_bench.contracts.benchmark import DataSpec
from gvae_bench.registry import MODELS
from gvae_bench.contracts.model import BatchSource, GaussianEncoderMixin, GenerativeModel, GeneratorMixin, ModelConfig, adam
from gvae_bench.models.losses import kl_to_standard_normal, l1_reconstruction, reparameterise, wgan_gp_critic_step
from gvae_bench.models.networks import build_critic, build_encoder, build_generator


@dataclass
class GVAEConfig(ModelConfig):
    """GVAE settings; every loss weight of the module docstring is a field."""

    latent_dim: int = 1000
    width: int = 64
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    n_critic: int = 5
    gp_weight: float = 10.0
    adversarial_weight: float = 1.0
    recon_weight: float = 20.0
    kl_weight: float = 0.01

    def validate(self) -> None:
        super().validate()
        self.require(positive=("lr", "n_critic"),
                     non_negative=("gp_weight", "adversarial_weight", "recon_weight", "kl_weight"))


@MODELS.register("gvae")
class GVAE(GaussianEncoderMixin, GeneratorMixin, GenerativeModel):
    """GVAE (Sagar): VAE encoder + generator judged by a WGAN-GP critic on reconstructions and samples."""

    Config = GVAEConfig
    can_reconstruct = True

    def __init__(self, config: GVAEConfig, data: DataSpec) -> None:
        super().__init__(config, data)
        self.encoder = build_encoder(data.shape, config.latent_dim, config.width, gaussian=True)
        self.generator = build_generator(data.shape, config.latent_dim, config.width, output=self.output_activation())
        self.critic = build_critic(data.shape, config.width)
        self._opt_eg = adam(list(self.encoder.parameters()) + list(self.generator.parameters()), config.lr, config.betas)
        self._opt_d = adam(self.critic.parameters(), config.lr, config.betas)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"encoder_generator": self._opt_eg, "critic": self._opt_d}

    def _prior(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.config.latent_dim, device=self.device)

    def train_step(self, next_batch: BatchSource) -> dict[str, float]:
        cfg = self.config
        self.critic.requires_grad_(True)
        for _ in range(cfg.n_critic):
            x = next_batch()
            with torch.no_grad():
                reconstruction = self.generator(reparameterise(*self.encode(x)))
                sample = self.generator(self._prior(x.shape[0]))
            critic_loss, wasserstein, penalty = wgan_gp_critic_step(
                self.critic, self._opt_d, x, [reconstruction, sample], cfg.gp_weight)

        self.critic.requires_grad_(False)
        mu, logvar = self.encode(x)
        reconstruction = self.generator(reparameterise(mu, logvar))
        sample = self.generator(self._prior(x.shape[0]))
        adversarial = -0.5 * (self.critic(reconstruction).mean() + self.critic(sample).mean())
        recon = l1_reconstruction(x, reconstruction).mean()
        kl = kl_to_standard_normal(mu, logvar).mean()
        loss = cfg.adversarial_weight * adversarial + cfg.recon_weight * recon + cfg.kl_weight * kl
        self._opt_eg.zero_grad(set_to_none=True)
        loss.backward()
        self._opt_eg.step()
        self.critic.requires_grad_(True)
        return {
            "critic_loss": critic_loss.item(),
            "wasserstein": wasserstein.item(),
            "gradient_penalty": penalty.item(),
            "encoder_generator_loss": loss.item(),
            "adversarial": adversarial.item(),
            "l1_recon": recon.item(),
            "kl": kl.item(),
        }

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        mu, _ = self.encode(x)
        return self.generator(mu)
