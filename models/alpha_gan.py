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
of three hidden layers of 750 units as in their paper (LeakyReLU 0.2). Optimiser: Adam 2e-4,
betas (0.5, 0.9).

``loss_form = "wgan_gp"``: the WGAN-GP form of Kwon et al. 2019 ("Generation of 3D Brain MRI Using
Auto-Encoding Generative Adversarial Networks", MICCAI; the 3D models of the paper's Table 4), in
which D and C are critics (no sigmoid) with Gulrajani et al.'s gradient penalty:

    encoder + generator: recon_weight * ||x - x_rec||_1 / D_x
                         - adversarial_weight * 1/2 (E[D(x_rec)] + E[D(x_p)]) - code_weight * E[C(z_enc)]
    image critic:        1/2 (E[D(x_rec)] + E[D(x_p)]) - E[D(x)] + gp_weight * GP_D
    code critic:         E[C(z_enc)] - E[C(z_p)] + gp_weight * GP_C

(GP at a per-sample mix of x with the two fake kinds, and of z_p with z_enc; one critic update per
encoder-generator update, as in the GAN form.)

Measured with the GAN form's defaults on MNIST (quick profile, seed 0): the image discriminator's
loss reached 1e-4 by step 240, the generator's pre-tanh activations fell to about -55 (tanh
saturated, so neither the GAN nor the L1 term has a gradient left) and every sample and
reconstruction was black; recon_weight 200 did not prevent it within 600 steps. The tuning
(``runner.py tune``) searches both forms.
"""

from __future__ import annotations

from dataclasses import dataclass

from gvae_bench.config import added_field

import torch
from torch import nn

from gvae_bench.contracts.benchmark import DataSpec
from gvae_bench.registry import MODELS
from gvae_bench.contracts.model import BatchSource, GenerativeModel, GeneratorMixin, ModelConfig, adam
from gvae_bench.models.losses import discriminator_loss, generator_loss, l1_reconstruction, wgan_gp_critic_step
from gvae_bench.models.networks import build_critic, build_encoder, build_generator


LOSS_FORMS = ("gan", "wgan_gp")


@dataclass
class AlphaGANConfig(ModelConfig):
    """alpha-GAN settings: loss weights, code-discriminator width, Adam ``lr``/``betas``; ``loss_form``
    ``gan`` (Rosca et al. 2017) or ``wgan_gp`` (Kwon et al. 2019, with ``gp_weight``)."""

    latent_dim: int = 128
    width: int = 64
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.9)
    recon_weight: float = 20.0
    adversarial_weight: float = 1.0
    code_weight: float = 1.0
    code_discriminator_width: int = 750
    loss_form: str = added_field("gan", since="0.4")
    gp_weight: float = added_field(10.0, since="0.4")

    def validate(self) -> None:
        super().validate()
        if self.loss_form not in LOSS_FORMS:
            raise ValueError(f"loss_form must be one of {', '.join(LOSS_FORMS)}, got {self.loss_form!r}")
        self.require(non_negative=("gp_weight",))
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
        critics = cfg.loss_form == "wgan_gp"
        x = next_batch()
        z_enc = self.encoder(x)
        z_prior = torch.randn_like(z_enc)
        reconstruction = self.generator(z_enc)
        sample = self.generator(z_prior)

        self._set_discriminators_trainable(False)
        recon = l1_reconstruction(x, reconstruction).mean()
        if critics:  # Kwon et al.'s WGAN-GP form (module docstring)
            adversarial = -0.5 * (self.discriminator(reconstruction).mean() + self.discriminator(sample).mean())
            code = -self.code_discriminator(z_enc).mean()
        else:
            adversarial = generator_loss(self.discriminator(reconstruction), self.discriminator(sample))
            code = generator_loss(self.code_discriminator(z_enc))
        loss = cfg.recon_weight * recon + cfg.adversarial_weight * adversarial + cfg.code_weight * code
        self._opt_eg.zero_grad(set_to_none=True)
        loss.backward()
        self._opt_eg.step()
        self._set_discriminators_trainable(True)

        losses = {"encoder_generator_loss": loss.item(), "l1_recon": recon.item(), "adversarial": adversarial.item(),
                  "code_adversarial": code.item()}
        update = self._update_critics if critics else self._update_discriminators
        return {**losses, **update(x, reconstruction.detach(), sample.detach(), z_prior, z_enc.detach())}

    def _update_discriminators(self, x: torch.Tensor, reconstruction: torch.Tensor, sample: torch.Tensor,
                               z_prior: torch.Tensor, z_enc: torch.Tensor) -> dict[str, float]:
        """One step of D and C on the non-saturating GAN losses (Rosca et al.)."""
        d_loss = discriminator_loss(self.discriminator(x), self.discriminator(reconstruction), self.discriminator(sample))
        c_loss = discriminator_loss(self.code_discriminator(z_prior), self.code_discriminator(z_enc))
        self._opt_d.zero_grad(set_to_none=True)
        self._opt_c.zero_grad(set_to_none=True)
        (d_loss + c_loss).backward()
        self._opt_d.step()
        self._opt_c.step()
        return {"discriminator_loss": d_loss.item(), "code_discriminator_loss": c_loss.item()}

    def _update_critics(self, x: torch.Tensor, reconstruction: torch.Tensor, sample: torch.Tensor,
                        z_prior: torch.Tensor, z_enc: torch.Tensor) -> dict[str, float]:
        """One WGAN-GP step of the image critic D and of the code critic C (Kwon et al.)."""
        d_loss, wasserstein, d_penalty = wgan_gp_critic_step(self.discriminator, self._opt_d, x,
                                                             [reconstruction, sample], self.config.gp_weight)
        c_loss, code_wasserstein, _ = wgan_gp_critic_step(self.code_discriminator, self._opt_c, z_prior, [z_enc],
                                                          self.config.gp_weight)
        return {"critic_loss": d_loss.item(), "wasserstein": wasserstein.item(), "gradient_penalty": d_penalty.item(),
                "code_critic_loss": c_loss.item(), "code_wasserstein": code_wasserstein.item()}

    def _set_discriminators_trainable(self, flag: bool) -> None:
        self.discriminator.requires_grad_(flag)
        self.code_discriminator.requires_grad_(flag)

    def encode_point(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator(self.encoder(x))
