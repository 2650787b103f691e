"""A folder of image files as square uint8 arrays: which files count, their class subfolders, and
how one file is read (Pillow), oriented, made grey or colour, centre-cropped and resized.

Pure functions of the files; the benchmark (``benchmarks/image_folder.py``) adds the cache, the
split and the tensors.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

#: the file suffixes read as images (compared in lower case); other files are left alone
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
#: Pillow modes of one grey channel (``I;16*`` and ``I``: 16-bit grey, scaled to 8 bits)
_GREY_MODES = ("1", "L", "LA", "La", "F")


@dataclass(frozen=True)
class ImageFile:
    """One image file: its path relative to the folder (POSIX form), size in bytes, mtime in ns."""

    relative: str
    size: int
    mtime_ns: int


class UnreadableImage(ValueError):
    """A file with an image suffix that Pillow cannot decode (the message says why)."""


class UncroppableImage(ValueError):
    """An image too far from square for a centre crop (the message gives its size)."""


def list_images(root: Path) -> tuple[list[ImageFile], int]:
    """The image files under ``root`` (any depth; by suffix, in any case), sorted by relative path,
    and how many other files were passed over. Hidden files and folders (a leading dot) are skipped."""
    found, other = [], 0
    for path in sorted(Path(root).rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            other += 1
            continue
        stat = path.stat()
        found.append(ImageFile(relative.as_posix(), stat.st_size, stat.st_mtime_ns))
    return found, other


def fingerprint(files: list[ImageFile]) -> str:
    """SHA-256 of the file list: relative paths, byte sizes and modification times."""
    text = json.dumps([[f.relative, f.size, f.mtime_ns] for f in files])
    return hashlib.sha256(text.encode()).hexdigest()


def file_list_sha256(relatives: list[str], sizes: list[int]) -> str:
    """SHA-256 of the relative paths and byte sizes of the files used, in order (no times: a copy of
    the folder has the same one)."""
    return hashlib.sha256(json.dumps([list(pair) for pair in zip(relatives, sizes)]).encode()).hexdigest()


def class_labels(relatives: list[str]) -> tuple[list[str] | None, list[int] | None, str]:
    """Class names (sorted) and each file's label, from the first folder of its relative path, when
    every file sits in a subfolder and there are at least two; else (None, None, the reason)."""
    tops = [Path(r).parts[0] if len(Path(r).parts) > 1 else None for r in relatives]
    if any(top is None for top in tops):
        loose = sum(top is None for top in tops)
        return None, None, f"none: {loose} image(s) lie directly in the folder, not in class subfolders"
    names = sorted(set(tops))
    if len(names) < 2:
        return None, None, f"none: every image is in the one subfolder {names[0]!r}; two classes are needed"
    index = {name: i for i, name in enumerate(names)}
    return names, [index[top] for top in tops], f"from {len(names)} class subfolders"


def _grey_or_rgb(image: Image.Image) -> Image.Image:
    """One 8-bit grey channel (mode L) for grey modes, else three (RGB; alpha is dropped)."""
    if image.mode == "I" or image.mode.startswith("I;16"):
        values = np.asarray(image, dtype=np.float64) / 257.0  # 16-bit grey: 65535 -> 255
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    return image.convert("L" if image.mode in _GREY_MODES else "RGB")


def read_square(data: bytes, size: int, max_aspect: float) -> np.ndarray:
    """The image in ``data`` as a ``size`` x ``size`` uint8 array: (size, size) for grey images,
    (size, size, 3) for colour ones.

    Steps: decode with Pillow (the first frame of an animation), turn upright by its EXIF
    orientation, take one grey or three RGB channels, then the centred square of side
    min(width, height) resized to ``size`` (``ImageOps.fit``, bicubic, antialiased when shrinking):
    the same as resizing the shorter side to ``size`` and cropping the centre. An image that is
    already ``size`` x ``size`` keeps its pixels exactly. ``UnreadableImage`` when Pillow cannot
    decode it; ``UncroppableImage`` when its longer side exceeds ``max_aspect`` times its shorter.
    """
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            image = _grey_or_rgb(ImageOps.exif_transpose(opened))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(f"{type(exc).__name__}: {str(exc).strip() or 'cannot decode'}") from None
    width, height = image.size
    if min(width, height) < 1:
        raise UnreadableImage(f"it is {width}x{height} px")
    if max(width, height) > max_aspect * min(width, height):
        raise UncroppableImage(f"{width}x{height} px")
    if (width, height) != (size, size):
        image = ImageOps.fit(image, (size, size), method=Image.Resampling.BICUBIC, centering=(0.5, 0.5))
    return np.array(image, dtype=np.uint8)


def has_colour(array: np.ndarray) -> bool:
    """Whether an (H, W, 3) array has a pixel whose channels differ (a grey (H, W) array has none)."""
    return array.ndim == 3 and bool((array[..., 0] != array[..., 1]).any() or (array[..., 1] != array[..., 2]).any())


def to_channels(array: np.ndarray, channels: int) -> np.ndarray:
    """An (H, W) or (H, W, 3) uint8 array as (channels, H, W): grey repeated into three channels,
    colour made grey by Pillow's ITU-R 601-2 luma (L = 0.299 R + 0.587 G + 0.114 B), which keeps a
    pixel with R = G = B at its value."""
    if array.ndim == 2:
        grey = array[None]
        return grey if channels == 1 else np.repeat(grey, 3, axis=0)
    if channels == 3:
        return np.ascontiguousarray(array.transpose(2, 0, 1))
    return np.array(Image.fromarray(array).convert("L"), dtype=np.uint8)[None]
