"""The image sets ``gvae_bench.score`` reads: a folder of PNG/JPEG images, a ``.npy``/``.npz`` array, a registered
benchmark's split (``benchmark:NAME:SPLIT``), or an array or tensor handed in from Python.

Every set comes out in the harness's convention, the one the benchmarks load their images in and the models sample
in: float32 (N, C, H, W) (or (N, C, D, H, W) volumes) with values in [-1, 1], 8-bit pixels mapped by
``x / 127.5 - 1`` (``benchmarks/torchvision_images.py``, ``benchmarks/image_folder.py``). Anything that cannot be
read that way is a ``UserError`` of one line that names the file and what was wrong.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gvae_bench.errors import UserError

__all__ = ["IMAGE_SUFFIXES", "ImageSet", "load_image_set"]

#: the files a folder is read for (case-insensitive)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: Pillow modes of 8-bit grey images; 8-bit colour modes are converted to RGB
_GREY_MODES = {"1", "L", "LA"}
_COLOUR_MODES = {"P", "PA", "RGB", "RGBA", "CMYK", "YCbCr"}
#: values this far outside the declared range are rounding, not data (float32 of a [-1, 1] image)
_RANGE_SLACK = 1e-5


@dataclass
class ImageSet:
    """One set of samples in the harness's convention: ``images`` float32 in [-1, 1]; ``source`` what it was read
    from; ``sha256`` the SHA-256 of its float32 tensor (dtype, shape, bytes), the key of its cached features."""

    images: torch.Tensor
    source: str
    sha256: str

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "n": len(self.images), "shape": list(self.images.shape[1:]),
                "sha256": self.sha256}


def _content_sha256(images: torch.Tensor) -> str:
    array = images.detach().cpu().contiguous().numpy()
    digest = hashlib.sha256(f"{array.dtype}{tuple(array.shape)};".encode())
    digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def _finish(images: torch.Tensor, source: str) -> ImageSet:
    images = images.float().contiguous()
    if len(images) < 2:
        raise UserError(f"{source}: holds {len(images)} sample(s); the metrics need at least 2")
    return ImageSet(images, source, _content_sha256(images))


def _channels_first(array: np.ndarray, source: str) -> np.ndarray:
    """(N, H, W) -> (N, 1, H, W); (N, C, H, W) kept when C is 1 or 3; (N, H, W, C) with C 1 or 3 transposed;
    (N, 1, D, H, W) volumes kept."""
    if array.ndim == 3:
        return array[:, None]
    if array.ndim == 4 and array.shape[1] in (1, 3):
        return array
    if array.ndim == 4 and array.shape[3] in (1, 3):
        return array.transpose(0, 3, 1, 2)
    if array.ndim == 5 and array.shape[1] == 1:
        return array
    raise UserError(f"{source}: an array of shape {array.shape} is not a set of images; give (N, H, W), (N, C, H, W) "
                    "or (N, H, W, C) with C = 1 or 3, or (N, 1, D, H, W) volumes")


def _from_array(array: np.ndarray | torch.Tensor, source: str, value_range: tuple[float, float] | None) -> ImageSet:
    """An array as a set: uint8 pixels by x / 127.5 - 1; floats checked against ``value_range`` (default (-1, 1))
    and mapped linearly from it to [-1, 1]."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    array = _channels_first(np.asarray(array), source)
    if array.dtype == np.uint8:
        if value_range is not None and tuple(value_range) != (0, 255):
            raise UserError(f"{source}: 8-bit pixels are read as 0..255; --range {value_range[0]},{value_range[1]} "
                            "does not apply to them")
        return _finish(torch.from_numpy(np.ascontiguousarray(array)).float().div_(127.5).sub_(1.0), source)
    if not np.issubdtype(array.dtype, np.floating):
        raise UserError(f"{source}: holds {array.dtype} values; give uint8 pixels (0..255) or floating-point values")
    low, high = value_range or (-1.0, 1.0)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise UserError(f"the value range must be two finite numbers LOW < HIGH, got {value_range}")
    if array.size == 0:
        raise UserError(f"{source}: holds no samples (shape {array.shape})")
    if not np.isfinite(array).all():
        raise UserError(f"{source}: holds NaN or infinite values")
    found_low, found_high = float(array.min()), float(array.max())
    slack = _RANGE_SLACK * (high - low)
    if found_low < low - slack or found_high > high + slack:
        raise UserError(f"{source}: values lie in [{found_low:.4g}, {found_high:.4g}], outside the range "
                        f"[{low:g}, {high:g}] they are read in; give the data's range (--range 0,1 for [0, 1] "
                        "data, --range 0,255 for 0..255 floats)")
    images = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if (low, high) != (-1.0, 1.0):  # values already in the harness's range are kept bit for bit
        images = ((images - low) / (high - low) * 2.0 - 1.0).clamp_(-1.0, 1.0)
    return _finish(images, source)


def _from_npz(path: Path, key: str | None) -> np.ndarray:
    with np.load(path, allow_pickle=False) as archive:
        names = list(archive.files)
        if key is None:
            if len(names) != 1:
                raise UserError(f"{path}: holds the arrays {', '.join(names) or 'none'}; name one as {path}:KEY")
            key = names[0]
        if key not in names:
            raise UserError(f"{path}: has no array {key!r}; it holds {', '.join(names)}")
        return archive[key]


