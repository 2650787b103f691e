"""VAE (Kingma and Welling 2013, "Auto-Encoding Variational Bayes", arXiv 1312.6114).

Encoder q(z|x) = N(mu(x), diag(sigma^2(x))), prior p(z) = N(0, I), decoder p(x|z). Trained by
minimising the negative ELBO per image, averaged over the batch:

    L(x) = E_{q(z|x)}[-log p(x|z)] + kl_weight * KL(q(z|x) || p(z)),

with one reparameterised sample z = mu + sigma * eps (Section 2.4) and the KL in closed form
(Appendix B). kl_weight = 1 is the true ELBO; other values are the beta-VAE of Higgins et al. 2017.

Observation models p(x|z) (``likelihood``):

* ``bernoulli``: decoder logits l, -log p(x|z) = sum_pixels BCE(sigmoid(l), (x + 1) / 2). On binary
  pixels this is the Bernoulli likelihood of the log-likelihood literature; on grey pixels in
  [0, 1] it is the cross-entropy commonly used in its place (not a normalised density).
* ``gaussian``: -log p(x|z) = sum ((x - mu(z))^2 / (2 s^2) + log s + log(2 pi) / 2), s = ``obs_scale``.
* ``laplace``: -log p(x|z) = sum (|x - mu(z)| / b + log(2 b)), b = ``obs_scale``.
* ``auto`` (default): ``bernoulli`` for data in [-1, 1] (images, CT), ``gaussian`` for unbounded
  points; the resolved value is
  what the run record stores.

Networks (``network``): ``auto`` takes the family for the data's shape (models/networks.py);
``mlp_tanh`` at width 200, latent 50 and ``eps`` 1e-4 is the reference VAE of the log-likelihood
literature (Burda, Grosse and Salakhutdinov 2015: 784-200-200-50, tanh, Bernoulli decoder, Adam
with epsilon 1e-4), used by the ``likelihood`` profile to check the harness against their
published -86.76 nats.

Encoder input (``encoder_input``): ``data`` feeds the encoder the data as stored ([-1, 1] for
images); ``unit`` feeds it (x + 1) / 2, so binarized pixels arrive as {0, 1} as in Burda et al.'s
network (the ``likelihood`` profile; models/networks.py ``UnitIntervalInput`` says what {-1, 1}
costs there). The decoder and every likelihood are unchanged by it.

Samples are the decoder's mean E[x|z] for z ~ N(0, I), mapped to the data's range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gvae_bench.contracts.benchmark import DataSpec
from gvae_bench.config import added_field
from gvae_bench.registry import MODELS
from gvae_bench.contracts.model import BatchSource, GaussianEncoderMixin, GenerativeModel, ModelConfig, adam
from gvae_bench.models.losses import kl_to_standard_normal, reparameterise
from gvae_bench.models.networks import UnitIntervalInput, build_encoder, build_generator

LIKELIHOODS = ("auto", "bernoulli", "gaussian", "laplace")
ENCODER_INPUTS = ("data", "unit")


@dataclass
class VAEConfig(ModelConfig):
    """VAE settings. ``lr``/``betas``/``eps``: Adam; ``kl_weight``: weight of the KL term;
    ``likelihood``/``obs_scale``: the observation model; ``network``: the network family (``auto``: by
    the data's shape); ``encoder_input``: ``data`` or ``unit`` (see the module docstring)."""

    latent_dim: int = 32
    width: int = 32
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    kl_weight: float = 1.0
    likelihood: str = "auto"
    obs_scale: float = 0.1
    network: str = added_field("auto", since="0.2")
    encoder_input: str = added_field("data", since="0.3")

    def validate(self) -> None:
        super().validate()
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {self.likelihood!r}")
        if self.encoder_input not in ENCODER_INPUTS:
            raise ValueError(f"encoder_input must be one of {', '.join(ENCODER_INPUTS)}, got {self.encoder_input!r}")
        self.require(positive=("lr", "obs_scale"), non_negative=("kl_weight",))

    def for_data(self, data: DataSpec) -> "VAEConfig":
        if self.likelihood != "auto":
            return self
        return self.replace(likelihood="bernoulli" if data.value_range is not None else "gaussian")


@MODELS.register("vae")
class VAE(GaussianEncoderMixin, GenerativeModel):
    """VAE (Kingma & Welling 2013): Gaussian encoder, decoder trained on the negative ELBO."""

    Config = VAEConfig
    can_reconstruct = True
    can_decode = True
    has_observation_model = True

    def __init__(self, config: VAEConfig, data: DataSpec) -> None:
        config = config.for_data(data)
        super().__init__(config, data)
        out = "identity" if config.likelihood == "bernoulli" else self.output_activation()
        family = None if config.network == "auto" else config.network
        encoder = build_encoder(data.shape, config.latent_dim, config.width, gaussian=True, family=family)
        self.encoder = nn.Sequential(UnitIntervalInput(), encoder) if config.encoder_input == "unit" else encoder
        self.decoder = build_generator(data.shape, config.latent_dim, config.width, output=out, family=family)
        self._optimizer = adam(self.parameters(), config.lr, config.betas, config.eps)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"vae": self._optimizer}

    def _mean(self, decoder_output: torch.Tensor) -> torch.Tensor:
        """E[x|z] in the data's range."""
        if self.config.likelihood == "bernoulli":
            return torch.sigmoid(decoder_output) * 2.0 - 1.0
        return decoder_output

    def reconstruction_nll(self, x: torch.Tensor, decoder_output: torch.Tensor) -> torch.Tensor:
        """Per-sample -log p(x|z) in nats under the configured observation model."""
        kind, scale = self.config.likelihood, self.config.obs_scale
        if kind == "bernoulli":
            target = (x + 1.0) / 2.0
            nll = F.binary_cross_entropy_with_logits(decoder_output, target, reduction="none")
        elif kind == "gaussian":
            nll = (x - decoder_output).pow(2) / (2 * scale**2) + math.log(scale) + 0.5 * math.log(2 * math.pi)
        else:
            nll = (x - decoder_output).abs() / scale + math.log(2 * scale)
        return nll.flatten(1).sum(dim=1)

    def negative_elbo(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-sample (loss, reconstruction NLL, KL) with one reparameterised sample."""
        mu, logvar = self.encode(x)
        decoded = self.decoder(reparameterise(mu, logvar))
        recon = self.reconstruction_nll(x, decoded)
        kl = kl_to_standard_normal(mu, logvar)
        return recon + self.config.kl_weight * kl, recon, kl

    def train_step(self, next_batch: BatchSource) -> dict[str, float]:
        x = next_batch()
        loss, recon, kl = self.negative_elbo(x)
        loss = loss.mean()
        self._optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._optimizer.step()
        return {"loss": loss.item(), "recon_nll": recon.mean().item(), "kl": kl.mean().item()}

    def sample(self, n: int) -> torch.Tensor:
        z = torch.randn(n, self.config.latent_dim, device=self.device)
        return self.decode(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self._mean(self.decoder(z))

    def observation_log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per sample under the configured observation model (the training objective's)."""
        return -self.reconstruction_nll(x, self.decoder(z))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        mu, _ = self.encode(x)
        return self._mean(self.decoder(mu))
