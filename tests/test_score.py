"""``gvae_bench.score`` and ``runner.py score``: the sets it reads and refuses, a set against itself and against
noise, the real features' disk cache, and the same numbers as a run's evaluation for the run's own samples."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gvae_bench.cli.score import score_command
from gvae_bench.errors import UserError
from gvae_bench.scoring import score
from gvae_bench.scoring.inputs import load_image_set
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory, data_root) -> Path:
    """The first 200 MNIST test digits as 8-bit grey PNGs."""
    from torchvision import datasets

    folder = tmp_path_factory.mktemp("digits")
    test = datasets.MNIST(str(data_root), train=False, download=False)
    for i in range(200):
        Image.fromarray(test.data[i].numpy()).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def noise_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("noise")
    rng = np.random.default_rng(0)
    for i in range(200):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def test_sets_are_read_in_the_harness_convention(tmp_path: Path) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    for i, image in enumerate(pixels):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    expected = torch.from_numpy(pixels).float().div(127.5).sub(1.0)[:, None]
    assert torch.equal(load_image_set(tmp_path).images, expected)  # as the benchmarks map their pixels
    np.save(tmp_path / "a.npy", pixels[..., None])  # (N, H, W, 1), channels last
    assert torch.equal(load_image_set(tmp_path / "a.npy").images, expected)
    np.savez(tmp_path / "b.npz", samples=(pixels / 255.0).astype(np.float64), other=np.zeros(3))
    from_unit = load_image_set(f"{tmp_path / 'b.npz'}:samples", value_range=(0.0, 1.0)).images
    assert torch.allclose(from_unit, expected, atol=1e-6)
    floats = torch.rand(4, 1, 28, 28) * 2 - 1
    assert torch.equal(load_image_set(floats).images, floats)  # already in [-1, 1]: kept bit for bit


@pytest.mark.parametrize("make, message", [
    (lambda d: None, "holds no PNG or JPEG images"),
    (lambda d: [Image.new("L", (28, 28)).save(d / "a.png"), Image.new("L", (32, 28)).save(d / "b.png")],
     "every image of a set must have one size"),
    (lambda d: (d / "x.png").write_bytes(b"not a png"), "cannot be read as an image"),
    (lambda d: np.save(d / "s.npy", np.full((3, 28, 28), 2.0, np.float32)), "outside the range [-1, 1]"),
    (lambda d: np.save(d / "s.npy", np.zeros((3, 7, 28, 28), np.float32)), "is not a set of images"),
    (lambda d: np.savez(d / "s.npz", a=np.zeros((3, 28, 28)), b=np.zeros(2)), "name one as"),
    (lambda d: np.save(d / "s.npy", np.array([{"a": 1}] * 3, dtype=object)), "plain numeric array"),
])
def test_what_cannot_be_read_is_one_line(tmp_path: Path, make, message: str) -> None:
    make(tmp_path)
    target = next(iter(sorted(tmp_path.glob("s.np*"))), tmp_path)
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        load_image_set(target)
    assert "\n" not in str(info.value)


def test_mismatched_shapes_and_counts_are_refused() -> None:
    with pytest.raises(UserError, match=r"fake samples have shape \(3, 32, 32\) and the real ones \(1, 28, 28\)"):
        score(torch.zeros(4, 1, 28, 28), torch.zeros(4, 3, 32, 32), ["mmd"])
    with pytest.raises(UserError, match="n = 9 samples asked for, but the fake set holds 4"):
        score(torch.zeros(4, 1, 28, 28), torch.zeros(4, 1, 28, 28), ["mmd"], n=9)
    with pytest.raises(UserError, match="unknown metric"):
        score(torch.zeros(4, 1, 28, 28), torch.zeros(4, 1, 28, 28), ["fidd"])


def test_a_set_against_itself_and_against_noise(digit_folder: Path, noise_folder: Path, tmp_path: Path) -> None:
    itself = score(digit_folder, digit_folder, ["mmd", "ms_ssim", "fid"], ms_ssim_pairs=300)
    # MMD^2_u of a set against itself is -2 (1 - c) / n exactly, c the mean kernel value over distinct pairs
    assert -2 / 200 < itself.value("mmd") < 0
    assert itself.value("ms_ssim") == itself.metrics["ms_ssim"]["reference"]
    assert "needs --dataset" in itself.metrics["fid"]["na"]
    noise = score(digit_folder, noise_folder, ["mmd", "ms_ssim"], ms_ssim_pairs=300)
    assert noise.value("mmd") > 0.3 and noise.value("mmd") > 50 * abs(itself.value("mmd"))
    json_path, csv_path = noise.write(tmp_path / "out")
    written = json.loads(json_path.read_text())
    assert written["fake"]["n"] == written["real"]["n"] == 200 and len(written["real"]["sha256"]) == 64
    assert {"python", "torch", "numpy", "gvae-bench"} <= set(written["versions"])
    assert csv_path.read_text().splitlines()[0].startswith("metric,value,reference,n_fake,n_real")


def test_the_command_prints_a_table_and_refuses_bad_input_with_exit_2(digit_folder: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(score_command, ["--real", str(digit_folder), "--fake", str(digit_folder),
                                                "--metrics", "mmd,ms_ssim", "--pairs", "100", "--out",
                                                str(tmp_path / "scores")])
    assert result.exit_code == 0, result.output
    assert "| mmd ↓" in result.output and (tmp_path / "scores" / "scores.csv").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    done = run_cli("score", "--real", str(digit_folder), "--fake", str(empty), "--out", str(tmp_path / "x"))
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"Error: {empty}: holds no PNG or JPEG images (.png, .jpg, .jpeg)"]


def test_the_command_tells_each_metric_as_it_goes_and_records_its_seconds(digit_folder: Path, tmp_path: Path) -> None:
    """A long score (tens of thousands of samples) is watched: stderr names each metric as it starts, then its
    value and time; scores.json keeps each metric's seconds apart from its values."""
    done = run_cli("score", "--real", str(digit_folder), "--fake", str(digit_folder), "--metrics", "mmd,ms_ssim,fid",
                   "--pairs", "50", "--out", str(tmp_path / "scores"))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    started = [i for i, line in enumerate(lines) if "mmd: scoring 200 fake against 200 real samples" in line]
    ended = [i for i, line in enumerate(lines) if re.search(r"mmd = -?[\d.e-]+ \(0m\d\ds\)$", line)]
    assert len(started) == len(ended) == 1 and started[0] < ended[0]
    assert any("ms_ssim: scoring 200 fake" in line for line in lines[ended[0]:])
    assert any(line.endswith("fid = n/a (0m00s)") for line in lines)
    written = json.loads((tmp_path / "scores" / "scores.json").read_text())
    assert set(written["seconds"]) == {"mmd", "ms_ssim", "fid"} and all(s >= 0 for s in written["seconds"].values())
    assert "needs --dataset" in written["metrics"]["fid"]["na"]


