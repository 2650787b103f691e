from __future__ import annotations

import pytest

from gvae_bench.errors import PluginError, UserError
from gvae_bench.registry import BENCHMARKS, METRICS, MODELS, Registry, load_plugin_file


def test_builtins_register_themselves():
    assert {"vae", "wgan_gp"} <= set(MODELS.names())
    assert {"mnist", "fashion_mnist", "ring8", "grid25"} <= set(BENCHMARKS.names())
    assert {"mmd", "ms_ssim", "modes", "high_quality"} <= set(METRICS.names())
    for entry in MODELS.entries():
        assert entry.description, f"{entry.name} has no one-line description"


def test_unknown_name_lists_the_registered_ones():
    with pytest.raises(UserError) as info:
        MODELS.get("gan9000")
    message = str(info.value)
    assert "gan9000" in message and "vae" in message and "wgan_gp" in message


def test_a_name_registered_twice_is_an_error():
    registry = Registry("thing")

    @registry.register("a")
    class First:
        """first"""

    with pytest.raises(PluginError, match="registered twice"):
        @registry.register("a")
        class Second:
            """second"""


def test_plugin_file_that_fails_to_import_names_itself(tmp_path):
    broken = tmp_path / "broken_plugin.py"
    broken.write_text("import definitely_not_a_module\n")
    with pytest.raises(PluginError, match="broken_plugin.py"):
        load_plugin_file(broken)
    assert "vae" in MODELS  # the built-ins still work
