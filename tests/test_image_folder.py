"""The image_folder benchmark on small folders written here from MNIST test images: pixels kept,
resized and cropped as documented, grey or colour, labels from subfolders, a seeded split, an
unreadable file skipped with a warning, the cache outside the folder (and a hostile one refused),
every model trained with the smoke profile, and one-line errors at the command line."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gvae_bench.benchmarks import image_folder as image_folder_module
from gvae_bench.benchmarks._image_files import read_square
from gvae_bench.benchmarks.image_folder import ImageFolder
from gvae_bench.execution.checkpoints import UnsafeFileError
from gvae_bench.errors import DataMissingError
from tests.conftest import invoke_cli

MODELS = ["vae", "wgan_gp", "gvae", "vae_gan", "alpha_gan"]
FEATURE_METRICS = ("fid", "kid", "precision", "recall", "density", "coverage")


@pytest.fixture(scope="module")
def digits(data_root) -> tuple[np.ndarray, np.ndarray]:
    from torchvision import datasets

    test = datasets.MNIST(str(data_root), train=False, download=False)
    return test.data[:200].numpy(), test.targets[:200].numpy()


@pytest.fixture(scope="module")
def flat_folder(tmp_path_factory, digits) -> Path:
    """40 grey 28 px PNGs directly in the folder (no labels) and a text file that is not an image."""
    root = tmp_path_factory.mktemp("flat")
    for i, image in enumerate(digits[0][:40]):
        Image.fromarray(image).save(root / f"digit{i:02d}.png")
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory, digits) -> Path:
    """Subfolders zero/one/two for the digits 0, 1, 2 (labels): grey PNGs, every third image a
    40x28 colour PNG (the digit in red, centred between a blue and a green band), one corrupt file."""
    root = tmp_path_factory.mktemp("classes")
    names = {0: "zero", 1: "one", 2: "two"}
    images, labels = digits
    for i, (image, label) in enumerate(zip(images, labels)):
        if label not in names:
            continue
        folder = root / names[int(label)]
        folder.mkdir(exist_ok=True)
        if i % 3 == 0:
            wide = np.zeros((28, 40, 3), np.uint8)
            wide[:, :6] = (0, 0, 255)
            wide[:, 34:] = (0, 255, 0)
            wide[:, 6:34, 0] = image  # the digit in the red channel, centred
            Image.fromarray(wide).save(folder / f"d{i:02d}.png")
        else:
            Image.fromarray(image).save(folder / f"d{i:02d}.png")
    (root / "zero" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def _bench(root: Path, **fields) -> ImageFolder:
    return ImageFolder(Path("unused"), ImageFolder.Config(root=str(root), **fields))


def test_grey_pngs_keep_their_pixels_and_split_by_seed(flat_folder, digits):
    bench = _bench(flat_folder, size=28)
    splits = bench.load()
    assert bench.spec.shape == (1, 28, 28) and bench.classifier_dataset is None and splits.train_labels is None
    assert len(splits.test) == 8 and len(splits.train) == 32  # round(0.2 * 40) test images
    # the split is the documented one: the 8 files first in the order of sha256("0:<path>")
    order = sorted((f"digit{i:02d}.png" for i in range(40)), key=lambda p: hashlib.sha256(f"0:{p}".encode()).digest())
    expected = [int(name[5:7]) for name in order]
    want = torch.from_numpy(digits[0][:40]).float().div(127.5).sub(1).unsqueeze(1)
    assert torch.equal(splits.test, want[expected[:8]]) and torch.equal(splits.train, want[expected[8:]])
    info = splits.info
    assert info["n_images"] == 40 and info["other_files_ignored"] == 1 and info["labels"].startswith("none")
    assert info["split"]["split_seed"] == 0 and info["split"]["n_test"] == 8 and info["channels"] == 1
    other = _bench(flat_folder, size=28, split_seed=1).load()
    assert not torch.equal(other.test, splits.test)
    assert torch.equal(_bench(flat_folder, size=28).load().test, splits.test)
    assert _bench(flat_folder, size=28, train_limit=5).load().train.shape == (5, 1, 28, 28)


def test_centre_crop_and_resize_have_their_known_answers():
    rng = np.random.default_rng(0)
    pattern = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    wide = np.zeros((32, 48, 3), np.uint8)
    wide[:, :8], wide[:, 40:], wide[:, 8:40] = (255, 0, 0), (0, 0, 255), pattern

    def png(array: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        return buffer.getvalue()

    assert np.array_equal(read_square(png(wide), 32, 2.0), pattern)  # the centre square, pixels unchanged
    assert np.array_equal(read_square(png(wide.transpose(1, 0, 2).copy()), 32, 2.0), pattern.transpose(1, 0, 2))
    flat = np.full((64, 64, 3), (10, 200, 30), np.uint8)  # shrinking a constant image keeps it constant
    assert (read_square(png(flat), 32, 2.0) == (10, 200, 30)).all()
    # a grey ramp 2x over 128 px shrunk 4x: each output pixel is the ramp at its centre, 2 (4i + 1.5)
    ramp = np.tile((2 * np.arange(128)).astype(np.uint8), (128, 1))
    shrunk = read_square(png(ramp), 32, 2.0)
    assert shrunk.shape == (32, 32) and (shrunk == 8 * np.arange(32) + 3).all()


def test_subfolders_label_the_images_a_corrupt_file_is_skipped_and_colour_is_kept(class_folder, digits, caplog):
    image_folder_module._MEMORY.clear()
    with caplog.at_level(logging.WARNING):
        bench = _bench(class_folder, size=28)
        splits = bench.load()
    warnings = [r.getMessage() for r in caplog.records if "broken.png" in r.getMessage()]
    assert len(warnings) == 1 and str(class_folder / "zero" / "broken.png") in warnings[0]
    info = splits.info
    assert info["class_names"] == ["one", "two", "zero"] and info["skipped"] == ["zero/broken.png"]
    assert bench.spec.shape == (3, 28, 28) and info["channels"] == 3 and info["n_colour_images"] > 0
    assert bench.classifier_dataset == "image_folder" and bench.classifier_source().config.train_limit is None
    # each image's label is its folder's, and a grey image is the same in its three channels
    images, labels = digits
    names = {0: "zero", 1: "one", 2: "two"}
    by_pixels = {}
    for i, (image, label) in enumerate(zip(images, labels)):
        if int(label) in names and i % 3:
            by_pixels[torch.from_numpy(image).float().div(127.5).sub(1).numpy().tobytes()] = names[int(label)]
    found = 0
    for x, y in zip(torch.cat([splits.train, splits.test]), torch.cat([splits.train_labels, splits.test_labels])):
        if torch.equal(x[0], x[1]) and torch.equal(x[1], x[2]):
            assert by_pixels[x[0].numpy().tobytes()] == info["class_names"][int(y)]
            found += 1
    assert found == len(by_pixels)
    assert sum(info["split"]["class_counts"][name][1] for name in info["class_names"]) == len(splits.test)
    grey = _bench(class_folder, size=28, channels=1).load()  # colour made grey by luma: 0.299 R
    assert grey.train.shape[1] == 1 and grey.info["channels"] == 1


def test_the_cache_is_outside_the_folder_used_again_and_a_hostile_one_is_refused(flat_folder, monkeypatch, tmp_path):
    image_folder_module._MEMORY.clear()
    first = _bench(flat_folder, size=32).load()
    cache = Path(first.info["cache_file"])
    assert cache.is_file() and not cache.is_relative_to(flat_folder)
    image_folder_module._MEMORY.clear()

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cache should have been read")

    monkeypatch.setattr(image_folder_module, "read_square", no_decoding)
    again = _bench(flat_folder, size=32).load()
    assert torch.equal(again.train, first.train) and torch.equal(again.test, first.test)
    image_folder_module._MEMORY.clear()
    marker = tmp_path / "ran"
    cache.write_bytes(_hostile_torch_file(marker))
    with pytest.raises(UnsafeFileError, match="refused"):
        _bench(flat_folder, size=32).load()
    assert not marker.exists()
    cache.unlink()


class _Runs:
    """Pickles to a call of os.system (what a tampered cache file could hold)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def _hostile_torch_file(marker: Path) -> bytes:
    buffer = io.BytesIO()
    torch.save({"format": 1, "images": _Runs(marker)}, buffer)
    return buffer.getvalue()


