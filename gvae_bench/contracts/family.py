"""The network-family contract: which family of networks builds the models for data of a shape.

A network family is a generator builder and a feature-trunk builder for one family of data
shapes (28 px images, 32 px images, 64/128 px images, volumes, points). The run's family is
chosen by the data's shape alone, so profiles can set per-family defaults (``match = { family = "dcgan28" }``) and the
run record names the family. The families themselves are networks and live with the models
(``gvae_bench.models.networks`` registers the built-in ones); a plugin may register more with
``register_family``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from torch import nn

from gvae_bench.errors import PluginError, UserError

OutputActivation = Literal["tanh", "identity"]


@dataclass(frozen=True)
class NetworkFamily:
    """How to build a generator and a feature trunk for data of one family of shapes.

    ``supports(shape)``: whether the family builds networks for samples of ``shape`` (channels
    first, no batch axis). ``generator(shape, latent_dim, width, output)``: a module from
    R^latent_dim to data of ``shape``. ``trunk(shape, width)``: a feature trunk and its output size.
    """

    name: str
    supports: Callable[[tuple[int, ...]], bool]
    generator: Callable[[tuple[int, ...], int, int, OutputActivation], nn.Module]
    trunk: Callable[[tuple[int, ...], int], tuple[nn.Module, int]]
    #: False: the family is taken only when asked for by name (a model's ``network`` field)
    by_shape: bool = True
    #: what shapes it takes, for the error that lists the families
    shapes: str = ""


_FAMILIES: dict[str, NetworkFamily] = {}


def register_family(family: NetworkFamily) -> NetworkFamily:
    """Add ``family``; families chosen by shape are tried in the order they were registered."""
    existing = _FAMILIES.get(family.name)
    if existing is not None and existing != family:
        raise PluginError(f"network family {family.name!r} is registered twice; rename one of them")
    _FAMILIES[family.name] = family
    return family


def families() -> list[NetworkFamily]:
    """Every registered family. The built-in ones register when ``gvae_bench.models.networks`` is
    imported, that is when the registry loads the plugins (``MODELS.get`` and friends); this contract
    itself loads nothing, so it sits under the registry."""
    return list(_FAMILIES.values())


def family_for(shape: tuple[int, ...], name: str | None = None) -> NetworkFamily:
    """The network family that supports data of ``shape``, or the family called ``name``."""
    shape = tuple(int(s) for s in shape)
    known = families()
    if name is not None:
        for family in known:
            if family.name == name:
                if not family.supports(shape):
                    raise UserError(f"network family {name!r} does not support data of shape {shape}")
                return family
        raise UserError(f"unknown network family {name!r}; families: {', '.join(f.name for f in known)}")
    for family in known:
        if family.by_shape and family.supports(shape):
            return family
    raise UserError(f"no network family supports data of shape {shape}; supported: "
                    + ", ".join(f"{f.shapes} [{f.name}]" for f in known if f.by_shape))
