"""A plugin's code is part of a run's identity: changing a model plugin's loss makes a new run, and
changing a metric plugin's code has the finished runs score that metric again."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import REPO, invoke_cli

METRIC_PLUGIN = '''
from gvae_bench.contracts import NEEDS_SAMPLES, Metric, MetricResult
from gvae_bench.registry import METRICS


@METRICS.register("sample_abs_mean")
class SampleAbsMean(Metric):
    """Mean absolute value of 200 generated samples (a test metric)."""

    needs = frozenset({NEEDS_SAMPLES})

    def compute(self, ctx):
        samples = ctx.generated(200)
        return MetricResult(float(samples.abs().mean()) * SCALE, n_generated=len(samples), n_real=0)


SCALE = 1.0
'''


def _model_source() -> str:
    text = (REPO / "docs" / "plugins.md").read_text()
    return re.search(r"```python\n(# my_gaussian.py.*?)```", text, re.S).group(1)


def _records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("runs/ring8/diag_gaussian/*/seed0/record.json"))]


def test_a_changed_model_plugin_is_a_new_run_and_a_changed_metric_plugin_is_scored_again(tmp_path):
    model, metric, out = tmp_path / "my_gaussian.py", tmp_path / "my_metric.py", tmp_path / "out"
    model.write_text(_model_source())
    metric.write_text(METRIC_PLUGIN)
    args = ("--plugin", str(model), "--plugin", str(metric), "--models", "diag_gaussian", "--dataset", "ring8",
            "--profile", "smoke", "--out", str(out))
    first = invoke_cli(*args)
    assert first.returncode == 0, first.stderr
    [record] = _records(out)
    assert record["plugins"]["model"]["path"] == str(model.resolve())
    assert record["plugins"]["metrics"]["sample_abs_mean"]["path"] == str(metric.resolve())
    assert record["config"]["plugins"]["model"]["module"] == "gvae_bench_plugin_my_gaussian"
    value = record["metrics"]["sample_abs_mean"]["value"]

    again = invoke_cli(*args)
    assert again.returncode == 0 and "already finished, skipped" in again.stderr  # same code: reused

    source = model.read_text()
    assert "0.5 * z.pow(2)" in source
    model.write_text(source.replace("0.5 * z.pow(2)", "z.abs()"))  # the loss changed: L1 instead of Gaussian
    changed = invoke_cli(*args)
    assert changed.returncode == 0, changed.stderr
    assert "diag_gaussian seed 0: finished" in changed.stderr  # trained again, not "skipped"
    records = _records(out)
    assert len(records) == 2 and records[0]["config_hash"] != records[1]["config_hash"]
    assert len({r["plugins"]["model"]["sha256"] for r in records}) == 2

    current = next(r for r in records if r["config_hash"] != record["config_hash"])
    metric.write_text(METRIC_PLUGIN.replace("SCALE = 1.0", "SCALE = 2.0"))
    rescored = invoke_cli(*args)  # meets the finished run of the current model code
    assert rescored.returncode == 0, rescored.stderr
    assert "evaluating sample_abs_mean" in rescored.stderr
    after = next(r for r in _records(out) if r["config_hash"] == current["config_hash"])
    assert after["metrics"]["sample_abs_mean"]["value"] == 2 * current["metrics"]["sample_abs_mean"]["value"]
    assert after["rescored"][-1]["metrics"] == ["sample_abs_mean"]
    assert value > 0