def test_too_long_an_image_is_a_clear_error_naming_it(tmp_path):
    for i in range(4):
        Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / f"{i}.png")
    Image.fromarray(np.zeros((20, 100), np.uint8)).save(tmp_path / "strip.png")
    with pytest.raises(DataMissingError, match=r"strip\.png is 100x20 px.*max_aspect"):
        _bench(tmp_path).load()
    assert _bench(tmp_path, max_aspect=5.0).load().info["n_images"] == 5


def test_every_model_trains_on_a_labelled_colour_folder(class_folder, tmp_path):
    from gvae_bench.sweep import run_sweep

    summary = run_sweep(MODELS, "image_folder", profile="smoke", out=tmp_path / "out",
                        settings={"benchmark": [("root", str(class_folder))]}, device="cpu")
    assert summary.exit_status == 0 and len(summary.results) == len(MODELS)
    for result in summary.results:
        record = result.record
        assert record.status == "finished", (record.model, record.reason)
        assert record.config["network_family"] == "dcgan32" and record.data["class_names"] == ["one", "two", "zero"]
        assert record.data["n_test"] == record.data["split"]["n_test"] and record.data["n_skipped"] == 1
        for name in ("mmd", "ms_ssim", *FEATURE_METRICS):
            if name == "fid":  # a dozen test images: too few for a 128-d covariance
                assert "128 features" in record.metrics[name]["na"], record.metrics[name]
                continue
            assert record.metrics[name]["value"] is not None, (record.model, name, record.metrics[name])
        assert record.metrics["kid"]["details"]["feature_space"] == "image_folder classifier penultimate layer"


