"""Input checks shared by the metric functions: samples as rows, two sets compared."""

from __future__ import annotations

import torch


def as_rows(t: torch.Tensor, name: str) -> torch.Tensor:
    """Flatten a tensor of samples to (n, d), one sample per row (a 1-D tensor is n samples of d = 1)."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of samples, got {type(t).__name__}.")
    if t.dim() == 0:
        raise ValueError(f"{name} must have a leading sample dimension, e.g. shape (n, d) or (n, C, H, W); got a scalar.")
    if t.dim() == 1:
        return t.reshape(-1, 1)
    return t.flatten(1)


def paired_rows(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str], min_rows: tuple[int, int],
                why: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Both sets as float64 rows, checked: at least ``min_rows`` samples each (``why`` says what
    for), one feature dimension, one device, finite values."""
    x, y = as_rows(a, names[0]), as_rows(b, names[1])
    if x.shape[0] < min_rows[0] or y.shape[0] < min_rows[1]:
        raise ValueError(
            f"need at least {min_rows[0]} samples in {names[0]} and at least {min_rows[1]} in {names[1]} ({why}); "
            f"got {x.shape[0]} (shape {tuple(a.shape)}) and {y.shape[0]} (shape {tuple(b.shape)})."
        )
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same feature dimension d after flattening each sample; got "
            f"{x.shape[1]} (shape {tuple(a.shape)}) vs {y.shape[1]} (shape {tuple(b.shape)})."
        )
    if x.device != y.device:
        raise ValueError(f"{names[0]} and {names[1]} must be on the same device; got {x.device} and {y.device}.")
    x, y = x.to(torch.float64), y.to(torch.float64)
    if not bool(torch.isfinite(x).all()) or not bool(torch.isfinite(y).all()):
        raise ValueError(f"{names[0]} and {names[1]} must contain only finite values (found NaN or inf).")
    return x, y
