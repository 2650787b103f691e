"""Live curves: a run with ``--log tensorboard`` leaves an event file whose scalars are its logged losses
and its final metrics, and whose images are its sample grids at the checkpoints, under a name that
overlays the runs of a sweep; the run itself trains and scores exactly as without it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from conftest import invoke_cli
from gvae_bench.errors import UserError
from gvae_bench.execution.tracking import check_tracker, tensorboard_dir

ARGS = ("--models", "vae", "--dataset", "ring8", "--profile", "smoke", "--seeds", "0")


def _run(out: Path, *extra: str) -> tuple[Path, dict, list[dict[str, float]]]:
    result = invoke_cli(*ARGS, "--out", str(out), *extra)
    assert result.returncode == 0, result.stderr
    (run_dir,) = (out / "runs" / "ring8" / "vae").glob("smoke-*/seed0")
    record = json.loads((run_dir / "record.json").read_text())
    lines = (run_dir / "losses.csv").read_text().splitlines()
    names = lines[0].split(",")
    rows = [dict(zip(names, map(float, line.split(",")))) for line in lines[1:]]
    return run_dir, record, rows


def test_a_run_logged_to_tensorboard_has_its_losses_grids_and_metrics_in_the_event_file(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, record, rows = _run(tmp_path / "logged", "--log", "tensorboard")
    folder = tensorboard_dir(tmp_path / "logged", run_dir)
    assert folder.relative_to(tmp_path / "logged").parts == ("tensorboard", "ring8", "vae", run_dir.parent.name, "seed0")
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])

    losses = [name for name in rows[0] if name != "step"]
    assert losses and {f"loss/{name}" for name in losses} <= scalars
    for name in losses:  # every loss-log row (smoke: every step), as float32
        logged = [(event.step, event.value) for event in events.Scalars(f"loss/{name}")]
        assert [step for step, _ in logged] == [int(row["step"]) for row in rows]
        assert [value for _, value in logged] == pytest.approx([row[name] for row in rows], rel=1e-6)

    finals = {name: result["value"] for name, result in record["metrics"].items()
              if isinstance(result.get("value"), (int, float))}
    assert {"mmd", "modes"} <= set(finals) and {f"metrics/{name}" for name in finals} <= scalars
    for name, value in finals.items():
        (event,) = events.Scalars(f"metrics/{name}")
        assert event.step == record["steps_done"] and event.value == pytest.approx(value, rel=1e-6, abs=1e-12)

    grids = events.Images("samples")  # one per checkpoint: smoke checkpoints every 4 of its 8 steps
    assert [image.step for image in grids] == [4, 8] and all(image.width > 100 for image in grids)

    # the same run without the log: the same folder (--log is not in the config hash), losses and metrics
    plain_dir, plain, plain_rows = _run(tmp_path / "plain")
    assert plain_dir.relative_to(tmp_path / "plain") == run_dir.relative_to(tmp_path / "logged")
    assert plain_rows == rows and plain["metrics"].keys() == record["metrics"].keys()
    for name, result in plain["metrics"].items():
        assert result.get("value") == record["metrics"][name].get("value"), name
    assert not (tmp_path / "plain" / "tensorboard").exists()


def test_an_unknown_tracker_or_a_missing_tensorboard_is_a_one_line_error(monkeypatch):
    with pytest.raises(UserError, match="--log is one of none, tensorboard; got 'wandb'"):
        check_tracker("wandb")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(UserError, match=r"pip install '\.\[tensorboard\]'"):
        check_tracker("tensorboard")
    check_tracker("none")
