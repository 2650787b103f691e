"""Profiles (smoke, quick, paper) as data, and the train/eval config dataclasses they fill.

The settings live in ``profiles.toml`` beside this file; see its header for the format.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gvae_bench.config import ConfigBase, added_field
from gvae_bench.errors import UserError

PROFILES_FILE = Path(__file__).with_name("profiles.toml")
PRECISIONS = ("fp32", "bf16")


@dataclass
class TrainConfig(ConfigBase):
    """The training loop's settings.

    ``steps``: model updates (for GANs, generator updates); ``batch_size``; ``checkpoint_every``:
    steps between atomic checkpoints; ``checkpoint_seconds``: also a checkpoint at the first step
    boundary once this many seconds have passed since the last one (0: by steps only), so a crash
    loses at most that much training; never part of the config hash, as where a run checkpoints
    does not change what it computes (resume is exact); ``log_every``: steps between loss-log rows;
    ``threads``: torch CPU threads for the run (0: leave torch's default);
    ``lr_decay_every``/``lr_decay``: every N steps multiply every optimiser's learning rate by
    ``lr_decay`` (0: constant; a staircase like Burda et al. 2015's 10^(-1/7) per stage);
    ``snapshot_every``: keep the weights every N steps in ``snapshots/step<N>.pt`` (0: none), for
    curves of a metric against training time (``runner.py curve``);
    ``precision``: ``fp32``, or ``bf16`` (training steps under bfloat16 autocast, weights and
    optimiser state in float32; evaluation always in float32);
    ``channels_last``: keep 4-D image models and batches in channels-last memory layout (faster
    convolutions on recent GPUs; the same maths).
    """

    steps: int = 1000
    batch_size: int = 64
    checkpoint_every: int = 250
    log_every: int = 10
    threads: int = 0
    lr_decay_every: int = added_field(0, since="0.2")
    lr_decay: float = added_field(1.0, since="0.2")
    snapshot_every: int = added_field(0, since="0.2")
    precision: str = added_field("fp32", since="0.2")
    channels_last: bool = added_field(False, since="0.2")
    checkpoint_seconds: float = added_field(120.0, since="0.3")

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        self.require_at_least(1, "steps", "batch_size", "checkpoint_every", "log_every")
        self.require(positive=("lr_decay",),
                     non_negative=("threads", "lr_decay_every", "snapshot_every", "checkpoint_seconds"))

    def hash_dict(self) -> dict[str, Any]:
        """``ConfigBase.hash_dict`` without ``checkpoint_seconds`` at any value: runs that differ only
        in how often they checkpoint compute the same thing, so they share a folder and their seeds."""
        values = super().hash_dict()
        values.pop("checkpoint_seconds", None)
        return values


@dataclass
class EvalConfig(ConfigBase):
    """Evaluation sample counts.

    ``n_samples``: generated samples, and real test samples, for the distribution metrics (MMD);
    ``ms_ssim_pairs``: random pairs for MS-SSIM; ``mmd_block_size``: rows per block of the kernel
    matrix; ``grid_size``: samples in the PNG grid.
    Likelihood metrics: ``likelihood_images`` (the first N test images), ``elbo_samples`` (draws of
    q(z|x) per image for the ELBO terms), ``iwae_k`` importance samples in chunks of
    ``iwae_chunk``, AIS on ``ais_images`` images with ``ais_chains`` chains of ``ais_steps``
    intermediate distributions and ``ais_leapfrog`` leapfrog steps per HMC move, and
    ``heldout_images`` (the last N test images, never scored) to choose an observation model's
    free parameter.
    ``mode_samples``: generated and real samples for the classifier-read mode metrics (``modes``,
    ``mode_kl`` on Stacked MNIST; 0: ``n_samples``). The published Stacked MNIST rows count modes in
    26,000 samples (VEEGAN, PacGAN), and both metrics depend on the count (a uniform model covers
    1000 (1 - e^(-n/1000)) modes in expectation), so they are only comparable at the same n.
    ``frd_samples``: generated samples, and at most as many real test and real training samples,
    for the Frechet Radiomics Distance on CT (``frd``); its radiomic features are extracted on the
    CPU, one image at a time (about 0.25 s a slice, 0.5 s a 16^3 patch), so it has its own count.
    """

    n_samples: int = 5000
    ms_ssim_pairs: int = 2000
    mmd_block_size: int = 2048
    grid_size: int = 64
    # likelihood metrics (metrics/likelihood.py); the defaults are the quick profile's
    likelihood_images: int = added_field(500, since="0.2")
    elbo_samples: int = added_field(10, since="0.2")
    iwae_k: int = added_field(100, since="0.2")
    iwae_chunk: int = added_field(50, since="0.2")
    ais_images: int = added_field(20, since="0.2")
    ais_chains: int = added_field(4, since="0.2")
    ais_steps: int = added_field(100, since="0.2")
    ais_leapfrog: int = added_field(5, since="0.2")
    heldout_images: int = added_field(50, since="0.2")
    mode_samples: int = added_field(0, since="0.3")
    frd_samples: int = added_field(1000, since="0.4")

    def validate(self) -> None:
        self.require(non_negative=("mode_samples",))
        self.require_at_least(2, "n_samples", "ms_ssim_pairs", "mmd_block_size", "grid_size", "frd_samples")
        self.require_at_least(1, "likelihood_images", "elbo_samples", "iwae_k", "iwae_chunk", "ais_images",
                              "ais_chains", "ais_steps", "ais_leapfrog", "heldout_images")


def load_profiles(path: Path = PROFILES_FILE) -> dict[str, dict[str, Any]]:
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def profile_names() -> list[str]:
    return list(load_profiles())


def get_profile(name: str) -> dict[str, Any]:
    profiles = load_profiles()
    if name not in profiles:
        raise UserError(f"unknown profile {name!r}; profiles: {', '.join(profiles)}")
    return profiles[name]


def tuned_from(name: str) -> str | None:
    """The profile whose tuning studies a profile applies (its ``tuned_from`` key), or None: such a
    profile runs each model with its best configuration from ``runner.py tune`` (``gvae_bench.tuning``)."""
    value = get_profile(name).get("tuned_from")
    if value is not None and value not in load_profiles():
        raise UserError(f"profile {name}: tuned_from names the unknown profile {value!r}")
    return value


def resolve_profile(name: str, model: str, benchmark: str, family: str,
                    _seen: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """The settings a profile gives one (model, benchmark, family): the sections ``train``,
    ``eval``, ``benchmark``, ``model`` and ``classifier`` after every matching override, in file order;
    a profile with a ``base`` starts from its base's settings for the same run."""
    profile = get_profile(name)
    keys = ("train", "eval", "benchmark", "model", "classifier")
    base = profile.get("base")
    if base is not None:
        if base == name or base in _seen:
            raise UserError(f"profile {name}: its base chain {' -> '.join((*_seen, name, base))} is a loop")
        sections = resolve_profile(base, model, benchmark, family, (*_seen, name))
        for key in keys:
            sections[key].update(profile.get(key, {}))
    else:
        sections = {key: dict(profile.get(key, {})) for key in keys}
    facts = {"model": model, "benchmark": benchmark, "family": family}
    for rule in profile.get("override", []):
        match = rule.get("match", {})
        unknown = set(match) - set(facts)
        if unknown:
            raise UserError(f"profile {name}: override matches on unknown key(s) {sorted(unknown)}; use {sorted(facts)}")
        if all(facts[key] in value if isinstance(value, list) else facts[key] == value for key, value in match.items()):
            for section in sections:
                sections[section].update(rule.get(section, {}))
    return sections


def tuned_entry(out: Path | str, dataset: str, model: str,
                profile: str | None = None) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """The best configuration of ``model`` on ``dataset`` (field, value pairs) and where it came from
    (the file, its SHA-256, the study, the trial, its validation score): ``UserError`` when there is none.

    A profile with ``tuned_from`` runs each model with this entry of ``<out>/tuning/<dataset>/best_configs.toml``
    (written by ``runner.py tune``, ``gvae_bench.tuning``); the lookup lives here so the run layer needs no tuning."""
    import hashlib

    path = Path(out) / "tuning" / dataset / "best_configs.toml"
    if not path.is_file():
        raise UserError(f"no tuned configurations for {dataset} under {path.parent}; run `runner.py tune --dataset "
                        f"{dataset} ...` first, or point --tuned-from at a folder holding tuning/{dataset}/")
    raw = path.read_bytes()
    try:
        configs = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{path} is not a best-configurations file (TOML): {exc}") from None
    if model not in configs:
        raise UserError(f"{model} has no tuned configuration for {dataset} in {path} (tuned: {', '.join(configs) or 'none'})")
    profiles = configs[model]
    if profile is None:
        if len(profiles) != 1:
            raise UserError(f"{model} is tuned on {dataset} under profiles {', '.join(profiles)}; name one")
        profile = next(iter(profiles))
    if profile not in profiles:
        raise UserError(f"{model} has no tuned configuration for {dataset} under profile {profile!r} in {path}")
    entry = profiles[profile]
    fields = [(key, tuple(value) if isinstance(value, list) else value) for key, value in entry["model"].items()]
    info = {"best_configs": str(path), "best_configs_sha256": hashlib.sha256(raw).hexdigest(), "tuned_profile": profile,
            **{key: entry[key] for key in ("study", "trial", "score", "value") if key in entry}}
    return fields, info
