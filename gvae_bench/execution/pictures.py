"""Pictures of a run: the sample grid (or scatter for 2D points) and the loss curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import save_image  # noqa: E402

from gvae_bench.contracts.benchmark import DataSpec  # noqa: E402
from gvae_bench.atomic import atomic_save  # noqa: E402


def save_samples(path: Path, samples: torch.Tensor, spec: DataSpec, real: torch.Tensor | None = None,
                 modes: torch.Tensor | None = None, title: str = "") -> None:
    """Images: a square grid (torchvision's save_image) scaled from the data's range; volumes: the
    grid of their middle axial slices. Points: a scatter of the samples over the real test points
    and the true mode centres."""
    if spec.kind == "volume":
        samples, spec = middle_slices(samples), DataSpec(spec.shape[:1] + spec.shape[2:], "image", spec.value_range)
    if spec.kind == "image":
        _save_grid(path, samples, spec, max(1, int(len(samples) ** 0.5)))
        return
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=2, c="tab:gray", alpha=0.3, label="real (test)")
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:blue", alpha=0.5, label="generated")
    if modes is not None:
        ax.scatter(modes[:, 0], modes[:, 1], s=40, marker="x", c="tab:red", label="mode centres")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_title(title, fontsize=9)
    _save_figure(path, fig)


def middle_slices(volumes: torch.Tensor) -> torch.Tensor:
    """(n, C, D, H, W) volumes -> their middle axial slices (n, C, H, W)."""
    return volumes[:, :, volumes.shape[2] // 2]


def save_reconstructions(path: Path, inputs: torch.Tensor, outputs: torch.Tensor, spec: DataSpec, per_row: int = 8) -> None:
    """Image pairs as alternating rows: a row of inputs, then the row of their reconstructions
    (volumes: their middle axial slices)."""
    if spec.kind == "volume":
        inputs, outputs = middle_slices(inputs), middle_slices(outputs)
    rows = []
    for start in range(0, len(inputs), per_row):
        rows += [inputs[start : start + per_row], outputs[start : start + per_row]]
    interleaved = torch.cat([row for row in rows if len(row) == per_row])
    _save_grid(path, interleaved, spec, per_row)


def _save_grid(path: Path, images: torch.Tensor, spec: DataSpec, per_row: int) -> None:
    low, high = spec.value_range or (float(images.min()), float(images.max()))
    grid = ((images.float() - low) / (high - low)).clamp(0, 1)
    atomic_save(path, lambda buffer: save_image(grid, buffer, nrow=per_row, padding=2, format="png"))


def save_loss_curves(path: Path, rows: list[dict[str, float]], title: str = "") -> None:
    """One panel per logged loss against the step."""
    names = [key for key in (rows[0] if rows else {}) if key != "step"]
    if not names:
        return
    fig, axes = plt.subplots(len(names), 1, figsize=(6, 1.8 * len(names)), dpi=100, sharex=True, squeeze=False)
    steps = [row["step"] for row in rows]
    for ax, name in zip(axes[:, 0], names):
        ax.plot(steps, [row.get(name, float("nan")) for row in rows], lw=0.8)
        ax.set_ylabel(name, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    axes[0, 0].set_title(title, fontsize=9)
    fig.tight_layout()
    _save_figure(path, fig)


def _save_figure(path: Path, fig) -> None:
    atomic_save(path, lambda buffer: fig.savefig(buffer, format="png"))
    plt.close(fig)


def save_metric_curve(path: Path, epochs: list[float], values: list[float], metric: str, title: str = "",
                      reference: tuple[float, str] | None = None) -> None:
    """A metric against training epochs (``runner.py curve``); ``reference``: (value, label) drawn as a line."""
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(epochs, values, marker="o", lw=1)
    if reference is not None:
        ax.axhline(reference[0], color="grey", ls="--", lw=0.8, label=reference[1])
        ax.legend(fontsize=8)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save_figure(path, fig)
