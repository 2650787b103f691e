"""CT benchmarks: ``ct_folder`` (any folder of NIfTI files or DICOM series) and ``pancreas_ct``
(TCIA Pancreas-CT, or its Medical Segmentation Decathlon Task07 form), as 2D axial slices or 3D
patches, with Hounsfield-unit windowing and a train/test split by patient (volume).

Preprocessing, every step a config field (``CTConfig``):

1. read each volume in HU with its spacing, LPS orientation (``benchmarks._ct_io``);
2. window: clip HU to [level - width/2, level + width/2] (default abdominal window, level 40 and
   width 400 HU) and scale linearly to [-1, 1];
3. 2D mode: every axial slice whose share of voxels above ``body_hu`` (-500 HU: inside the body)
   is at least ``min_body_fraction``, resized (bilinear, antialiased) from its field of view to
   ``size`` x ``size`` px; 3D mode: the volume resampled to isotropic ``spacing_mm`` voxels, then
   ``patches_per_volume`` random ``size``^3 patches whose centre voxel is inside the body;
4. split by patient: volumes are shuffled with ``split_seed`` and ``test_fraction`` of them (at
   least one) form the test set, so no patient is in both. A folder with a single volume cannot be
   split by patient: the volume is cut into two contiguous slabs along z (the last
   ``test_fraction`` of its slices for testing) before slices or patches are taken, and the split
   record says so.

Preprocessed arrays are cached, keyed by the benchmark, the files (names, sizes, modification
times) and this config, under ``ct/`` in the harness's cache folder (``$GVAE_BENCH_CACHE``, see
``gvae_bench.execution.checkpoints.cache_folder``; never inside the data root), so a second
run does not read DICOM again. The split and the geometry (shapes, spacings) go into the run's
data info; no file name or DICOM field that could identify a patient does.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from gvae_bench.contracts.benchmark import Benchmark, BenchmarkConfig, DataSpec, DataSplits
from gvae_bench.execution.checkpoints import UnreadableFileError, cache_folder, safe_load
from gvae_bench.errors import DataMissingError
from gvae_bench.atomic import atomic_save
from gvae_bench.registry import BENCHMARKS

if TYPE_CHECKING:
    from gvae_bench.benchmarks._ct_io import CTVolume

# The CT readers (SimpleITK, pydicom) are imported when a CT benchmark reads or writes files, not when
# the plugins register, so commands that touch no CT data never load them.

log = logging.getLogger(__name__)

MODES = ("2d", "3d")


@dataclass
class CTConfig(BenchmarkConfig):
    """CT preprocessing (see the module docstring for each step)."""

    mode: str = "2d"
    size: int = 64
    window_level: float = 40.0
    window_width: float = 400.0
    body_hu: float = -500.0
    min_body_fraction: float = 0.1
    spacing_mm: float = 2.0
    patches_per_volume: int = 64
    test_fraction: float = 0.25
    split_seed: int = 0

    def validate(self) -> None:
        super().validate()
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        allowed = (64, 128) if self.mode == "2d" else (16, 32, 64)
        if self.size not in allowed:
            raise ValueError(f"size for mode {self.mode} must be one of {allowed}, got {self.size}")
        self.require(positive=("window_width", "spacing_mm", "patches_per_volume"))
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")

    def window(self, hu: np.ndarray) -> np.ndarray:
        """HU -> [-1, 1] through the window [level - width/2, level + width/2]."""
        low = self.window_level - self.window_width / 2
        return (np.clip(hu, low, low + self.window_width) - low) / self.window_width * 2.0 - 1.0

    def unwindow(self, values: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> HU (values outside the window come back clipped to its edges)."""
        low = self.window_level - self.window_width / 2
        return (values.clamp(-1, 1) + 1.0) / 2.0 * self.window_width + low


