"""``image_folder``: any folder of images (PNG, JPEG, BMP, GIF, TIFF, WebP, PPM/PGM; grey or colour)
as a benchmark, with class labels from its subfolders when it has them.

Preprocessing, every step a config field (``ImageFolderConfig``):

1. the files: every file under ``root`` (any depth) whose suffix is an image suffix
   (``benchmarks._image_files.IMAGE_SUFFIXES``), hidden ones left out, sorted by path; a file
   Pillow cannot decode is skipped with one warning naming it;
2. each image upright (EXIF orientation), its centred square of side min(width, height) resized
   to ``size`` x ``size`` px (bicubic, antialiased; the shorter side resized to ``size`` and the
   centre cropped). An image whose longer side exceeds ``max_aspect`` times its shorter is an
   error naming it: its centre square would drop more than half of it;
3. channels: ``auto`` takes three (RGB) when any image has a pixel whose channels differ and one
   (grey) otherwise; grey images are repeated into three channels, colour ones made grey by
   ITU-R 601-2 luma when one channel is asked for. Pixels are scaled to [-1, 1];
4. labels: when every image sits in a subfolder of ``root`` and there are at least two, the
   immediate subfolders are the classes (sorted names, labels 0, 1, ...) and the domain classifier
   of the feature-space metrics (FID, KID, precision, recall, density, coverage) is trained on
   them; otherwise those metrics read "n/a" and the others are unchanged;
5. split: each file's rank in the order of SHA-256(``split_seed``:path) decides: the first
   round(``test_fraction`` x n) (at least 2) are the test set, the rest the training set, in that
   order (so ``train_limit`` takes a random subset). The split depends only on the seed and the
   file names, not on any library's random generator, and adding files moves few of the others.

The preprocessed images (uint8, before the split) are cached under ``image_folder/`` in the
harness's cache folder (``gvae_bench.execution.checkpoints.cache_folder``; never inside ``root``), keyed by
the file list with sizes and modification times and by ``size``, ``channels`` and ``max_aspect``;
the cache is read with ``torch.load(weights_only=True)`` (tensors and plain data only), so an
altered cache file is refused, never run. The split and the data's facts (counts, classes, the
skipped files, SHA-256 of the file list and of the files' bytes) go into the run record's data.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from gvae_bench.atomic import atomic_save
from gvae_bench.benchmarks._image_files import (
    IMAGE_SUFFIXES, UncroppableImage, UnreadableImage, class_labels, file_list_sha256, fingerprint, has_colour,
    list_images, read_square, to_channels,
)
from gvae_bench.execution.checkpoints import UnreadableFileError, cache_folder, safe_load
from gvae_bench.contracts.benchmark import Benchmark, BenchmarkConfig, DataSpec, DataSplits
from gvae_bench.errors import DataMissingError, UserError
from gvae_bench.registry import BENCHMARKS

log = logging.getLogger(__name__)

#: image sides with a network family (dcgan28, dcgan32, resnet)
SIZES = (28, 32, 64, 128)
#: the version of the preprocessing, part of the cache key
_FORMAT = 1
_SHOWN = 20  # skipped files named in the record


@dataclass
class ImageFolderConfig(BenchmarkConfig):
    """``root``: the folder of images (required; stored as an absolute path); ``size``: the side in
    px (28, 32, 64 or 128); ``channels``: ``"auto"``, 1 or 3; ``max_aspect``: the largest
    longer-to-shorter side ratio taken; ``test_fraction`` and ``split_seed``: the split (see the
    module docstring)."""

    root: str | None = None
    size: int = 32
    channels: Literal["auto", 1, 3] = "auto"
    max_aspect: float = 2.0
    test_fraction: float = 0.2
    split_seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.root is not None:
            self.root = str(Path(self.root).expanduser().absolute())

    def validate(self) -> None:
        super().validate()
        if self.size not in SIZES:
            raise ValueError(f"size must be one of {', '.join(map(str, SIZES))} (px a side, the sizes the network "
                             f"families take), got {self.size}")
        if self.root is not None and not self.root.strip():
            raise ValueError("root must name a folder of images, got an empty string")
        if not self.max_aspect >= 1:
            raise ValueError(f"max_aspect must be >= 1 (longer side over shorter), got {self.max_aspect}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")


@dataclass
class _Prepared:
    """The preprocessed folder before the split: images (n, C, size, size) uint8 in file order."""

    images: torch.Tensor
    labels: torch.Tensor | None
    class_names: list[str] | None
    labels_note: str
    files: list[str]
    skipped: list[str]
    facts: dict[str, Any]

    def to_state(self) -> dict[str, Any]:
        return {"format": _FORMAT, "images": self.images, "labels": self.labels, "class_names": self.class_names,
                "labels_note": self.labels_note, "files": self.files, "skipped": self.skipped, "facts": self.facts}

    @classmethod
    def from_state(cls, state: Any, size: int) -> "_Prepared":
        """From a cache file's contents; ValueError when they are not what ``to_state`` writes."""
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError("not a cache of this preprocessing version")
        images, labels = state.get("images"), state.get("labels")
        if (not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4
                or tuple(images.shape[2:]) != (size, size) or len(state.get("files", ())) != len(images)
                or (labels is not None and (not isinstance(labels, torch.Tensor) or len(labels) != len(images)))):
            raise ValueError("its arrays do not match its file list")
        return cls(images, labels, state["class_names"], state["labels_note"], list(state["files"]),
                   list(state["skipped"]), dict(state["facts"]))


