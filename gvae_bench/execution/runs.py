"""From names to a fully resolved run: the one place where configs are assembled and hashed.

A ``RunSpec`` is what the sweep is made of (model, benchmark, profile, seed, overrides); resolving
it builds the config dataclasses, validated, and the run folder:

    <out>/runs/<benchmark>/<model>/<profile>-<config hash>/seed<seed>/

The hash covers everything that changes the result except the seed (model, benchmark, their
configs, train and eval settings), so the seeds of one configuration sit side by side and the
leaderboard groups them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gvae_bench.contracts.benchmark import Benchmark
from gvae_bench.config import ConfigBase, config_hash
from gvae_bench.profiles import EvalConfig, TrainConfig, resolve_profile
from gvae_bench.registry import BENCHMARKS, MODELS
from gvae_bench.execution.classifier import ClassifierConfig
from gvae_bench.execution.records import run_folder
from gvae_bench.contracts.model import GenerativeModel, ModelConfig
from gvae_bench.contracts.family import family_for
# the defaults the command line reads before it imports torch (gvae_bench.paths), importable from here too
from gvae_bench.paths import DATA_ROOT_ENV, DEFAULT_OUT, resolve_data_root  # noqa: F401


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep. ``model_overrides``, ``benchmark_overrides``, ``train_overrides`` and
    ``eval_overrides`` (field, value) are applied after the profile (e.g. a latent size, the CT
    mode, bf16 precision, a tuned model's fields)."""

    model: str
    benchmark: str
    profile: str
    seed: int
    data_root: Path
    out: Path
    device: str = "cpu"
    model_overrides: tuple[tuple[str, Any], ...] = field(default=())
    benchmark_overrides: tuple[tuple[str, Any], ...] = field(default=())
    train_overrides: tuple[tuple[str, Any], ...] = field(default=())
    eval_overrides: tuple[tuple[str, Any], ...] = field(default=())
    #: where settings came from that the config alone does not say (``tuning``: the study and trial of a
    #: tuned model's fields); written into the record, not part of the config hash
    provenance: tuple[tuple[str, Any], ...] = field(default=())
    #: where the run's live curves go (``--log``: ``none``, or ``tensorboard`` under ``<out>/tensorboard``,
    #: ``gvae_bench.execution.tracking``); how a run is watched, so neither in the config nor in its hash
    log: str = "none"
    #: the config hash of (model, benchmark, profile) with no overrides, set by the plan (``plan_sweep``)
    #: and written into the record so the tables tell runs at the profile's settings without resolving;
    #: not part of the config hash
    profile_config_hash: str | None = None


@dataclass
class ResolvedRun:
    """A run with every setting decided: what the run record stores as its config."""

    spec: RunSpec
    model_cls: type[GenerativeModel]
    benchmark: Benchmark
    model_config: ModelConfig
    train: TrainConfig
    eval: EvalConfig
    family: str
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)

    def config(self, for_hash: bool = False) -> dict[str, Any]:
        """The resolved config (JSON-able), without seed, device or paths. The domain classifier's
        config appears only when a profile changes it from its defaults (so the hashes of runs
        made before classifiers existed stay valid). ``for_hash`` leaves out the fields added
        after runs existed while they hold their defaults (``gvae_bench.config.added_field``)."""
        def values(config: ConfigBase) -> dict[str, Any]:
            return config.hash_dict() if for_hash else config.to_dict()

        classifier = values(self.classifier)
        extra = {"classifier": classifier} if self.classifier.hash_dict() != ClassifierConfig().hash_dict() else {}
        if self.plugin_code():
            extra["plugins"] = {kind: origin.identity() for kind, origin in self.plugin_code().items()}
        return {**extra,
            "model": self.spec.model,
            "model_config": values(self.model_config),
            "benchmark": self.spec.benchmark,
            "benchmark_config": values(self.benchmark.config),
            "network_family": self.family,
            "profile": self.spec.profile,
            "train": values(self.train),
            "eval": values(self.eval),
        }

    def plugin_code(self) -> dict[str, Any]:
        """The outside plugins (not ``gvae_bench.*``) whose code this run trains with: ``model`` and
        ``benchmark`` -> ``PluginOrigin``. Their source hashes are part of the config, so changing a
        plugin's code makes a new run (a new config folder) rather than reusing the old results."""
        found = {"model": MODELS.entry(self.spec.model).origin, "benchmark": BENCHMARKS.entry(self.spec.benchmark).origin}
        return {kind: origin for kind, origin in found.items() if origin is not None}

    @property
    def config_hash(self) -> str:
        return config_hash(self.config(for_hash=True))

    @property
    def run_dir(self) -> Path:
        return run_folder(self.spec.out, self.spec.benchmark, self.spec.model, self.spec.profile, self.config_hash,
                          self.spec.seed)


def resolve(spec: RunSpec) -> ResolvedRun:
    """Look the names up in the registries and apply the profile and the overrides."""
    model_cls = MODELS.get(spec.model)
    benchmark_cls = BENCHMARKS.get(spec.benchmark)
    shape_probe = benchmark_cls(spec.data_root, benchmark_cls.Config.from_dict(dict(spec.benchmark_overrides)))
    family = family_for(shape_probe.spec.shape).name  # the data's shape may depend on the overrides (CT mode)
    sections = resolve_profile(spec.profile, spec.model, spec.benchmark, family)
    benchmark_values = {**sections["benchmark"], **dict(spec.benchmark_overrides)}
    benchmark = (shape_probe if benchmark_values == dict(spec.benchmark_overrides)  # the profile adds nothing: built once
                 else benchmark_cls(spec.data_root, benchmark_cls.Config.from_dict(benchmark_values)))
    model_config = model_cls.Config.from_dict({**sections["model"], **dict(spec.model_overrides)})
    model_config = model_config.for_data(benchmark.spec)
    return ResolvedRun(
        spec=spec,
        model_cls=model_cls,
        benchmark=benchmark,
        model_config=model_config,
        train=TrainConfig.from_dict({**sections["train"], **dict(spec.train_overrides)}),
        eval=EvalConfig.from_dict({**sections["eval"], **dict(spec.eval_overrides)}),
        family=family,
        classifier=ClassifierConfig.from_dict(sections["classifier"]),
    )


def spec_of(run: RunSpec | ResolvedRun) -> RunSpec:
    """The ``RunSpec`` of a run given as a spec or as the plan's resolved run."""
    return run.spec if isinstance(run, ResolvedRun) else run
