"""CIFAR-10 (Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny Images") in
torchvision's folder layout, read without running anything the files could hold.

Layout (``torchvision.datasets.CIFAR10``): ``<data root>/cifar-10-batches-py/`` holds the
"python version" of the dataset, ``data_batch_1`` ... ``data_batch_5`` (10,000 training images
each), ``test_batch`` (10,000) and ``batches.meta`` (``label_names``). With a network, missing
files are downloaded and extracted there by torchvision's download function from the URL and
checksum its CIFAR10 class names; offline (or with ``$GVAE_BENCH_OFFLINE``), the error names the
folder and the files.

The batch files are Python pickles: a dict with ``data`` (a uint8 numpy array of shape
(n, 3072): 1024 red, then 1024 green, then 1024 blue values of a 32x32 image, row by row) and
``labels`` (n class indices 0-9). torchvision reads them with ``pickle.load``, which would run any
code a tampered file names. Here they are read with ``_BatchUnpickler``, whose ``find_class``
allows exactly the three globals a pickled numpy array needs (numpy's ``_reconstruct``, under its
numpy 1 and numpy 2 module names, ``numpy.ndarray`` and ``numpy.dtype``) and refuses every other,
so a file that names anything else is an error and nothing in it runs; what it holds is then
checked (array dtype and shape, label range). Whether each file matches the md5 of the official
release (torchvision's list) is recorded in the run's data. Images are scaled to [-1, 1].
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy._core.multiarray import _reconstruct
from torchvision import datasets
from torchvision.datasets.utils import check_integrity, download_and_extract_archive

from gvae_bench.benchmarks.torchvision_images import download_or_explain
from gvae_bench.execution.checkpoints import UnsafeFileError
from gvae_bench.contracts.benchmark import Benchmark, DataSpec, DataSplits
from gvae_bench.errors import DataMissingError
from gvae_bench.registry import BENCHMARKS

log = logging.getLogger(__name__)
_WARNED: set[str] = set()  # folders whose md5 difference was logged by this process

_LAYOUT = datasets.CIFAR10
TRAIN_FILES = tuple(name for name, _ in _LAYOUT.train_list)
TEST_FILES = tuple(name for name, _ in _LAYOUT.test_list)
META_FILE = _LAYOUT.meta["filename"]
_OFFICIAL_MD5 = {**dict(_LAYOUT.train_list), **dict(_LAYOUT.test_list), META_FILE: _LAYOUT.meta["md5"]}
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # as numpy 1 (the official files) names it
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # as numpy 2 names it
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays; any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}") from None


def read_batch_file(path: Path) -> dict[str, Any]:
    """The dict pickled in one CIFAR-10 file, read as torchvision reads it (Python 2 strings as
    latin-1) but through ``_BatchUnpickler``. ``UnsafeFileError`` when the file names a global
    outside the allowed three; ``DataMissingError`` when it is not a complete pickle of a dict."""
    try:
        with open(path, "rb") as handle:
            content = _BatchUnpickler(handle, encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        if str(exc).startswith("refused global"):
            raise UnsafeFileError(f"cifar10: {path} names {str(exc).removeprefix('refused global ')}, which a "
                                  "CIFAR-10 file never does: refused, and nothing in it was run") from None
        raise DataMissingError(f"cifar10: {path} is not a complete pickle ({exc}); replace it with the original "
                               f"from {_LAYOUT.url}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DataMissingError(f"cifar10: {path} is truncated or not a CIFAR-10 file ({type(exc).__name__}); replace "
                               f"it with the original from {_LAYOUT.url}") from None
    if not isinstance(content, dict):
        raise DataMissingError(f"cifar10: {path} holds a {type(content).__name__}, not the dict of a CIFAR-10 file")
    return content


def batch_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The images (n, 3, 32, 32) uint8 and labels (n,) int64 of one batch file, checked."""
    content = read_batch_file(path)
    data, labels = content.get("data"), content.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        found = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataMissingError(f"cifar10: {path}: 'data' must be a uint8 array of shape (n, 3072), found {found}")
    try:
        label_array = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        label_array = np.empty(0)
    if label_array.shape != (len(data),) or (len(data) and not (0 <= label_array.min() and label_array.max() <= 9)):
        raise DataMissingError(f"cifar10: {path}: 'labels' must hold one class index 0-9 per image ({len(data)})")
    return data.reshape(-1, 3, 32, 32), label_array


@BENCHMARKS.register("cifar10")
class CIFAR10(Benchmark):
    """CIFAR-10: 50k train / 10k test 32x32 colour images of 10 classes, scaled to [-1, 1]."""

    classifier_dataset = "cifar10"

    @property
    def spec(self) -> DataSpec:
        return DataSpec(shape=(3, 32, 32), kind="image", value_range=(-1.0, 1.0))

    @property
    def folder(self) -> Path:
        return self.data_root / _LAYOUT.base_folder

    def _missing(self) -> list[str]:
        return [name for name in (*TRAIN_FILES, *TEST_FILES, META_FILE) if not (self.folder / name).is_file()]

    def _missing_message(self, why: str) -> str:
        return (f"cifar10: missing {', '.join(self._missing())} in {self.folder} ({why}); put the python version of "
                f"CIFAR-10 there ({', '.join((*TRAIN_FILES, *TEST_FILES, META_FILE))}: extract {_LAYOUT.filename} from "
                f"{_LAYOUT.url} into {self.data_root}), or pass --data-root pointing at the folder that holds "
                f"{_LAYOUT.base_folder}")

    def _download(self) -> None:
        download_or_explain(
            lambda: download_and_extract_archive(_LAYOUT.url, str(self.data_root), filename=_LAYOUT.filename,
                                                 md5=_LAYOUT.tgz_md5),
            (self.folder, self.data_root), self._missing_message, f"CIFAR-10 incomplete in {self.folder}")
        if self._missing():
            raise DataMissingError(self._missing_message("the downloaded archive did not hold them"))

    def _load(self) -> DataSplits:
        if self._missing():
            self._download()

        def read(names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
            parts = [batch_arrays(self.folder / name) for name in names]
            images = torch.from_numpy(np.concatenate([part[0] for part in parts]))
            labels = torch.from_numpy(np.concatenate([part[1] for part in parts]))
            return images.float().div_(127.5).sub_(1.0), labels

        (train, train_labels), (test, test_labels) = read(TRAIN_FILES), read(TEST_FILES)
        names = read_batch_file(self.folder / META_FILE).get("label_names")
        if not isinstance(names, list) or len(names) != 10 or not all(isinstance(n, str) for n in names):
            raise DataMissingError(f"cifar10: {self.folder / META_FILE} must hold 'label_names', the 10 class names")
        official = {name: check_integrity(str(self.folder / name), md5) for name, md5 in _OFFICIAL_MD5.items()}
        if not all(official.values()) and str(self.folder) not in _WARNED:
            _WARNED.add(str(self.folder))
            log.warning("cifar10: %s differ from the official release (md5); the run record says so",
                        ", ".join(name for name, same in official.items() if not same))
        return DataSplits(train=train, test=test, train_labels=train_labels, test_labels=test_labels,
                          info={"source": str(self.folder), "class_names": names, "n_train_full": len(train),
                                "n_test": len(test), "official_md5": all(official.values()),
                                "files_not_official": sorted(name for name, same in official.items() if not same)})