class CTBenchmark(Benchmark):
    """Shared by the CT benchmarks; subclasses say where the volumes are."""

    Config = CTConfig
    layout_help: ClassVar[str] = ""
    can_convert_hu = True
    can_export_nifti = True

    @property
    def spec(self) -> DataSpec:
        cfg: CTConfig = self.config  # type: ignore[assignment]
        shape = (1, cfg.size, cfg.size) if cfg.mode == "2d" else (1, cfg.size, cfg.size, cfg.size)
        return DataSpec(shape=shape, kind="image" if cfg.mode == "2d" else "volume", value_range=(-1.0, 1.0))

    def to_hu(self, values: torch.Tensor) -> torch.Tensor:
        """Samples in [-1, 1] back to Hounsfield units (through the configured window)."""
        return self.config.unwindow(values)  # type: ignore[attr-defined]

    def sample_spacing_mm(self) -> tuple[float, ...]:
        """Pixel or voxel size of a sample in mm, (x, y) for 2D slices and (x, y, z) for 3D patches.

        3D mode: the isotropic ``spacing_mm`` the volumes were resampled to. 2D mode: a slice's
        field of view over ``size``, the field of view being the mean over the volumes read (each
        slice was resized from its volume's whole field of view to ``size`` x ``size`` px).
        """
        cfg: CTConfig = self.config  # type: ignore[assignment]
        if cfg.mode == "3d":
            return (cfg.spacing_mm,) * 3
        volumes = self.load().info["volumes"]
        fov_yx = np.mean([[v["shape_zyx"][1] * v["spacing_zyx_mm"][1], v["shape_zyx"][2] * v["spacing_zyx_mm"][2]]
                          for v in volumes], axis=0)
        return float(fov_yx[1] / cfg.size), float(fov_yx[0] / cfg.size)

    def write_nifti(self, samples: torch.Tensor, folder: Path) -> list[Path]:
        """Write samples in [-1, 1] as NIfTI files in HU that open in the usual viewers.

        3D mode: one file per sample, isotropic ``spacing_mm`` voxels. 2D mode: one file holding
        the slices as a stack (z = sample index, 1 mm apart: independent samples, not a volume),
        in-plane spacing ``sample_spacing_mm()``. Only geometry goes into the header. Orientation
        LPS, as the training data were read.
        """
        cfg: CTConfig = self.config  # type: ignore[assignment]
        folder.mkdir(parents=True, exist_ok=True)
        hu = self.to_hu(samples.float().cpu()).numpy()[:, 0]
        spacing = self.sample_spacing_mm()
        if cfg.mode == "3d":
            stacks = [(arr, spacing) for arr in hu]
        else:
            stacks = [(hu, (*spacing, 1.0))]
        paths = []
        for index, (array, spacing_xyz) in enumerate(stacks):
            import SimpleITK as sitk

            image = sitk.GetImageFromArray(array.astype(np.float32))
            image.SetSpacing(tuple(float(s) for s in spacing_xyz))
            path = folder / f"generated_{index:03d}.nii.gz"
            sitk.WriteImage(image, str(path))
            paths.append(path)
        return paths

    def source_folder(self) -> Path:
        """The folder to read (subclasses check their layout and raise DataMissingError)."""
        return self.data_root

    def _files_fingerprint(self, folder: Path) -> list[tuple[str, int, int]]:
        return [(str(p.relative_to(folder)), p.stat().st_size, int(p.stat().st_mtime))
                for p in sorted(folder.rglob("*")) if p.is_file()]

    def _load(self) -> DataSplits:
        cfg: CTConfig = self.config  # type: ignore[assignment]
        folder = self.source_folder()
        key_text = json.dumps({"benchmark": self.registered_name, "root": str(folder.resolve()),
                               "files": self._files_fingerprint(folder), "config": cfg.to_dict()}, sort_keys=True)
        cache = cache_folder("ct") / f"{self.registered_name}-{hashlib.sha256(key_text.encode()).hexdigest()[:12]}.pt"
        if cache.is_file():
            log.info("%s: preprocessed arrays from the cache %s", self.registered_name, cache)
            try:
                stored = safe_load(cache)  # an unsafe cache file is refused (UnsafeFileError), never run
            except UnreadableFileError as exc:
                log.warning("%s; the arrays are made again", exc)
            else:
                return DataSplits(stored["train"], stored["test"], info={**stored["info"], "cache": "hit"})
        from gvae_bench.benchmarks._ct_io import read_ct_folder

        volumes = read_ct_folder(folder)
        train, test, info = self._preprocess(volumes, cfg)
        atomic_save(cache, lambda buffer: torch.save({"train": train, "test": test, "info": info}, buffer))
        return DataSplits(train, test, info={**info, "cache": "written"})

    def _preprocess(self, volumes: list[CTVolume], cfg: CTConfig) -> tuple[torch.Tensor, torch.Tensor, dict]:
        order = np.random.default_rng(cfg.split_seed).permutation(len(volumes)).tolist()
        geometry = [{"shape_zyx": list(v.shape), "spacing_zyx_mm": list(v.spacing)} for v in volumes]
        rng = np.random.default_rng(cfg.split_seed)
        if len(volumes) == 1:
            volume = volumes[0]
            cut = int(round((1 - cfg.test_fraction) * volume.shape[0]))
            from gvae_bench.benchmarks._ct_io import CTVolume

            train = self._samples(CTVolume(volume.hu[:cut], volume.spacing, volume.name), cfg, rng)
            test = self._samples(CTVolume(volume.hu[cut:], volume.spacing, volume.name), cfg, rng)
            split = {"kind": "single volume: contiguous z-slabs (NOT a patient split)", "n_volumes": 1,
                     "train_slices": [0, cut], "test_slices": [cut, volume.shape[0]]}
        else:
            n_test = max(1, int(round(cfg.test_fraction * len(volumes))))
            test_ids, train_ids = sorted(order[:n_test]), sorted(order[n_test:])
            train = torch.cat([self._samples(volumes[i], cfg, rng) for i in train_ids])
            test = torch.cat([self._samples(volumes[i], cfg, rng) for i in test_ids])
            split = {"kind": "by patient (volume)", "train_volumes": train_ids, "test_volumes": test_ids,
                     "split_seed": cfg.split_seed}
        if len(train) == 0 or len(test) < 2:
            raise DataMissingError(f"{self.registered_name}: preprocessing left {len(train)} training and {len(test)} "
                                   "test samples; lower min_body_fraction or pass more volumes")
        info = {"split": split, "volumes": geometry, "n_train": len(train), "n_test": len(test),
                "window_hu": [cfg.window_level - cfg.window_width / 2, cfg.window_level + cfg.window_width / 2]}
        return train, test, info

    def _samples(self, volume: CTVolume, cfg: CTConfig, rng: np.random.Generator) -> torch.Tensor:
        if cfg.mode == "2d":
            body = (volume.hu > cfg.body_hu).mean(axis=(1, 2)) >= cfg.min_body_fraction
            slices = torch.from_numpy(cfg.window(volume.hu[body]).astype(np.float32)).unsqueeze(1)
            return F.interpolate(slices, size=(cfg.size, cfg.size), mode="bilinear", antialias=True,
                                 align_corners=False).clamp(-1, 1)
        iso = _resample_isotropic(volume, cfg.spacing_mm)
        if min(iso.shape) < cfg.size:
            raise DataMissingError(f"a volume of {iso.shape} voxels at {cfg.spacing_mm} mm is smaller than the "
                                   f"{cfg.size}^3 patch; use a smaller size or spacing_mm")
        half = cfg.size // 2
        inner = iso[half : iso.shape[0] - half + 1, half : iso.shape[1] - half + 1, half : iso.shape[2] - half + 1]
        centres = np.argwhere(inner > cfg.body_hu)
        if len(centres) == 0:
            raise DataMissingError("no voxel inside the body to centre a patch on; check body_hu")
        chosen = centres[rng.choice(len(centres), size=cfg.patches_per_volume, replace=len(centres) < cfg.patches_per_volume)]
        windowed = cfg.window(iso).astype(np.float32)
        patches = [windowed[z : z + cfg.size, y : y + cfg.size, x : x + cfg.size] for z, y, x in chosen]
        return torch.from_numpy(np.stack(patches)).unsqueeze(1)