def test_the_real_sets_features_are_cached_by_content(monkeypatch, tmp_path: Path) -> None:
    import gvae_bench.functional.features as features_module
    from gvae_bench.execution.classifier import DomainClassifier

    torch.manual_seed(0)
    classifier = DomainClassifier(8).eval()
    record = {"sha256": "c" * 64, "version": "test-v1", "channels": 1, "size": 28}
    monkeypatch.setattr(features_module, "domain_classifier", lambda *args: (classifier, record))
    monkeypatch.setenv("GVAE_BENCH_CACHE", str(tmp_path / "cache"))
    real = torch.rand(150, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    first = score(real, -real, ["precision", "vendi"], "mnist")
    assert len(list((tmp_path / "cache" / "features").glob("*.pt"))) == 1  # the real set's, not the fake's
    reads = []
    original = features_module.read_channel_groups
    monkeypatch.setattr(features_module, "read_channel_groups", lambda *a: reads.append(1) or original(*a))
    second = score(real, -real, ["precision", "vendi"], "mnist")
    assert len(reads) == 1 and second.metrics == first.metrics  # only the fake set read again
    assert second.provenance["classifier"]["sha256"] == "c" * 64


def test_a_runs_samples_scored_give_the_runs_recorded_values(tmp_path: Path, data_root: Path) -> None:
    """Issue 32 item 3. Runs keep no sample files, so the test draws the run's samples again as its evaluation
    drew them (``EvalContext.generated``: the model from its checkpoint, seed + 1000003), saves them as a .npy file,
    and scores them against the benchmark's test split with the run's seed, sample count, MS-SSIM pairs,
    classifier and training split: every metric and its real-train reference match the record."""
    from gvae_bench.execution.classifier import ClassifierConfig
    from gvae_bench.execution.run import load_finished_run
    from gvae_bench.sweep import run_sweep

    summary = run_sweep(["vae"], "mnist", profile="smoke", data_root=data_root, out=tmp_path / "out", device="cpu")
    [result] = summary.results
    record = result.record
    run_dir = next((tmp_path / "out" / "runs" / "mnist" / "vae").glob("*/seed0"))
    model, benchmark = load_finished_run(run_dir, data_root)
    evaluation = record.config["eval"]
    n = evaluation["n_samples"]
    torch.manual_seed(record.seed + 1_000_003)
    with torch.no_grad():
        samples = model.sample_in_batches(n)
    np.save(tmp_path / "samples.npy", samples.numpy())

    names = ["mmd", "ms_ssim", "fid", "kid", "precision", "recall", "density", "coverage", "vendi"]
    scored = score("benchmark:mnist:test", tmp_path / "samples.npy", names, "mnist", train=benchmark.load().train,
                   n=n, seed=record.seed, ms_ssim_pairs=evaluation["ms_ssim_pairs"], data_root=data_root,
                   classifier_config=ClassifierConfig.from_dict(record.config["classifier"]))
    for name in names:
        recorded = record.metrics[name]
        assert scored.value(name) == pytest.approx(recorded["value"], rel=1e-6, abs=1e-9), name
        assert scored.metrics[name]["n_fake"] == recorded["n_generated"] and scored.metrics[name]["n_real"] == n
        if name not in ("ms_ssim", "vendi"):  # these two take the real set's own value as their reference
            assert scored.metrics[name]["reference"] == pytest.approx(recorded["reference"], rel=1e-6, abs=1e-9), name
    recorded_sha256 = record.metrics["fid"]["details"].get("classifier_sha256")
    if recorded_sha256 is not None:  # records name their classifier's SHA-256 since the classifiers were pinned
        assert scored.provenance["classifier"]["sha256"] == recorded_sha256