def _read_array_file(text: str, value_range: tuple[float, float] | None) -> ImageSet:
    path, key = Path(text), None
    if not path.exists() and ":" in text:
        head, key = text.rsplit(":", 1)
        path = Path(head)
    if not path.is_file():
        raise UserError(f"{text}: no such file")
    try:
        array = _from_npz(path, key) if path.suffix.lower() == ".npz" else np.load(path, allow_pickle=False)
    except ValueError as exc:  # an object array (pickled): refused, nothing in it run
        raise UserError(f"{path}: cannot be read as a plain numeric array ({exc})") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot be read as a .npy/.npz file ({exc})") from None
    return _from_array(array, str(path), value_range)


def _read_folder(folder: Path, channels: int | None) -> ImageSet:
    """Every PNG/JPEG under ``folder`` (subfolders included), in sorted path order, as 8-bit grey (1 channel) or
    RGB (3 channels): grey when every image is grey, unless ``channels`` says otherwise."""
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"{folder}: holds no PNG or JPEG images ({', '.join(IMAGE_SUFFIXES)})")
    pictures = []
    for path in files:
        try:
            with Image.open(path) as image:
                image.load()
                pictures.append(image.copy())
        except (UnidentifiedImageError, OSError) as exc:
            raise UserError(f"{path}: cannot be read as an image ({exc})") from None
    for path, picture in zip(files, pictures):
        if picture.mode not in _GREY_MODES | _COLOUR_MODES:
            raise UserError(f"{path}: Pillow mode {picture.mode} (16-bit or floating point) is not read; save 8-bit "
                            "grey or RGB images, or give the values as a .npy array")
        if picture.size != pictures[0].size:
            raise UserError(f"{path}: is {picture.size[0]}x{picture.size[1]} px, but {files[0].name} is "
                            f"{pictures[0].size[0]}x{pictures[0].size[1]}; every image of a set must have one size")
    if channels is None:
        channels = 1 if all(p.mode in _GREY_MODES for p in pictures) else 3
    arrays = [np.asarray(p.convert("L" if channels == 1 else "RGB"), dtype=np.uint8) for p in pictures]
    stacked = np.stack(arrays)  # (N, H, W) or (N, H, W, 3)
    stacked = stacked[:, None] if channels == 1 else stacked.transpose(0, 3, 1, 2)
    images = torch.from_numpy(np.ascontiguousarray(stacked)).float().div_(127.5).sub_(1.0)
    return _finish(images, f"{folder} ({len(files)} images)")


def _read_benchmark(text: str, data_root: Path | None) -> ImageSet:
    from gvae_bench.registry import BENCHMARKS
    from gvae_bench.execution.runs import resolve_data_root

    parts = text.split(":")
    if len(parts) != 3 or parts[2] not in ("train", "test"):
        raise UserError(f"{text}: a benchmark's split is written benchmark:NAME:SPLIT with SPLIT train or test, "
                        "e.g. benchmark:mnist:test")
    benchmark = BENCHMARKS.get(parts[1])(resolve_data_root(data_root))
    spec = benchmark.spec
    if spec.kind not in ("image", "volume") or tuple(spec.value_range or ()) != (-1.0, 1.0):
        raise UserError(f"{parts[1]}: its samples are {spec.kind} data in {spec.value_range}; score compares "
                        "images or volumes in [-1, 1]")
    splits = benchmark.load()
    return _finish(getattr(splits, parts[2]), text)


def load_image_set(given: str | Path | np.ndarray | torch.Tensor, *, data_root: Path | str | None = None,
                   value_range: tuple[float, float] | None = None, channels: int | None = None,
                   name: str = "set") -> ImageSet:
    """The set ``given`` names, in the harness's convention (module docstring).

    Args:
        given: a folder of PNG/JPEG images; a ``.npy`` file, a ``.npz`` file with one array (or ``FILE.npz:KEY``);
            ``benchmark:NAME:SPLIT`` (a registered benchmark's ``train`` or ``test`` split, read from
            ``data_root``); or an array or tensor.
        data_root: the data folder for ``benchmark:`` sets (default ``$GVAE_BENCH_DATA``, else ./data).
        value_range: the range floating-point values are in (default (-1, 1)); uint8 values are 0..255.
        channels: for folders, 1 (grey) or 3 (RGB); None: grey when every image is.
        name: what the set is called in messages (real, fake, train).

    Raises:
        UserError: anything that is not a readable set of at least 2 images, in one line.
    """
    if isinstance(given, (np.ndarray, torch.Tensor)):
        return _from_array(given, f"the {name} array", value_range)
    text = str(given)
    if text.startswith("benchmark:"):
        return _read_benchmark(text, Path(data_root) if data_root is not None else None)
    path = Path(text)
    if path.is_dir():
        return _read_folder(path, channels)
    if path.suffix.lower() in (".npy", ".npz") or ":" in path.name:
        return _read_array_file(text, value_range)
    if not path.exists():
        raise UserError(f"{text}: no such file or folder (give a folder of images, a .npy/.npz file or "
                        "benchmark:NAME:SPLIT)")
    raise UserError(f"{text}: not a folder, a .npy/.npz file or benchmark:NAME:SPLIT")
