"""Config fields are checked against their annotations on construction (``ConfigBase.check_types``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest

from gvae_bench.config import ConfigBase, added_field, config_hash
from gvae_bench.errors import UserError
from tests.conftest import invoke_cli

if TYPE_CHECKING:
    from collections import OrderedDict  # only for an annotation that cannot be resolved at run time


@dataclass
class _Typed(ConfigBase):
    count: int = 5
    rate: float = 1.0
    flag: bool = False
    name: str = "a"
    limit: int | None = None
    mode: Literal["2d", "3d"] = "2d"
    betas: tuple[float, float] = (0.5, 0.9)
    shape: tuple[int, ...] = (1, 28, 28)
    value_range: tuple[float, float] | None = (-1.0, 1.0)
    either: int | str | None = None
    weight: float = added_field(1.0, since="0.9")


@dataclass
class _Unchecked(ConfigBase):
    table: dict[str, int] | None = None
    anything: Any = None
    tensor_like: _Typed | None = None
    later: OrderedDict | None = None  # names a class imported only under TYPE_CHECKING
    count: int = 1


@dataclass
class _Validated(ConfigBase):
    rate: float = 1.0
    seen: list = None  # type: ignore[assignment]  # a bare ``list`` is not checked

    def validate(self) -> None:
        if not isinstance(self.rate, float):
            raise ValueError(f"validate saw {self.rate!r}")


def _error(**values: Any) -> str:
    with pytest.raises(UserError) as info:
        _Typed(**values)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- accepted values


def test_defaults_and_well_typed_values_are_accepted_unchanged() -> None:
    config = _Typed(count=3, rate=0.5, flag=True, name="b", limit=7, mode="3d", betas=(0.1, 0.2), shape=(3,),
                    value_range=None, either="x")
    assert config.to_dict()["betas"] == (0.1, 0.2) and config.limit == 7 and config.value_range is None
    assert _Typed(either=4).either == 4 and _Typed(shape=()).shape == ()


def test_an_int_for_a_float_is_stored_as_that_float_with_the_same_hash() -> None:
    as_int, as_float = _Typed(rate=1, weight=2), _Typed(rate=1.0, weight=2.0)
    assert type(as_int.rate) is float and type(as_int.weight) is float
    assert as_int == as_float and as_int.to_dict() == as_float.to_dict()
    assert config_hash(as_int.hash_dict()) == config_hash(as_float.hash_dict())
    assert config_hash(_Typed(weight=1).hash_dict()) == config_hash(_Typed().hash_dict())  # an added field at default


def test_ints_inside_a_float_tuple_become_floats() -> None:
    config = _Typed(betas=(0, 1), value_range=[-1, 1])
    assert config.betas == (0.0, 1.0) and all(type(b) is float for b in config.betas)
    assert config.value_range == (-1.0, 1.0) and type(config.value_range) is tuple
    assert config_hash(config.hash_dict()) == config_hash(_Typed(betas=(0.0, 1.0)).hash_dict())


def test_a_list_for_a_tuple_is_stored_as_a_tuple() -> None:
    config = _Typed(betas=[0.5, 0.99], shape=[1, 16, 16])
    assert config.betas == (0.5, 0.99) and type(config.betas) is tuple
    assert config.shape == (1, 16, 16) and type(config.shape) is tuple
    assert _Typed.from_dict({"betas": [0.5, 0.99]}) == config.replace(shape=(1, 28, 28))


def test_validate_sees_the_converted_values() -> None:
    assert _Validated(rate=3).rate == 3.0


def test_unsupported_or_unresolvable_annotations_are_not_checked() -> None:
    config = _Unchecked(table="not a dict", anything=object(), tensor_like=3, later=[1])
    assert config.table == "not a dict" and config.later == [1]
    with pytest.raises(UserError, match=r"^invalid _Unchecked: count must be an int, got 'x' \(str\)$"):
        _Unchecked(count="x")  # the resolvable fields of the same class are still checked


# ---------------------------------------------------------------- refused values, one line each


def test_a_float_for_an_int_is_refused() -> None:
    assert _error(count=2.5) == "invalid _Typed: count must be an int, got 2.5 (float)"


def test_a_whole_float_for_an_int_is_refused_and_the_message_says_so() -> None:
    message = _error(count=2.0)
    assert message.startswith("invalid _Typed: count must be an int, got 2.0 (float; ")
    assert "even a whole one" in message and "write 2" in message


def test_a_bool_is_neither_an_int_nor_a_float() -> None:
    assert _error(count=True) == "invalid _Typed: count must be an int, got True (bool)"
    assert _error(rate=False) == "invalid _Typed: rate must be a float, got False (bool)"
    assert _error(betas=(True, 0.5)) == "invalid _Typed: betas must be a tuple of 2 floats, got (True, 0.5) (tuple)"


def test_a_bool_field_takes_only_a_bool() -> None:
    assert _error(flag=1) == "invalid _Typed: flag must be a bool, got 1 (int)"
    assert _error(flag="true") == "invalid _Typed: flag must be a bool, got 'true' (str)"


def test_text_for_a_number_and_a_number_for_text_are_refused() -> None:
    assert _error(count="abc") == "invalid _Typed: count must be an int, got 'abc' (str)"
    assert _error(rate="0.1") == "invalid _Typed: rate must be a float, got '0.1' (str)"
    assert _error(name=3) == "invalid _Typed: name must be a string, got 3 (int)"


def test_optional_fields_take_none_or_the_type() -> None:
    assert _Typed(limit=None).limit is None
    assert _error(limit=1.5) == "invalid _Typed: limit must be an int or None, got 1.5 (float)"
    assert _error(limit="3") == "invalid _Typed: limit must be an int or None, got '3' (str)"


def test_nested_unions_name_every_choice() -> None:
    assert _error(either=1.5) == "invalid _Typed: either must be an int, a string or None, got 1.5 (float)"
    assert _error(value_range=[0.0]) == (
        "invalid _Typed: value_range must be a tuple of 2 floats or None, got [0.0] (list)")


def test_a_value_outside_a_literal_is_refused() -> None:
    assert _error(mode="4d") == "invalid _Typed: mode must be one of '2d', '3d', got '4d'"
    assert _error(mode=2) == "invalid _Typed: mode must be one of '2d', '3d', got 2"


def test_a_tuple_of_the_wrong_length_or_kind_is_refused() -> None:
    assert _error(betas=[0.5]) == "invalid _Typed: betas must be a tuple of 2 floats, got [0.5] (list)"
    assert _error(betas=(0.5, 0.9, 0.99)) == (
        "invalid _Typed: betas must be a tuple of 2 floats, got (0.5, 0.9, 0.99) (tuple)")
    assert _error(betas=0.5) == "invalid _Typed: betas must be a tuple of 2 floats, got 0.5 (float)"
    assert _error(betas=(0.5, "x")) == "invalid _Typed: betas must be a tuple of 2 floats, got (0.5, 'x') (tuple)"
    assert _error(betas="ab") == "invalid _Typed: betas must be a tuple of 2 floats, got 'ab' (str)"


def test_a_variable_length_tuple_checks_every_item() -> None:
    assert _error(shape=[1, 2.0]) == "invalid _Typed: shape must be a tuple of ints, got [1, 2.0] (list)"
    assert _error(shape=5) == "invalid _Typed: shape must be a tuple of ints, got 5 (int)"


def test_from_dict_reports_the_value_as_given() -> None:
    with pytest.raises(UserError, match=r"^invalid _Typed: betas must be a tuple of 2 floats, got \[0\.5\] \(list\)$"):
        _Typed.from_dict({"betas": [0.5]})
    with pytest.raises(UserError, match=r"^invalid _Typed: count must be an int, got 2\.5 \(float\)$"):
        _Typed().replace(count=2.5)


def test_the_repository_configs_are_checked() -> None:
    from gvae_bench.models.wgan_gp import WGANGPConfig
    from gvae_bench.profiles import TrainConfig

    with pytest.raises(UserError, match=r"^invalid WGANGPConfig: n_critic must be an int, got 2\.5 \(float\)$"):
        WGANGPConfig(n_critic=2.5)
    with pytest.raises(UserError, match=r"^invalid WGANGPConfig: betas must be a tuple of 2 floats, got \[0\.5\]"):
        WGANGPConfig.from_dict({"betas": [0.5]})
    with pytest.raises(UserError, match=r"^invalid TrainConfig: channels_last must be a bool, got 1 \(int\)$"):
        TrainConfig(channels_last=1)
    assert WGANGPConfig(lr=1, betas=[0, 1]).to_dict() == WGANGPConfig(lr=1.0, betas=(0.0, 1.0)).to_dict()


# ---------------------------------------------------------------- the command line


def _cli_error(tmp_path: Path, setting: str) -> str:
    """Run a one-model sweep with one bad ``--set``; return its error line after checking the exit status, that
    there is no traceback and that the error is a single line (the last one on stderr)."""
    result = invoke_cli("--models", "wgan_gp", "--dataset", "ring8", "--profile", "smoke", "--set", setting,
                        "--out", str(tmp_path / "out"))
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert lines == errors, result.stderr  # one line, before any run is announced or started
    assert not (tmp_path / "out").exists()
    return errors[0]


def test_cli_text_for_an_int_field(tmp_path: Path) -> None:
    assert _cli_error(tmp_path, "model.width=abc") == (
        "Error: invalid WGANGPConfig: width must be an int, got 'abc' (str)")


def test_cli_fractional_number_for_an_int_field(tmp_path: Path) -> None:
    assert _cli_error(tmp_path, "model.n_critic=2.5") == (
        "Error: invalid WGANGPConfig: n_critic must be an int, got 2.5 (float)")


def test_cli_number_for_a_tuple_field(tmp_path: Path) -> None:
    assert _cli_error(tmp_path, "model.betas=0.5") == (
        "Error: invalid WGANGPConfig: betas must be a tuple of 2 floats, got 0.5 (float)")
