"""Live curves of a run: what the training loop tells a tracker, and the TensorBoard one.

The loop calls a ``Tracker`` at four moments: ``begin(step)`` once the run knows where it starts
(0, or the step it resumes from), ``losses(step, values)`` at every loss-log row (``log_every``),
``samples(step, model)`` at every step- or time-based checkpoint, and ``flush()`` after every
checkpoint (so what a killed process logged up to its last checkpoint is on disk); the run then
calls ``metrics(step, results)`` with the evaluation's results and ``close()``. ``NoTracker``
(``--log none``, the default) does nothing, so the loop calls the same methods either way.

``TensorBoardTracker`` (``--log tensorboard``, ``pip install '.[tensorboard]'``) writes one event
folder per run with torch's ``SummaryWriter``:

    <out>/tensorboard/<dataset>/<model>/<profile>-<config hash>/seed<N>/

the run folder's path below ``<out>/runs``, so ``tensorboard --logdir <out>/tensorboard`` shows the
runs of a sweep side by side (their tags match: ``loss/<name>``, ``samples``, ``metrics/<name>``) and
its filter box picks a dataset, a model, a configuration or a seed by that path. A resumed run opens
its writer with ``purge_step`` at the step it resumes from, so the steps logged after the last
checkpoint by the attempt that was stopped are hidden rather than drawn twice.

The tracker never changes what a run computes: ``samples`` draws its grid from the seed of the run
(the same latent draws at every checkpoint, so the grids show one set of samples improving), and the
loop calls it with every RNG state saved and restored and the model back in train mode
(``gvae_bench.execution.training``), so a run trains bit-identically with the tracker on or off.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gvae_bench.errors import UserError

if TYPE_CHECKING:  # torch only where a tracker works: the command line checks --log without importing it
    import numpy as np
    import torch

    from gvae_bench.contracts.benchmark import DataSpec
    from gvae_bench.contracts.model import GenerativeModel

log = logging.getLogger(__name__)

#: the values of ``--log`` (``RunSpec.log``)
TRACKERS = ("none", "tensorboard")

#: the folder under ``--out`` holding the TensorBoard event folders of every run
TENSORBOARD_FOLDER = "tensorboard"


class NoTracker:
    """The tracker of a run that logs nowhere but its own files (``--log none``)."""

    def begin(self, step: int) -> None:
        """The run starts at ``step`` (0, or the step of the checkpoint it resumes from)."""

    def losses(self, step: int, values: dict[str, float]) -> None:
        """One loss-log row: the losses of ``step``."""

    def samples(self, step: int, model: GenerativeModel) -> None:
        """A checkpoint at ``step``: the sample grid of ``model`` (called with RNG states kept)."""

    def flush(self) -> None:
        """Write what is buffered (after each checkpoint)."""

    def metrics(self, step: int, results: dict[str, dict[str, Any]]) -> None:
        """The evaluation's results (``evaluate``'s dicts), logged at the last step."""

    def close(self) -> None:
        """Flush and release the log."""


class TensorBoardTracker(NoTracker):
    """Losses, sample grids and final metrics of one run as TensorBoard events in ``log_dir``.

    ``spec``: the data's kind and value range (how a grid is drawn); ``grid_size`` samples per grid,
    drawn with ``torch.manual_seed(seed)``; ``real`` and ``modes``: for 2-D points, the real test
    points and the mode centres drawn under the samples (as in ``samples.png``); ``title`` on the
    scatter; ``config``: the resolved config, logged once as text.
    """

    def __init__(self, log_dir: Path, spec: DataSpec, grid_size: int, seed: int, *, title: str = "",
                 real: torch.Tensor | None = None, modes: torch.Tensor | None = None,
                 config: dict[str, Any] | None = None) -> None:
        self.log_dir, self.spec, self.grid_size, self.seed = Path(log_dir), spec, grid_size, seed
        self.title, self.real, self.modes, self.config = title, real, modes, config
        self._writer: Any = None

    def begin(self, step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.close()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(str(self.log_dir), purge_step=step if step > 0 else None)
        if self.config is not None and step == 0:
            self._writer.add_text("config", "```\n" + json.dumps(self.config, indent=2, sort_keys=True) + "\n```", 0)

    def losses(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self._writer.add_scalar(f"loss/{name}", value, step)

    def samples(self, step: int, model: GenerativeModel) -> None:
        import torch

        torch.manual_seed(self.seed)
        drawn = model.sample_in_batches(self.grid_size)
        self._writer.add_image("samples", sample_picture(drawn, self.spec, self.real, self.modes, self.title),
                               step, dataformats="HWC")

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def metrics(self, step: int, results: dict[str, dict[str, Any]]) -> None:
        for name, result in results.items():
            value = result.get("value")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self._writer.add_scalar(f"metrics/{name}", float(value), step)
        self.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def sample_picture(samples: torch.Tensor, spec: DataSpec, real: torch.Tensor | None = None,
                   modes: torch.Tensor | None = None, title: str = "") -> np.ndarray:
    """The picture ``samples.png`` would hold for ``samples`` (a grid of images or volumes' middle
    slices, or a scatter of 2-D points), as an (H, W, 3) uint8 array."""
    import numpy as np
    from PIL import Image

    from gvae_bench.execution import pictures

    with tempfile.TemporaryDirectory(prefix="gvae-bench-grid-") as folder:
        path = Path(folder) / "samples.png"
        pictures.save_samples(path, samples, spec, real=real, modes=modes, title=title)
        with Image.open(path) as picture:
            return np.asarray(picture.convert("RGB"))


def check_tracker(kind: str) -> None:
    """A ``UserError`` for an unknown tracker, or for ``tensorboard`` when its package is not installed."""
    if kind not in TRACKERS:
        raise UserError(f"--log is one of {', '.join(TRACKERS)}; got {kind!r}")
    if kind == "tensorboard":
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:  # torch's SummaryWriter needs it
            raise UserError("--log tensorboard needs the tensorboard package: pip install '.[tensorboard]' "
                            "(or pip install tensorboard)")


def tensorboard_dir(out: Path, run_dir: Path) -> Path:
    """The event folder of the run in ``run_dir``: its path below ``<out>/runs``, under ``<out>/tensorboard``."""
    return Path(out) / TENSORBOARD_FOLDER / Path(run_dir).relative_to(Path(out) / "runs")


def open_tracker(kind: str, out: Path, run_dir: Path, spec: DataSpec, grid_size: int, seed: int, *,
                 title: str = "", real: torch.Tensor | None = None, modes: torch.Tensor | None = None,
                 config: dict[str, Any] | None = None) -> NoTracker:
    """The tracker ``kind`` (``TRACKERS``) for the run in ``run_dir`` (``check_tracker`` first)."""
    check_tracker(kind)
    if kind == "none":
        return NoTracker()
    return TensorBoardTracker(tensorboard_dir(out, run_dir), spec, grid_size, seed, title=title, real=real,
                              modes=modes, config=config)
