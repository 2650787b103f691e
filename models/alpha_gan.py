"""alpha-GAN (Rosca et al. 2017, "Variational Approaches for Auto-Encoding Generative Adversarial
Networks", arXiv 1706.04987).

Deterministic encoder E (z_enc = E(x)), generator G, image discriminator D and code
discriminator C; the code discriminator replaces the VAE's KL term (Section 4). With
x_rec = G(E(x)) and x_p = G(z_p), z_p ~ N(0, I), and non-saturating GAN losses on logits:

    encoder + generator: recon_weight * ||x - x_rec||_1 / D_x
                         + adversarial_weight * (-1/2 (log D(x_rec) + log D(x_p)))
                         + code_weight * (-log C(z_enc))
    image discriminator: -log D(x) - 1/2 (log(1 - D(x_rec)) + log(1 - D(x_p)))
    code discriminator:  -log C(z_p) - log(1 - C(z_enc))

Rosca et al. weigh the L1 term with lambda and use the same update order; the values here are
ours (recon_weight 20 on the per-dimension L1, as in ``gvae``). The code discriminator is an MLP
of three hidden layers of 750 units as in their paper (LeakyReLU 0.2). Kwon et al. 2019 use a
WGAN-GP form of the adversarial terms; this plugin implements the paper's original GAN form.
Optimiser: Adam 2e-4, betas (0.5, 0.9).

Measured with these defaults on MNIST (quick profile, seed 0): the image discriminator's loss
reached 1e-4 by step 240, the generator's pre-tanh activations fell to about -55 (tanh saturated,
so neither the GAN nor the L1 term has a gradient left) and every sample and reconstruction was
black; recon_weight 200 did not prevent it within 600 steps. Kwon et al.'s WGAN-GP form is the
planned remedy, as a config choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gvae_bench.contracts.benchmark import DataSpec
from gvae_bench.registry import MODELS
from gvae_bench.contracts.model import BatchSource, GenerativeModel, GeneratorMixin, ModelConfig, adam
from gvae_bench.models.losses import discriminator_loss, generator_loss, l1_reconstruction
from gvae_bench.models.networks import build_critic, build_encoder, build_generator


@dataclass
class AlphaGANConfig(ModelConfig):
    """alpha-GAN settings: loss weights, code-discriminator width, Adam ``lr``/``betas``."""

    latent_dim: int = 128
    width: int = 64
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.9)
    recon_weight: float = 20.0
    adversarial_weight: float = 1.0
    code_weight: float = 1.0
    code_discriminator_width: int = 750

    def validate(self) -> None:
        super().validate()
        self.require(positive=("lr", "code_discriminator_width"),
                     non_negative=("recon_weight", "adversarial_weight", "code_weight"))


@MODELS.register("alpha_gan")
class AlphaGAN(GeneratorMixin, GenerativeModel):
    """alpha-GAN (Rosca et al. 2017): deterministic encoder, L1 reconstruction, image and code discriminators."""

    Config = AlphaGANConfig
    can_reconstruct = True
    can_encode_point = True

    def __init__(self, config: AlphaGANConfig, data: DataSpec) -> None:
        super().__init__(config, data)
        self.encoder = build_encoder(data.shape, config.latent_dim, config.width, gaussian=False)
        self.generator = build_generator(data.shape, config.latent_dim, config.width, output=self.output_activation())
        self.discriminator = build_critic(data.shape, config.width)
        self.code_discriminator = build_critic((config.latent_dim,), config.code_discriminator_width)
        self._opt_eg = adam(list(self.encoder.parameters()) + list(self.generator.parameters()), config.lr, config.betas)
        self._opt_d = adam(self.discriminator.parameters(), config.lr, config.betas)
        self._opt_c = adam(self.code_discriminator.parameters(), config.lr, config.betas)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"encoder_generator": self._opt_eg, "discriminator": self._opt_d, "code_discriminator": self._opt_c}

    def train_step(self, next_batch: BatchSource) -> dict[str, float]:
        cfg = self.config
        x = next_batch()
        z_enc = self.encoder(x)
        z_prior = torch.randn_like(z_enc)
        reconstruction = self.generator(z_enc)
        sample = self.generator(z_prior)

        self._set_discriminators_trainable(False)
        recon = l1_reconstruction(x, reconstruction).mean()
        adversarial = generator_loss(self.discriminator(reconstruction), self.discriminator(sample))
        code = generator_loss(self.code_discriminator(z_enc))
        loss = cfg.recon_weight * recon + cfg.adversarial_weight * adversarial + cfg.code_weight * code
        self._opt_eg.zero_grad(set_to_none=True)
        loss.backward()
        self._opt_eg.step()
        self._set_discriminators_trainable(True)

        d_loss = discriminator_loss(self.discriminator(x), self.discriminator(reconstruction.detach()),
                                    self.discriminator(sample.detach()))
        c_loss = discriminator_loss(self.code_discriminator(z_prior), self.code_discriminator(z_enc.detach()))
        self._opt_d.zero_grad(set_to_none=True)
        self._opt_c.zero_grad(set_to_none=True)
        (d_loss + c_loss).backward()
        self._opt_d.step()
        self._opt_c.step()
        return {"encoder_generator_loss": loss.item(), "l1_recon": recon.item(), "adversarial": adversarial.item(),
                "code_adversarial": code.item(), "discriminator_loss": d_loss.item(),
                "code_discriminator_loss": c_loss.item()}

    def _set_discriminators_trainable(self, flag: bool) -> None:
        self.discriminator.requires_grad_(flag)
        self.code_discriminator.requires_grad_(flag)

    def encode_point(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator(self.encoder(x))
