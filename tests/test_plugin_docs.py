"""docs/plugins.md is a tested guide: every example file in it (a ```python block whose first line is
``# <name>.py: ...``) is written out as that file, and the three together (a model, a metric and a
benchmark plugin) are listed, run in a smoke sweep through runner.py and tabulated; the example
metric and benchmark are checked against answers known in closed form, and the doc's claims about
how profiles reach a plugin's fields against the resolved configs."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO, invoke_cli

DOC = REPO / "docs" / "plugins.md"
EXAMPLE = re.compile(r"```python\n(# (\w+)\.py:.*?)```", re.S)


def doc_examples() -> dict[str, str]:
    """File name -> source of every example file in docs/plugins.md, in the order they appear."""
    found: dict[str, str] = {}
    for match in EXAMPLE.finditer(DOC.read_text()):
        source, name = match.group(1), match.group(2)
        assert f"{name}.py" not in found, f"two examples are called {name}.py"
        found[f"{name}.py"] = source
    return found


def write_examples(folder: Path) -> dict[str, Path]:
    paths = {}
    for filename, source in doc_examples().items():
        paths[filename] = folder / filename
        paths[filename].write_text(source)
    return paths


def test_the_doc_holds_one_example_of_each_kind_and_the_model_comes_first():
    examples = doc_examples()
    assert list(examples) == ["my_gaussian.py", "marginal_w1.py", "square4.py"]
    first = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    assert first == examples["my_gaussian.py"]  # tests/test_plugins.py and test_plugin_identity.py use this one
    assert first.startswith("# my_gaussian.py: a diagonal Gaussian fitted by maximum likelihood, the simplest baseline\n")
    assert "0.5 * z.pow(2)" in first
    for source in examples.values():
        compile(source, "<doc example>", "exec")


# --- the three examples together through the command line -------------------------------------------


def _table_rows(markdown: str) -> dict[str, dict[str, str]]:
    """The body of a leaderboard's Markdown table: first cell -> {column header: cell}."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells))
    return rows


def _value(cell: str) -> float | None:
    """The mean a leaderboard cell shows ("0.5046 (n=1)", bold when best; what follows the number is the
    leaderboard's business), or None for "n/a", "–" and "not evaluated"."""
    match = re.match(r"\**(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)\b", cell)
    return float(match.group(1)) if match else None


