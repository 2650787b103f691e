"""VAE-GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric",
arXiv 1512.09300).

Encoder q(z|x) = N(mu, diag sigma^2) with z_enc reparameterised, decoder/generator G, GAN
discriminator D whose last hidden layer Dis_l(x) (the trunk's features) measures similarity.
With x_rec = G(z_enc) and x_p = G(z_p), z_p ~ N(0, I) (Section 2, Algorithm 1):

    L_prior = KL(q(z|x) || N(0, I))                                   (nats, per image)
    L_llike = 1/2 ||Dis_l(x) - Dis_l(x_rec)||^2                       (Gaussian in feature space, per image)
    L_GAN   = log D(x) + log(1 - D(x_rec)) + log(1 - D(x_p))

    encoder:       kl_weight * L_prior + L_llike
    decoder:       gamma * L_llike - L_GAN     (non-saturating: -log D(x_rec) - log D(x_p))
    discriminator: -L_GAN                      (binary cross-entropy on logits)

The encoder and decoder are updated from their own losses (the encoder gets no GAN gradient,
the decoder no KL gradient), as in Algorithm 1. ``gamma`` weighs the decoder's content term
against its GAN term; Larsen et al. do not print the value they used, 1e-2 is ours (the feature
distance is a sum over 4*4*4*width features, so it is large beside the per-image GAN term).
The pixel L1 of the reconstruction is logged as ``pixel_l1``, a diagnostic that is not trained on.
Optimiser: Adam (Larsen et al. used RMSProp, lr 3e-4), lr 3e-4, betas (0.5, 0.999).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gvae_bench.contracts.benchmark import DataSpec
from gvae_bench.registry import MODELS
from gvae_bench.contracts.model import BatchSource, GaussianEncoderMixin, GenerativeModel, GeneratorMixin, ModelConfig, adam
from gvae_bench.models.losses import discriminator_loss, generator_loss, kl_to_standard_normal, l1_reconstruction, reparameterise
from gvae_bench.models.networks import build_critic, build_encoder, build_generator


@dataclass
class VAEGANConfig(ModelConfig):
    """VAE-GAN settings: ``gamma`` (decoder content vs GAN), ``kl_weight``, Adam ``lr``/``betas``."""

    latent_dim: int = 128
    width: int = 64
    lr: float = 3e-4
    betas: tuple[float, float] = (0.5, 0.999)
    gamma: float = 1e-2
    kl_weight: float = 1.0

    def validate(self) -> None:
        super().validate()
        self.require(positive=("lr",), non_negative=("gamma", "kl_weight"))


@MODELS.register("vae_gan")
class VAEGAN(GaussianEncoderMixin, GeneratorMixin, GenerativeModel):
    """VAE-GAN (Larsen et al. 2016): VAE whose reconstruction is measured in the discriminator's features."""

    Config = VAEGANConfig
    can_reconstruct = True

    def __init__(self, config: VAEGANConfig, data: DataSpec) -> None:
        super().__init__(config, data)
        self.encoder = build_encoder(data.shape, config.latent_dim, config.width, gaussian=True)
        self.generator = build_generator(data.shape, config.latent_dim, config.width, output=self.output_activation())
        self.discriminator = build_critic(data.shape, config.width)
        self._opt_e = adam(self.encoder.parameters(), config.lr, config.betas)
        self._opt_g = adam(self.generator.parameters(), config.lr, config.betas)
        self._opt_d = adam(self.discriminator.parameters(), config.lr, config.betas)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"encoder": self._opt_e, "generator": self._opt_g, "discriminator": self._opt_d}

    def train_step(self, next_batch: BatchSource) -> dict[str, float]:
        cfg = self.config
        x = next_batch()
        dis = self.discriminator
        mu, logvar = self.encode(x)
        reconstruction = self.generator(reparameterise(mu, logvar))
        sample = self.generator(torch.randn_like(mu))

        # discriminator: -L_GAN on detached fakes
        d_loss = discriminator_loss(dis(x), dis(reconstruction.detach()), dis(sample.detach()))
        self._opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self._opt_d.step()

        # encoder and decoder, each from its own loss, against the updated discriminator
        dis.requires_grad_(False)
        features_real = dis.trunk(x).detach()
        features_rec = dis.trunk(reconstruction)
        llike = 0.5 * (features_real - features_rec).pow(2).sum(dim=1).mean()
        kl = kl_to_standard_normal(mu, logvar).mean()
        gan = generator_loss(dis.head(features_rec), dis(sample))
        encoder_loss = cfg.kl_weight * kl + llike
        decoder_loss = cfg.gamma * llike + gan
        self._opt_e.zero_grad(set_to_none=True)
        self._opt_g.zero_grad(set_to_none=True)
        encoder_grads = torch.autograd.grad(encoder_loss, list(self.encoder.parameters()), retain_graph=True)
        decoder_loss.backward()
        for parameter, grad in zip(self.encoder.parameters(), encoder_grads):
            parameter.grad = grad
        self._opt_e.step()
        self._opt_g.step()
        dis.requires_grad_(True)
        return {"discriminator_loss": d_loss.item(), "decoder_loss": decoder_loss.item(),
                "encoder_loss": encoder_loss.item(), "feature_recon": llike.item(), "kl": kl.item(),
                "generator_gan": gan.item(), "pixel_l1": l1_reconstruction(x, reconstruction).mean().item()}

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        mu, _ = self.encode(x)
        return self.generator(mu)