_MEMORY: dict[str, _Prepared] = {}  # this process's preprocessed folders, by cache key (the last two)


@BENCHMARKS.register("image_folder")
class ImageFolder(Benchmark):
    """Any folder of images (PNG, JPEG, ...; grey or colour) at 28/32/64/128 px; class subfolders give labels."""

    Config = ImageFolderConfig

    def __init__(self, data_root: Path, config: BenchmarkConfig | None = None) -> None:
        super().__init__(data_root, config)
        self._prepared_data: _Prepared | None = None

    @property
    def spec(self) -> DataSpec:
        cfg: ImageFolderConfig = self.config  # type: ignore[assignment]
        channels = cfg.channels if cfg.channels != "auto" else int(self._prepared().images.shape[1])
        return DataSpec(shape=(channels, cfg.size, cfg.size), kind="image", value_range=(-1.0, 1.0))

    @property
    def classifier_dataset(self) -> str | None:  # type: ignore[override]
        """This benchmark's own name when its images have class labels (subfolders), else None."""
        return self.registered_name if self._prepared().labels is not None else None

    def classifier_source(self) -> "ImageFolder | None":
        """This folder at these settings, without ``train_limit``: the classifier learns its labels."""
        if self.classifier_dataset is None:
            return None
        return ImageFolder(self.data_root, self.config.replace(train_limit=None))

    def root(self) -> Path:
        """The folder of images, checked: set, present, a folder."""
        cfg: ImageFolderConfig = self.config  # type: ignore[assignment]
        if cfg.root is None:
            raise UserError("image_folder needs the folder of images: --set benchmark.root=DIR (a folder of PNG, JPEG, "
                            "... files; class subfolders give labels)")
        root = Path(cfg.root)
        if not root.is_dir():
            raise DataMissingError(f"image_folder: {root} {'is not a folder' if root.exists() else 'does not exist'}; "
                                   "--set benchmark.root=DIR names a folder of images")
        return root

    def _prepared(self) -> _Prepared:
        if self._prepared_data is None:
            self._prepared_data = self._prepare()
        return self._prepared_data

    def _prepare(self) -> _Prepared:
        cfg: ImageFolderConfig = self.config  # type: ignore[assignment]
        root = self.root()
        files, other = list_images(root)
        if not files:
            raise DataMissingError(f"image_folder: no image files in {root} or its subfolders ({other} other file(s); "
                                   f"image suffixes: {', '.join(IMAGE_SUFFIXES)})")
        settings = {"format": _FORMAT, "size": cfg.size, "channels": cfg.channels, "max_aspect": cfg.max_aspect}
        key = hashlib.sha256(f"{fingerprint(files)}{sorted(settings.items())}".encode()).hexdigest()[:16]
        if key in _MEMORY:
            return _MEMORY[key]
        folder = cache_folder("image_folder")
        if folder.absolute().is_relative_to(root):
            raise UserError(f"image_folder: the cache folder {folder} is inside the image folder {root}; set "
                            "GVAE_BENCH_CACHE to a folder outside it")
        cache = folder / f"{key}.pt"
        prepared = self._read_cache(cache, cfg.size)
        if prepared is None:
            prepared = self._read_files(root, files, cfg)
            atomic_save(cache, lambda buffer: torch.save(prepared.to_state(), buffer))
            log.info("image_folder: %d images of %s preprocessed, cached in %s", len(prepared.images), root, cache)
        prepared.facts = {**prepared.facts, "other_files_ignored": other, "cache_file": str(cache)}
        if len(_MEMORY) >= 2:
            del _MEMORY[next(iter(_MEMORY))]
        _MEMORY[key] = prepared
        return prepared

    def _read_cache(self, cache: Path, size: int) -> _Prepared | None:
        if not cache.is_file():
            return None
        try:
            prepared = _Prepared.from_state(safe_load(cache), size)  # an unsafe file: UnsafeFileError, never run
        except (UnreadableFileError, ValueError) as exc:
            log.warning("image_folder: the cache %s cannot be used (%s); the images are read again", cache, exc)
            return None
        if prepared.skipped:
            log.warning("image_folder: %d unreadable file(s) skipped (as when the cache was made): %s",
                        len(prepared.skipped), ", ".join(prepared.skipped[:_SHOWN]))
        return prepared

    def _read_files(self, root: Path, files: list, cfg: ImageFolderConfig) -> _Prepared:
        arrays, used, sizes, skipped = [], [], [], []
        content = hashlib.sha256()
        for file in files:
            path = root / file.relative
            try:
                data = path.read_bytes()
                array = read_square(data, cfg.size, cfg.max_aspect)
            except (OSError, UnreadableImage) as exc:
                log.warning("image_folder: skipped %s: it cannot be read as an image (%s)", path, exc)
                skipped.append(file.relative)
                continue
            except UncroppableImage as exc:
                raise DataMissingError(
                    f"image_folder: {path} is {exc}, longer than {cfg.max_aspect:g} times its shorter side, so its "
                    f"centre square would drop most of it; crop or remove it, or raise --set benchmark.max_aspect"
                ) from None
            arrays.append(array)
            used.append(file.relative)
            sizes.append(len(data))
            content.update(f"{file.relative}\0{len(data)}\0".encode())
            content.update(data)
        if not arrays:
            raise DataMissingError(f"image_folder: none of the {len(files)} image file(s) in {root} could be read "
                                   f"(first: {skipped[0]}); see the warnings above")
        colour = sum(has_colour(array) for array in arrays)
        channels = cfg.channels if cfg.channels != "auto" else (3 if colour else 1)
        images = torch.from_numpy(np.stack([to_channels(array, channels) for array in arrays]))
        class_names, labels, note = class_labels(used)
        facts = {"n_image_files": len(files), "n_images": len(used), "n_skipped": len(skipped),
                 "n_colour_images": int(colour), "channels": channels, "size": cfg.size,
                 "file_list_sha256": file_list_sha256(used, sizes), "content_sha256": content.hexdigest()}
        return _Prepared(images, None if labels is None else torch.tensor(labels, dtype=torch.int64), class_names,
                         note, used, skipped, facts)

    def _load(self) -> DataSplits:
        cfg: ImageFolderConfig = self.config  # type: ignore[assignment]
        prepared, root = self._prepared(), self.root()
        n = len(prepared.images)
        n_test = max(2, int(round(cfg.test_fraction * n)))
        if n - n_test < 1:
            raise DataMissingError(f"image_folder: {n} readable image(s) in {root}; at least 3 are needed (2 or more "
                                   f"for the test set, test_fraction {cfg.test_fraction:g}, and 1 for training)")
        order = sorted(range(n), key=lambda i: hashlib.sha256(f"{cfg.split_seed}:{prepared.files[i]}".encode())
                       .digest())
        test_index, train_index = torch.tensor(order[:n_test]), torch.tensor(order[n_test:])

        def scale(index: torch.Tensor) -> torch.Tensor:
            return prepared.images[index].float().div_(127.5).sub_(1.0)

        labels = prepared.labels
        split: dict[str, Any] = {
            "kind": "seeded: rank of sha256(split_seed:path)", "split_seed": cfg.split_seed,
            "test_fraction": cfg.test_fraction, "n_train_full": n - n_test, "n_test": n_test,
            "test_files_sha256": hashlib.sha256("\n".join(sorted(prepared.files[i] for i in order[:n_test])).encode())
            .hexdigest(),
        }
        if labels is not None:
            split["class_counts"] = {name: [int((labels[train_index] == k).sum()), int((labels[test_index] == k).sum())]
                                     for k, name in enumerate(prepared.class_names or [])}
        info = {"source": str(root), **prepared.facts, "labels": prepared.labels_note,
                "class_names": prepared.class_names, "skipped": prepared.skipped[:_SHOWN], "split": split}
        return DataSplits(train=scale(train_index), test=scale(test_index),
                          train_labels=None if labels is None else labels[train_index],
                          test_labels=None if labels is None else labels[test_index], info=info)
