"""A baseline added from a file outside the repository runs through runner.py and reaches the leaderboard."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import REPO, invoke_cli


def _plugin_source() -> str:
    """The model example of docs/plugins.md (its first ```python block, the file my_gaussian.py), so the
    documented plugin is the tested one."""
    text = (REPO / "docs" / "plugins.md").read_text()
    source = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert source.startswith("# my_gaussian.py:"), "the first example of docs/plugins.md is the model, my_gaussian.py"
    return source


def test_plugin_file_model_is_listed_trained_and_tabulated(tmp_path: Path):
    plugin_dir = tmp_path / "elsewhere"
    plugin_dir.mkdir()
    plugin = plugin_dir / "my_gaussian.py"
    plugin.write_text(_plugin_source())

    listing = invoke_cli("--plugin", str(plugin), "list")
    assert listing.returncode == 0, listing.stderr
    assert re.search(r"^\s+diag_gaussian\s+Diagonal Gaussian", listing.stdout, re.M)

    out = tmp_path / "results"
    result = invoke_cli("--plugin", str(plugin), "--models", "diag_gaussian,vae", "--dataset", "ring8",
                        "--profile", "smoke", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = (out / "leaderboards" / "ring8" / "table4.md").read_text()
    assert "| diag_gaussian |" in table and "| vae |" in table

    without = invoke_cli("--models", "diag_gaussian", "--dataset", "ring8", "--out", str(out))
    assert without.returncode == 2 and "diag_gaussian" in without.stderr  # only registered when loaded


def test_broken_plugin_is_named_and_builtins_still_work(tmp_path: Path):
    plugin = tmp_path / "broken_baseline.py"
    plugin.write_text("raise RuntimeError('boom')\n")
    result = invoke_cli("--plugin", str(plugin), "list")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "broken_baseline.py" in result.stderr and "boom" in result.stderr
    assert invoke_cli("list").returncode == 0
