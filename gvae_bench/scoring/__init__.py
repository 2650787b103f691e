"""Score two sets of images with the harness's metrics, outside a training run: ``gvae_bench.score``.

    from gvae_bench import score
    result = score("samples/", "benchmark:mnist:test", ...)     # or arrays, tensors, .npy/.npz files
    print(result.table()); result.write("scores/")

The protocol is a run's evaluation (``gvae_bench/execution/evaluation.py``, ``EvalContext``) with the run's model replaced
by the given fake set, so that the samples of a run scored against its benchmark's test split give the run's
recorded values:

* ``n`` (default: every fake sample) fake samples, the first ``n``; the real set's seeded subset of ``n`` rows
  (``EvalContext.real_test``: all of them when the set has no more than ``n``); with ``train``, its seeded subset
  of ``n`` rows in the place of the samples gives each metric's ``reference`` (real train against real test);
* every random draw (subsets, KID's subsets, MS-SSIM's pairs) comes from a generator seeded by ``seed`` and the
  draw's name, as ``EvalContext.generator`` seeds it;
* MMD^2 uses the harness's bandwidth on the whole real set (``functional.harness_bandwidth``); FID, KID, precision,
  recall, density, coverage, Vendi, C_T and authenticity read ``dataset``'s domain classifier's features
  (``functional.domain_features``: the pinned classifier for MNIST and Fashion-MNIST), and are n/a without a
  dataset; C_T and authenticity also need ``train``.

Differences from a run, by design: MS-SSIM's ``reference`` is the real set's own mean MS-SSIM over the same index
pairs as the fake set's (so that a set scored against itself gets its own value twice), where a run draws the real
pairs separately; ``authenticity``'s reference is the real set in the place of the samples, and C_T's cells hold
all of the real set (a run splits its test set into P_n and held-out rows).

The features of the real and training sets are cached on disk (``cache_folder("features")``), keyed by the
SHA-256 of the images and of the classifier's weights, and read back with ``safe_load`` (tensors only).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from gvae_bench.errors import UserError
from gvae_bench.execution.training import duration_text, progress_log
from gvae_bench.scoring.inputs import ImageSet, load_image_set

log = logging.getLogger(__name__)

__all__ = ["ALL_METRICS", "FEATURE_METRICS", "ScoreResult", "score"]

#: what ``score`` computes, in its table's order
ALL_METRICS = ("mmd", "ms_ssim", "fid", "kid", "precision", "recall", "density", "coverage", "vendi", "copying",
               "authenticity")
#: the metrics that read the domain classifier's features
FEATURE_METRICS = frozenset(ALL_METRICS[2:])
_NEED_TRAIN = frozenset({"copying", "authenticity"})
_LOWER_IS_BETTER = frozenset({"mmd", "ms_ssim", "fid", "kid"})


def _generator(seed: int, purpose: str) -> torch.Generator:
    """The CPU generator ``EvalContext.generator`` gives a run of seed ``seed`` for ``purpose`` (the same formula)."""
    digest = int(hashlib.sha256(f"{seed}:{purpose}".encode()).hexdigest()[:15], 16)
    return torch.Generator().manual_seed(digest)


def _subset(images: torch.Tensor, n: int, seed: int, purpose: str) -> torch.Tensor:
    """``EvalContext._seeded_subset``: ``n`` rows drawn by a seeded permutation, all rows when n >= their count."""
    if n >= len(images):
        return images
    return images[torch.randperm(len(images), generator=_generator(seed, purpose))[:n]]


@dataclass
class ScoreResult:
    """The metrics of one ``score`` call and what makes them traceable: each metric's ``value``, ``reference``,
    sample counts and ``details`` (or ``na`` with the reason), the sets' sources, counts and SHA-256, the
    classifier's version and SHA-256, the seed and the software versions.

    ``provenance["seconds"]`` holds each metric's wall time on this machine, apart from the values (which do not
    depend on it): the first metric that reads the domain classifier's features also computes them, and of two
    metrics that share one computation (precision and recall, density and coverage) the first pays for it."""

    metrics: dict[str, dict[str, Any]]
    provenance: dict[str, Any] = field(default_factory=dict)

    def value(self, name: str) -> float | None:
        return self.metrics[name].get("value")

    def table(self) -> str:
        from tabulate import tabulate

        rows = []
        for name, entry in self.metrics.items():
            arrow = "↓" if name in _LOWER_IS_BETTER else ("" if name == "copying" else "↑")
            if entry.get("value") is None:
                rows.append([f"{name} {arrow}".strip(), "n/a", "", "", "", entry.get("na", "")])
                continue
            reference = entry.get("reference")
            rows.append([f"{name} {arrow}".strip(), f"{entry['value']:.6g}",
                         "" if reference is None else f"{reference:.6g}", entry["n_fake"], entry["n_real"], ""])
        return tabulate(rows, headers=["metric", "fake vs real", "reference", "n fake", "n real", "n/a because"],
                        tablefmt="github")

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": self.metrics, **self.provenance}

    def write(self, folder: Path | str) -> tuple[Path, Path]:
        """``scores.json`` (everything) and ``scores.csv`` (one row per metric) in ``folder``."""
        from gvae_bench.atomic import atomic_write_json

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        json_path, csv_path = folder / "scores.json", folder / "scores.csv"
        atomic_write_json(json_path, self.to_dict())
        classifier = self.provenance.get("classifier") or {}
        with csv_path.open("w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["metric", "value", "reference", "n_fake", "n_real", "na", "classifier_sha256",
                             "real_sha256", "fake_sha256", "seed"])
            for name, entry in self.metrics.items():
                uses_classifier = name in FEATURE_METRICS and entry.get("value") is not None
                writer.writerow([name, entry.get("value"), entry.get("reference"), entry.get("n_fake"),
                                 entry.get("n_real"), entry.get("na", ""),
                                 classifier.get("sha256", "") if uses_classifier else "",
                                 self.provenance["real"]["sha256"], self.provenance["fake"]["sha256"],
                                 self.provenance["seed"]])
        return json_path, csv_path


class _Features:
    """The domain classifier's features of the sets, computed once; the real and training sets' cached on disk."""

    def __init__(self, dataset: str, data_root: Path | str | None, classifier_config: Any) -> None:
        from gvae_bench.functional.features import domain_classifier

        self.classifier, self.record = domain_classifier(dataset, data_root, classifier_config)
        self.classifier.eval()
        self.sha256 = self.record.get("sha256") or self._weights_sha256()
        self._memory: dict[str, torch.Tensor] = {}

    def _weights_sha256(self) -> str:
        digest = hashlib.sha256()
        for name, tensor in sorted(self.classifier.state_dict().items()):
            digest.update(name.encode())
            digest.update(memoryview(tensor.detach().cpu().contiguous().numpy()).cast("B"))
        return digest.hexdigest()

    def check(self, images: torch.Tensor, dataset: str) -> None:
        channels, size = int(self.record.get("channels", 1)), int(self.record.get("size", 28))
        if images.dim() != 4 or images.shape[2:] != (size, size) or images.shape[1] % channels:
            raise UserError(f"{dataset}'s domain classifier reads {channels}-channel {size}x{size} px images; the sets "
                            f"are {tuple(images.shape[1:])}: choose the dataset the images come from (--dataset)")

    def of(self, images: torch.Tensor, cache: bool) -> torch.Tensor:
        from gvae_bench.functional.features import read_channel_groups

        content = hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()
        key = hashlib.sha256(f"{self.sha256}:{tuple(images.shape)}:{content}".encode()).hexdigest()[:32]
        if key in self._memory:
            return self._memory[key]
        path = _feature_cache() / f"{key}.pt"
        features = None
        if cache and path.is_file():
            from gvae_bench.execution.checkpoints import safe_load

            stored = safe_load(path)
            features = stored.get("features") if isinstance(stored, dict) else None
            if features is None or len(features) != len(images):
                log.warning("%s is not a feature file of these images; computing them again", path)
                features = None
        if features is None:
            features = read_channel_groups(self.classifier, images)
            if cache:
                from gvae_bench.atomic import atomic_save

                atomic_save(path, lambda buffer: torch.save({"features": features, "classifier_sha256": self.sha256},
                                                            buffer))
        self._memory[key] = features
        return features


def _feature_cache() -> Path:
    from gvae_bench.execution.checkpoints import cache_folder

    return cache_folder("features")


def _metric_functions(n_pairs: int, seed: int, block_size: int) -> dict[str, Callable[..., Any]]:
    """name -> f(sets) -> (value, reference or None, details); ``sets`` gives images and features by name."""
    from gvae_bench import functional as F
    from gvae_bench.functional.kid import KID_SUBSET_SIZE, KID_SUBSETS
    from gvae_bench.functional.prdc import DENSITY_COVERAGE_K, PRECISION_RECALL_K

    def mmd(s: _Sets) -> tuple[float, float | None, dict[str, Any]]:
        h = F.harness_bandwidth(s.real_all)
        reference = None
        if s.train_all is not None:
            order = torch.randperm(len(s.train_all), generator=_generator(seed, "mmd_reference"))[: len(s.real)]
            reference = F.gaussian_kernel_mmd2_unbiased(s.train_all[order], s.real, h, block_size)
        return F.gaussian_kernel_mmd2_unbiased(s.fake, s.real, h, block_size), reference, {
            "bandwidth": h, "bandwidth_rule": "median squared distance, 1000 rows of the real set, seed 0"}

    def ms_ssim(s: _Sets) -> tuple[float, float | None, dict[str, Any]]:
        value, settings = F.ms_ssim_diversity(s.fake, n_pairs, _generator(seed, "ms_ssim_fake"), (-1.0, 1.0))
        reference = None
        if len(s.real) == len(s.fake):  # the same index pairs: a set against itself gets its own value twice
            reference, _ = F.ms_ssim_diversity(s.real, n_pairs, _generator(seed, "ms_ssim_fake"), (-1.0, 1.0))
        return value, reference, {"pairs": n_pairs, "scales": len(settings.betas),
                                  "kernel_size": settings.kernel_size, "reference": "the real set's own MS-SSIM"}

    def fid(s: _Sets) -> tuple[float, float | None, dict[str, Any]]:
        fake, real, train = s.features("fake"), s.features("real"), s.features("train")
        problem = F.too_few_for_covariance(min(len(fake), len(train) if train is not None else len(fake)), len(real),
                                           real.shape[1])
        if problem is not None:
            raise _NotApplicable(problem)
        return (F.frechet_distance(fake, real), None if train is None else F.frechet_distance(train, real), {})

    def kid(s: _Sets) -> tuple[float, float | None, dict[str, Any]]:
        fake, real, train = s.features("fake"), s.features("real"), s.features("train")
        mean, std = F.kernel_inception_distance(fake, real, KID_SUBSETS, KID_SUBSET_SIZE, _generator(seed, "kid"))
        reference = None if train is None else F.kernel_inception_distance(
            train, real, KID_SUBSETS, KID_SUBSET_SIZE, _generator(seed, "kid"))[0]
        return mean, reference, {"std": std, "n_subsets": KID_SUBSETS,
                                 "subset_size": min(KID_SUBSET_SIZE, len(fake), len(real))}

    def pair(function: Callable[..., tuple[float, float]], k: int, part: int) -> Callable[[_Sets], Any]:
        def compute(s: _Sets) -> tuple[float, float | None, dict[str, Any]]:
            real, train = s.features("real"), s.features("train")
            value = s.cached(f"{function.__name__}:fake", lambda: function(real, s.features("fake"), k=k))[part]
            reference = None if train is None else s.cached(f"{function.__name__}:train",
                                                            lambda: function(real, train, k=k))[part]
            return value, reference, {"k": k}
        return compute

    def vendi(s: _Sets) -> tuple[float, float | None, dict[str, Any]]:
        return F.vendi_score(s.features("fake")), F.vendi_score(s.features("real")), {
            "kernel": "cosine similarity, uncentred features", "reference": "the real set's own Vendi score"}

    def copying(s: _Sets) -> tuple[float, float | None, dict[str, Any]]:
        real = s.features("real").double()
        cells = min(50, max(1, len(real) // 200))
        try:
            result = F.copying_statistic(s.features("fake").double(), real, s.features("train_all").double(), cells)
        except ValueError as exc:
            raise _NotApplicable(f"C_T is undefined at these sample counts: {exc}") from None
        return result.c_t, None, {"cells": cells, "cells_used": result.cells_used, "stouffer_z": result.stouffer_z}

    def authenticity(s: _Sets) -> tuple[float, float | None, dict[str, Any]]:
        train = s.features("train_all").double()
        return (F.authenticity(s.features("fake").double(), train), F.authenticity(s.features("real").double(), train),
                {"reference": "the real set in the place of the samples"})

    return {"mmd": mmd, "ms_ssim": ms_ssim, "fid": fid, "kid": kid,
            "precision": pair(F.precision_recall, PRECISION_RECALL_K, 0),
            "recall": pair(F.precision_recall, PRECISION_RECALL_K, 1),
            "density": pair(F.density_coverage, DENSITY_COVERAGE_K, 0),
            "coverage": pair(F.density_coverage, DENSITY_COVERAGE_K, 1),
            "vendi": vendi, "copying": copying, "authenticity": authenticity}


class _NotApplicable(Exception):
    """The samples at hand leave a metric undefined (too few for a covariance, no cell for C_T)."""


@dataclass
class _Sets:
    """The sets one ``score`` call compares, and their features (computed on first use)."""

    fake: torch.Tensor
    real: torch.Tensor
    real_all: torch.Tensor
    train: torch.Tensor | None
    train_all: torch.Tensor | None
    extractor: _Features | None
    cache: bool
    _memo: dict[str, Any] = field(default_factory=dict)

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def features(self, which: str) -> torch.Tensor | None:
        images = {"fake": self.fake, "real": self.real, "train": self.train, "train_all": self.train_all}[which]
        if images is None or self.extractor is None:
            return None
        return self.cached(f"features:{which}", lambda: self.extractor.of(images, self.cache and which != "fake"))


def score(real: Any, fake: Any, metrics: list[str] | tuple[str, ...] | None = None, dataset: str | None = None, *,
          train: Any = None, n: int | None = None, seed: int = 0, ms_ssim_pairs: int = 2000,
          data_root: Path | str | None = None, value_range: tuple[float, float] | None = None,
          classifier_config: Any = None, cache: bool = True, mmd_block_size: int = 2048) -> ScoreResult:
    """The harness's metrics of ``fake`` against ``real`` (the protocol is in the module docstring).

    Args:
        real, fake: a folder of PNG/JPEG images, a ``.npy``/``.npz`` file, ``benchmark:NAME:SPLIT``, or an array
            or tensor (``gvae_bench.scoring.inputs.load_image_set``); the same per-sample shape.
        metrics: names from ``ALL_METRICS`` (default: all of them; those that cannot apply are n/a with why).
        dataset: the registered benchmark whose domain classifier gives the feature space (mnist, ...).
        train: optional training set: the references, and C_T and authenticity.
        n: samples per set (default: every fake sample); the real and training sets give a seeded subset of n.
        seed: the seed of every random draw, as a run's seed seeds its evaluation.
        ms_ssim_pairs: pairs for MS-SSIM (a run's ``eval.ms_ssim_pairs``; default 2000 as ``EvalConfig``).
        value_range: the range of floating-point arrays (default (-1, 1)).
        classifier_config: a ``ClassifierConfig`` (default: the pinned classifier's settings).
        cache: keep the real and training sets' features on disk.

    Raises:
        UserError: unreadable sets, mismatched shapes, too few samples, unknown metric names (one line each).
    """
    names = list(metrics) if metrics else list(ALL_METRICS)
    unknown = sorted(set(names) - set(ALL_METRICS))
    if unknown:
        raise UserError(f"unknown metric(s) {', '.join(unknown)}; score computes {', '.join(ALL_METRICS)}")
    sets = {"real": load_image_set(real, data_root=data_root, value_range=value_range, name="real")}
    channels = sets["real"].images.shape[1]
    sets["fake"] = load_image_set(fake, data_root=data_root, value_range=value_range, channels=channels, name="fake")
    if train is not None:
        sets["train"] = load_image_set(train, data_root=data_root, value_range=value_range, channels=channels,
                                       name="train")
    shape = tuple(sets["real"].images.shape[1:])
    for which, found in sets.items():
        if tuple(found.images.shape[1:]) != shape:
            raise UserError(f"the {which} samples have shape {tuple(found.images.shape[1:])} and the real ones "
                            f"{shape}: both sets must hold samples of one shape")
    n_fake = len(sets["fake"].images)
    n = n_fake if n is None else int(n)
    if not 2 <= n <= n_fake:
        raise UserError(f"n = {n} samples asked for, but the fake set holds {n_fake} (n must be 2..{n_fake})")
    if not (isinstance(ms_ssim_pairs, int) and ms_ssim_pairs >= 1):
        raise UserError(f"ms_ssim_pairs must be a whole number >= 1, got {ms_ssim_pairs!r}")
    extractor = None
    wanted_features = [name for name in names if name in FEATURE_METRICS]
    if dataset is not None and wanted_features:
        extractor = _Features(dataset, data_root, classifier_config)
        extractor.check(sets["real"].images, dataset)
    train_set = sets.get("train")
    data = _Sets(fake=sets["fake"].images[:n], real=_subset(sets["real"].images, n, seed, "real_test"),
                 real_all=sets["real"].images,
                 train=None if train_set is None else _subset(train_set.images, n, seed, "real_train"),
                 train_all=None if train_set is None else train_set.images, extractor=extractor, cache=cache)
    functions = _metric_functions(ms_ssim_pairs, seed, mmd_block_size)
    results: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    for name in names:
        progress_log.info("%s: scoring %d fake against %d real samples", name, len(data.fake), len(data.real))
        started = time.perf_counter()
        results[name] = _one(name, functions[name], data, dataset, shape)
        seconds[name] = round(time.perf_counter() - started, 3)
        value = results[name]["value"]
        progress_log.info("%s = %s (%s)", name, "n/a" if value is None else f"{value:.6g}", duration_text(seconds[name]))
    return ScoreResult(results, {**_provenance(sets, n, seed, dataset, extractor, data), "seconds": seconds})


def _one(name: str, function: Callable[[_Sets], Any], data: _Sets, dataset: str | None,
         shape: tuple[int, ...]) -> dict[str, Any]:
    counts = {"n_fake": len(data.fake), "n_real": len(data.real)}
    if name in FEATURE_METRICS and dataset is None:
        return {"value": None, "na": "needs --dataset: the domain classifier whose features it reads"}
    if name in _NEED_TRAIN and data.train_all is None:
        return {"value": None, "na": "needs the training set the model learnt from (--train)"}
    if name == "ms_ssim" and (len(shape) not in (3, 4) or min(shape[1:]) < 7):
        return {"value": None, "na": f"needs images or volumes with every side >= 7; the samples are {shape}"}
    try:
        with torch.no_grad():
            value, reference, details = function(data)
    except _NotApplicable as exc:
        return {"value": None, "na": str(exc), **counts}
    if not math.isfinite(value):
        return {"value": None, "na": f"the value is not finite ({value})", **counts}
    return {"value": float(value), "reference": None if reference is None else float(reference), **counts,
            "details": details}


def _provenance(sets: dict[str, ImageSet], n: int, seed: int, dataset: str | None, extractor: _Features | None,
                data: _Sets) -> dict[str, Any]:
    from gvae_bench.execution.records import now, software_versions

    classifier = None
    if extractor is not None:
        record = extractor.record
        classifier = {"dataset": dataset, "version": record.get("version"), "sha256": extractor.sha256,
                      "key": record.get("key"), "test_accuracy": record.get("test_accuracy"),
                      "feature_space": f"{dataset} classifier penultimate layer"}
    return {"real": sets["real"].describe(), "fake": sets["fake"].describe(),
            **({"train": sets["train"].describe()} if "train" in sets else {}),
            "n": n, "n_real_used": len(data.real), "seed": seed, "dataset": dataset, "classifier": classifier,
            "value_convention": "float32 in [-1, 1]; 8-bit pixels as x / 127.5 - 1",
            "created": now(), "versions": software_versions()}