def test_the_documented_command_runs_on_a_folder_of_mnist_pngs(flat_folder, tmp_path):
    out = tmp_path / "out"
    result = invoke_cli("--models", "vae,wgan_gp", "--dataset", "image_folder", "--set", f"benchmark.root={flat_folder}",
                        "--profile", "smoke", "--out", str(out))
    assert result.returncode == 0, result.stderr
    records = [json.loads(p.read_text()) for p in sorted(out.glob("runs/image_folder/*/*/seed0/record.json"))]
    assert [r["model"] for r in records] == ["vae", "wgan_gp"]
    for record in records:
        assert record["status"] == "finished" and record["metrics"]["mmd"]["value"] is not None
        assert record["data"]["split"]["split_seed"] == 0 and record["data"]["file_list_sha256"]
        assert all(record["metrics"][name]["na"] == "needs classifier" for name in FEATURE_METRICS)
        for name in ("copying", "authenticity", "vendi"):  # no labels, no classifier: no fixed feature space
            assert "needs a fixed feature space" in record["metrics"][name]["na"], record["metrics"][name]
    assert (out / "leaderboards" / "image_folder" / "table4.md").is_file()


def test_the_classifier_command_trains_the_classifier_of_a_labelled_folder(class_folder, flat_folder):
    from gvae_bench.execution.classifier import train_classifier

    result = invoke_cli("classifier", "--dataset", "image_folder", "--set", f"benchmark.root={class_folder}")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    bench = _bench(class_folder)
    assert printed["dataset"] == "image_folder" and printed["n_train"] == bench.load().train.shape[0]
    _, record = train_classifier("image_folder", Path("unused"), source=bench.classifier_source())
    assert record["key"] == printed["key"]  # the very classifier a run on this folder uses (from the cache)
    line = _one_line_error(invoke_cli("classifier", "--dataset", "image_folder", "--set", f"benchmark.root={flat_folder}"))
    assert "no class labels" in line and "subfolder" in line
    line = _one_line_error(invoke_cli("classifier", "--dataset", "image_folder", "--set", "train.steps=3"))
    assert "only benchmark settings" in line


def _one_line_error(result) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_an_empty_folder_or_a_missing_root_is_one_line_at_the_command_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    common = ("--models", "vae", "--dataset", "image_folder", "--profile", "smoke", "--out", str(tmp_path / "out"))
    line = _one_line_error(invoke_cli(*common, "--set", f"benchmark.root={empty}"))
    assert str(empty) in line and "no image files" in line and ".png" in line
    line = _one_line_error(invoke_cli(*common))
    assert "--set benchmark.root=DIR" in line


def test_a_root_that_is_not_a_folder_is_refused_before_any_run(tmp_path):
    from gvae_bench.errors import UserError
    from gvae_bench.sweep import plan_sweep

    for root, why in ((tmp_path / "absent", "does not exist"), (tmp_path / "file.png", "is not a folder")):
        if root.suffix:
            root.write_bytes(b"")
        with pytest.raises(UserError, match=f"{root} {why}"):
            plan_sweep(["vae"], "image_folder", profile="smoke", out=tmp_path / "out", device="cpu",
                       settings={"benchmark": [("root", str(root))]})
    assert not (tmp_path / "out" / "runs").exists()
