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
    registry = Registry("thing", object)

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


def test_a_class_that_breaks_the_contract_is_refused_with_its_name_and_module():
    from gvae_bench.contracts import GenerativeModel, Metric

    registry = Registry("model", GenerativeModel)
    with pytest.raises(PluginError, match=r"'not_a_model' \(test_registry\.NotAModel in .*test_registry\.py\) is not a subclass of "
                                          r"gvae_bench\.contracts\.model\.GenerativeModel"):
        @registry.register("not_a_model")
        class NotAModel:
            """plain class"""

    with pytest.raises(PluginError, match="does not implement optimizers, sample, train_step"):
        @registry.register("half_a_model")
        class HalfAModel(GenerativeModel):
            """no methods"""

    with pytest.raises(PluginError, match="does not implement compute"):
        @METRICS.register("half_a_metric")
        class HalfAMetric(Metric):
            """no compute"""
    assert "half_a_metric" not in METRICS


def test_a_model_whose_config_is_not_a_model_config_is_refused():
    import torch

    from gvae_bench.contracts import GenerativeModel

    class Complete(GenerativeModel):
        """complete"""

        Config = dict

        def optimizers(self):
            return {}

        def train_step(self, next_batch):
            return {}

        def sample(self, n):
            return torch.zeros(n)

    with pytest.raises(PluginError, match="its Config must be a dataclass subclassing gvae_bench.contracts.model.ModelConfig"):
        MODELS.register("bad_config")(Complete)
    assert "bad_config" not in MODELS