def test_the_doc_examples_are_listed_swept_and_tabulated(tmp_path: Path):
    paths = write_examples(tmp_path)
    plugins = [arg for path in paths.values() for arg in ("--plugin", str(path))]

    listing = invoke_cli(*plugins, "list")
    assert listing.returncode == 0, listing.stderr
    for name, description in (("diag_gaussian", "Diagonal Gaussian fitted by maximum likelihood"),
                              ("square4", "Four equally weighted Gaussians at (+-1, +-1)"),
                              ("marginal_w1", "Mean 1-D Wasserstein-1 distance between generated and real")):
        assert re.search(rf"^\s+{name}\s+{re.escape(description)}", listing.stdout, re.M), (name, listing.stdout)

    out = tmp_path / "results"
    result = invoke_cli(*plugins, "--models", "diag_gaussian,vae", "--dataset", "square4", "--profile", "smoke",
                        "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    board = out / "leaderboards" / "square4"

    table4 = _table_rows((board / "table4.md").read_text())
    for model in ("diag_gaussian", "vae"):
        cell = table4[model]["marginal_w1 ↓"]  # lower is better
        assert _value(cell) is not None and _value(cell) > 0, cell
        assert "n=1" in cell and _value(table4[model]["mmd ↓"]) is not None
    [reference] = [row["marginal_w1 ↓"] for name, row in table4.items() if "real data" in name]
    assert _value(reference) is not None and _value(reference) > 0, reference
    assert "- `marginal_w1` (lower is better): 200 generated / 200 real" in (board / "table4.md").read_text()
    for other in ("table_modes.md", "table6.md", "table7.md"):
        assert "marginal_w1" not in (board / other).read_text()  # its one table is table4

    modes = _table_rows((board / "table_modes.md").read_text())
    assert {"diag_gaussian", "vae"} <= set(modes) and "modes ↑" in modes["vae"] and "high_quality ↑" in modes["vae"]
    table6 = _table_rows((board / "table6.md").read_text())
    assert table6["diag_gaussian"]["elbo ↑"] == "n/a" and _value(table6["vae"]["elbo ↑"]) is not None

    records = {p.parts[-4]: json.loads(p.read_text()) for p in out.glob("runs/square4/*/*/seed0/record.json")}
    assert set(records) == {"diag_gaussian", "vae"}
    gaussian, vae = records["diag_gaussian"], records["vae"]
    assert gaussian["metrics"]["marginal_w1"]["table"] == "table4"
    assert gaussian["metrics"]["marginal_w1"]["reference"] is not None
    assert gaussian["plugins"]["model"]["path"] == str(paths["my_gaussian.py"].resolve())
    assert gaussian["plugins"]["benchmark"]["path"] == str(paths["square4.py"].resolve())
    assert gaussian["plugins"]["metrics"]["marginal_w1"]["path"] == str(paths["marginal_w1.py"].resolve())
    assert gaussian["plugins"]["model"]["package"] is None  # a --plugin file, no distribution
    # model and benchmark code are in the config hash; the built-in vae carries the benchmark's only
    assert set(gaussian["config"]["plugins"]) == {"model", "benchmark"}
    assert set(vae["config"]["plugins"]) == {"benchmark"}
    assert gaussian["config"]["plugins"]["benchmark"]["module"] == "gvae_bench_plugin_square4"
    # the smoke profile's overrides reach the plugin's inherited fields: mlp2d family, width 16, latent 2
    assert gaussian["config"]["network_family"] == "mlp2d"
    assert gaussian["config"]["model_config"] == {"latent_dim": 2, "width": 16, "lr": 0.05}
    assert gaussian["config"]["benchmark_config"]["n_train"] == 2000
    assert gaussian["config"]["benchmark_config"]["n_test"] == 500

    # the doc's --set rule: a model field one model of the sweep lacks stops the sweep before any run
    refused = invoke_cli(*plugins, "--models", "diag_gaussian,vae", "--dataset", "square4", "--profile", "smoke",
                         "--set", "model.eps=0.1", "--out", str(tmp_path / "refused"))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "DiagonalGaussianConfig has no field(s) eps; its fields are: latent_dim, width, lr" in refused.stderr
    assert not (tmp_path / "refused" / "runs").exists()


# --- known answers, in this process ------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """The doc's three example files, loaded as --plugin loads them; unregistered afterwards, so the
    rest of the test session sees only the built-ins."""
    from gvae_bench.registry import BENCHMARKS, METRICS, MODELS, load_plugin_file, load_plugins

    load_plugins()
    registries = (MODELS, BENCHMARKS, METRICS)
    before = [set(registry._entries) for registry in registries]
    paths = write_examples(tmp_path_factory.mktemp("doc_examples"))
    for path in paths.values():
        load_plugin_file(path)
    modules = {name: sys.modules[f"gvae_bench_plugin_{Path(name).stem}"] for name in paths}
    yield modules
    for registry, names in zip(registries, before):
        for name in set(registry._entries) - names:
            del registry._entries[name]
    for name in paths:
        sys.modules.pop(f"gvae_bench_plugin_{Path(name).stem}", None)


class _Fixed:
    """Builds a model whose samples are given by a function of n (not registered)."""

    @staticmethod
    def model(spec, samples):
        from gvae_bench.contracts import GenerativeModel, ModelConfig

        class Fixed(GenerativeModel):
            def __init__(self):
                super().__init__(ModelConfig(), spec)
                self.unused = torch.nn.Parameter(torch.zeros(1))

            def optimizers(self):
                return {}

            def train_step(self, next_batch):
                return {}

            def sample(self, n):
                return samples(n)

        return Fixed()


def _context(benchmark, model, n_samples: int, seed: int = 0):
    from gvae_bench.contracts import EvalContext
    from gvae_bench.profiles import EvalConfig

    return EvalContext(model=model, benchmark=benchmark, splits=benchmark.load(),
                       config=EvalConfig(n_samples=n_samples), seed=seed)


def _scipy_w1(a: torch.Tensor, b: torch.Tensor) -> float:
    from scipy.stats import wasserstein_distance

    a, b = a.flatten(1).double().numpy(), b.flatten(1).double().numpy()
    return sum(wasserstein_distance(a[:, j], b[:, j]) for j in range(a.shape[1])) / a.shape[1]


def test_marginal_w1_matches_scipy_and_the_shift_it_is_given(loaded):
    marginal_w1 = loaded["marginal_w1.py"].marginal_w1
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(500, 3, generator=g), 2.0 + 0.5 * torch.rand(500, 3, generator=g)
    assert marginal_w1(a, b) == pytest.approx(_scipy_w1(a, b), rel=1e-9, abs=1e-12)
    images = torch.rand(64, 1, 4, 4, generator=g) * 2 - 1
    assert marginal_w1(images, images.flip(0) + 0.125) == pytest.approx(0.125, abs=1e-6)  # order does not count
    assert marginal_w1(images, images, chunk=3) == 0.0
    shifts = torch.tensor([0.5, -1.0, 2.0])
    assert marginal_w1(a, a[torch.randperm(500, generator=g)] + shifts) == pytest.approx(shifts.abs().mean().item(), abs=1e-6)
    with pytest.raises(ValueError, match="one shape"):
        marginal_w1(a, b[:10])


def test_the_example_metric_scores_a_shifted_copy_of_the_test_set_by_its_shift(loaded):
    Square4 = loaded["square4.py"].Square4
    benchmark = Square4(Path("unused"), Square4.Config(n_train=400, n_test=300))
    test = benchmark.load().test
    model = _Fixed.model(benchmark.spec, lambda n: test[:n] + 0.25)
    ctx = _context(benchmark, model, n_samples=300)
    metric = loaded["marginal_w1.py"].MarginalW1()
    assert metric.missing(model, benchmark) == []
    result = metric.compute(ctx)
    assert result.value == pytest.approx(0.25, abs=1e-6)
    assert (result.n_generated, result.n_real) == (300, 300)
    assert result.reference == pytest.approx(_scipy_w1(ctx.real_train(300), test), rel=1e-9)
    assert result.details["coordinates"] == 2


def test_the_example_metric_scores_a_point_mass_by_the_mean_distance_to_it(loaded):
    Square4 = loaded["square4.py"].Square4
    benchmark = Square4(Path("unused"), Square4.Config(n_train=400, n_test=300))
    test = benchmark.load().test
    point = torch.tensor([0.3, -0.2])
    model = _Fixed.model(benchmark.spec, lambda n: point.expand(n, 2).clone())
    result = loaded["marginal_w1.py"].MarginalW1().compute(_context(benchmark, model, n_samples=1000))
    # n = min(n_samples, test, train) = 300: the whole test set against 300 copies of the point
    assert (result.n_generated, result.n_real) == (300, 300)
    assert result.value == pytest.approx(float((test.double() - point.double()).abs().mean()), rel=1e-9)


def test_the_example_benchmark_draws_four_known_modes(loaded):
    from gvae_bench.errors import UserError
    from gvae_bench.metrics.modes import mode_coverage
    from gvae_bench.registry import BENCHMARKS, METRICS

    Square4 = BENCHMARKS.get("square4")
    assert Square4 is loaded["square4.py"].Square4
    benchmark = Square4(Path("unused"))
    spec = benchmark.spec
    assert (spec.shape, spec.kind, spec.value_range) == ((2,), "points", None)
    splits = benchmark.load()
    assert splits.train.shape == (100_000, 2) and splits.test.shape == (10_000, 2)
    assert splits.train.dtype == torch.float32 and splits.info == {"data_seed": 1234}
    centres = benchmark.modes
    assert sorted(map(tuple, centres.tolist())) == [(-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0)]
    assert benchmark.mode_std == 0.05

    counts = torch.bincount(splits.train_labels, minlength=4)
    assert counts.sum() == 100_000 and ((counts - 25_000).abs() < 600).all()  # a quarter each (sd ~ 137)
    distance = (splits.train - centres[splits.train_labels]).norm(dim=1)
    assert distance.max() < 6 * 0.05  # P(> 6 std) = e^-18 per point
    coverage = mode_coverage(splits.test, centres, benchmark.mode_std)
    assert coverage.modes_covered == 4
    # |x - c|^2 / std^2 is chi-squared with 2 degrees of freedom: within 3 std with probability 1 - e^(-9/2)
    assert coverage.high_quality_fraction == pytest.approx(1 - math.exp(-4.5), abs=0.004)

    again = Square4(Path("unused")).load()
    assert torch.equal(again.train, splits.train) and torch.equal(again.test, splits.test)
    other = Square4(Path("unused"), Square4.Config(data_seed=1)).load()
    assert not torch.equal(other.test, splits.test)
    small = Square4(Path("unused"), Square4.Config(n_train=50, n_test=20, std=0.2, train_limit=30))
    assert small.load().train.shape == (30, 2) and small.load().test.shape == (20, 2) and small.mode_std == 0.2
    with pytest.raises(UserError, match="std must be in"):
        Square4.Config(std=0.0)

    model_cls = loaded["my_gaussian.py"].DiagonalGaussian
    applies = {name for name in METRICS.names() if not METRICS.get(name)().missing(model_cls, benchmark)}
    assert {"mmd", "modes", "high_quality", "marginal_w1"} <= applies
    assert not applies & {"ms_ssim", "fid", "mode_kl", "elbo", "kl", "ais_nll"}


def test_profiles_reach_the_plugin_fields_as_the_doc_says(loaded):
    from gvae_bench.errors import UserError
    from gvae_bench.execution.runs import RunSpec, resolve

    def resolved(benchmark, profile, **overrides):
        return resolve(RunSpec(model="diag_gaussian", benchmark=benchmark, profile=profile, seed=0,
                               data_root=REPO / "unused-data", out=Path("unused"), **overrides))

    smoke = resolved("square4", "smoke")
    assert smoke.family == "mlp2d"
    assert smoke.model_config.to_dict() == {"latent_dim": 2, "width": 16, "lr": 0.05}
    assert (smoke.benchmark.config.n_train, smoke.benchmark.config.n_test) == (2000, 500)
    quick = resolved("square4", "quick")
    assert quick.model_config.to_dict() == {"latent_dim": 2, "width": 128, "lr": 0.05}
    assert (quick.benchmark.config.n_train, quick.train.steps) == (100_000, 3000)
    # `--set model.lr=0.01` reaches the plugin's own field and, like any config change, the hash
    tuned = resolved("square4", "smoke", model_overrides=(("lr", 0.01),))
    assert tuned.model_config.lr == 0.01 and tuned.config_hash != smoke.config_hash
    assert resolved("square4", "smoke", benchmark_overrides=(("std", 0.1),)).benchmark.mode_std == 0.1
    with pytest.raises(UserError, match=r"DiagonalGaussianConfig has no field\(s\) gp_weight"):
        resolved("square4", "smoke", model_overrides=(("gp_weight", 0.1),))
    with pytest.raises(UserError, match="lr must be > 0"):
        resolved("square4", "smoke", model_overrides=(("lr", -1.0),))
    plugins = smoke.config()["plugins"]
    assert plugins["model"]["module"] == "gvae_bench_plugin_my_gaussian" and len(plugins["model"]["sha256"]) == 64
    assert plugins["benchmark"]["module"] == "gvae_bench_plugin_square4"