def _resample_isotropic(volume: CTVolume, spacing_mm: float) -> np.ndarray:
    """Linear resampling of the HU array to ``spacing_mm`` in every axis."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(volume.hu)
    image.SetSpacing(tuple(reversed(volume.spacing)))  # SimpleITK: (x, y, z)
    size = [max(1, int(round(n * s / spacing_mm))) for n, s in zip(image.GetSize(), image.GetSpacing())]
    resampled = sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, image.GetOrigin(),
                              (spacing_mm,) * 3, image.GetDirection(), -1024.0, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(resampled)


@BENCHMARKS.register("ct_folder")
class CTFolder(CTBenchmark):
    """Any folder of CT scans (NIfTI files and/or DICOM series), 2D slices or 3D patches, HU-windowed."""


@BENCHMARKS.register("pancreas_ct")
class PancreasCT(CTBenchmark):
    """TCIA Pancreas-CT (82 abdominal contrast CTs; DICOM, or MSD Task07 NIfTI), 2D slices or 3D patches."""

    def source_folder(self) -> Path:
        from gvae_bench.benchmarks._ct_io import NIFTI_SUFFIXES

        tcia, msd = self.data_root / "Pancreas-CT", self.data_root / "Task07_Pancreas" / "imagesTr"
        if tcia.is_dir() and any(tcia.iterdir()):
            return tcia
        if msd.is_dir() and any(p.name.endswith(NIFTI_SUFFIXES) for p in msd.iterdir()):
            return msd
        raise DataMissingError(
            f"pancreas_ct: no data under {self.data_root}; provide either {tcia}/PANCREAS_0001/.../*.dcm "
            "(TCIA Pancreas-CT, DICOM, downloaded with the NBIA Data Retriever from the Cancer Imaging Archive) "
            f"or {msd}/*.nii.gz (Medical Segmentation Decathlon Task07_Pancreas, NIfTI)"
        )
