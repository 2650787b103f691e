"""Readings that cannot drift: the committed README is the render of its template over the committed
tables, a changed table changes the reading, and every number of the main README's results
section is one the rendered reading (so a table) gives."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from gvae_bench.errors import UserError
from gvae_bench.results.readings import p, render

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "results" / "reference"
EARLIER = ROOT / "results" / "earlier"
READINGS = [REFERENCE, EARLIER]  # every results folder with a README.md.j2
NUMBER = re.compile(r"(?<![\w.\-])-?\d+(?:\.\d+)?(?:e-?\d+)?(?![\w])")


def test_every_results_folder_with_a_template_is_listed():
    assert sorted(p.parent for p in (ROOT / "results").glob("*/README.md.j2")) == sorted(READINGS)


@pytest.mark.parametrize("folder", READINGS, ids=lambda f: f.name)
def test_the_committed_readings_are_the_render_of_their_template(folder):
    rendered = render(folder)
    committed = (folder / "README.md").read_text(encoding="utf-8")
    assert committed == rendered, f"results/{folder.name}/README.md is not README.md.j2 rendered over the tables: " \
                                  f"run python -m gvae_bench.results.readings results/{folder.name}"


def _folder(tmp_path, mmd="0.0123"):
    board = tmp_path / "leaderboards" / "mnist"
    board.mkdir(parents=True)
    (board / "table4.csv").write_text("row_kind,model,profile,latent_dim,mmd_mean,mmd_ci_low,mmd_ci_high,mmd_n,mmd_bold\n"
                                      f"measured,gvae,quick,1000,{mmd},0.01,0.02,5,True\n"
                                      "measured,vae,quick,32,0.5,0.4,0.6,3,False\n")
    (board / "comparisons.csv").write_text(
        "table,metric,profile,model_a,model_b,difference,ci_low,ci_high,p_value,p_holm,mean_a,mean_b,verdict\n"
        "table4,mmd,quick,gvae,vae,-0.49,-0.6,-0.4,0.001,0.003,0.0123,0.5,A better\n")
    (tmp_path / "README.md.j2").write_text(
        "GVAE {{ cell('mnist', 'table4', 'gvae', 'quick', 'mmd')|g(3) }}; "
        "{% set r = pair('mnist', 'mmd', 'vae', 'gvae', 'quick') %}{{ r.difference|g(2) }} [{{ r.ci_low|g(2) }}, "
        "{{ r.ci_high|g(2) }}] {{ r.verdict }}; bold {{ bold('mnist', 'table4', 'quick', 'mmd')|join(',') }}\n")
    return tmp_path


def test_a_reading_follows_its_table_and_flips_a_pair_read_the_other_way(tmp_path):
    out = _folder(tmp_path)
    assert render(out) == "GVAE 0.0123; 0.49 [0.4, 0.6] B better; bold gvae\n"
    (out / "leaderboards" / "mnist" / "table4.csv").write_text(
        (out / "leaderboards" / "mnist" / "table4.csv").read_text().replace("0.0123", "0.0456"))
    assert render(out).startswith("GVAE 0.0456;")


def test_a_reading_that_cites_a_missing_row_is_an_error_not_an_empty_string(tmp_path):
    out = _folder(tmp_path)
    (out / "README.md.j2").write_text("{{ cell('mnist', 'table4', 'wgan_gp', 'quick', 'mmd') }}\n")
    with pytest.raises(UserError, match="0 rows match"):
        render(out)
    (out / "README.md.j2").write_text("{{ nothing }}\n")
    with pytest.raises(UserError, match="undefined"):
        render(out)
    (out / "README.md.j2").write_text("{{ reproduce('runs/mnist/vae/x/seed0') }}\n")  # a report not in the folder
    with pytest.raises(UserError, match="cites runs/mnist/vae/x/seed0/reproduce.json, which does not exist"):
        render(out)


def test_a_claim_the_tables_no_longer_bear_out_stops_the_render(tmp_path):
    """``check`` guards prose that states an order: it renders nothing while the numbers agree, and
    names the claim when a rebuilt table turns it round."""
    out = _folder(tmp_path)
    (out / "README.md.j2").write_text(
        "{% from 'readings_macros.j2' import ci %}GVAE {{ ci('mnist', 'table4', 'gvae', 'quick', 'mmd') }} is lower"
        "{{ check(cell('mnist', 'table4', 'gvae', 'quick', 'mmd') < cell('mnist', 'table4', 'vae', 'quick', 'mmd'),"
        " 'GVAE has the lower MMD') }}\n")
    assert render(out) == "GVAE 0.0123 [0.01, 0.02] is lower\n"
    table = out / "leaderboards" / "mnist" / "table4.csv"
    table.write_text(table.read_text().replace("0.0123", "0.9"))
    with pytest.raises(UserError, match="GVAE has the lower MMD"):
        render(out)


def test_p_values_are_written_with_their_precision():
    assert (p(0.0249), p(0.0077), p(3e-5), p(1.0)) == ("0.025", "0.008", "3e-05", "1")


def _results_section(text: str) -> str:
    start = text.index("## Reference results")
    return text[start:text.index("\n## ", start + 1)]


def test_every_number_of_the_readme_results_section_is_in_the_rendered_reading():
    section = _results_section((ROOT / "README.md").read_text(encoding="utf-8"))
    section = re.sub(r"`[^`]*`|\([^)]*\.png\)|\]\([^)]*\)", " ", section)  # paths, commands, links
    reading = "\n".join((folder / "README.md").read_text(encoding="utf-8") for folder in READINGS)
    quoted = set(NUMBER.findall(section))
    missing = sorted(n for n in quoted if not re.search(rf"(?<![\w.]){re.escape(n)}(?![\w])", reading))
    assert not missing, f"numbers in README.md's results section that no rendered reading gives: {missing}"


#: decimals in a paragraph that cites a leaderboard but are not that leaderboard's numbers, and why
NOT_FROM_THE_CITED_TABLE = {
    "0.01365": "the hand-set VAE seed 0's rerun at a184038 (its record was kept, not replaced)",
    "86.76": "Burda et al.'s published bound",
    "543.4": "784 ln 2, the bound of a model that ignores the data (a closed form)",
    "87.82": "the eight-stage likelihood run, in git history (947e3a2)",
    "5.4": "ring8 GVAE with kl_weight 0.01, in git history (5eee529)",
    "24.3": "grid25 GVAE with kl_weight 0.01, in git history (8465c84)",
    "8.4": "grid25 GVAE with kl_weight 0.01, in git history (8465c84)",
    "99.26": "the earlier MNIST classifier's test accuracy (results/earlier/classifiers/mnist.json)",
    "99.14": "the pinned MNIST classifier's test accuracy (gvae_bench/pinned/classifiers.json)",
    "0.64": "seconds to preprocess the CT volume",
    "0.01": "seconds to read the CT volume from the cache",
    "19.6": "ln FRD of the real slices, from the records' details",
    "48.8": "ln FRD of alpha-GAN, from the records' details",
    "64.0": "ln FRD of GVAE, from the records' details",
}
DECIMAL = re.compile(r"(?<![\w.\-/])-?\d+\.\d+(?:e[-+]?\d+)?(?![\w.])")


def _table_values(folder: Path) -> list[float]:
    """Every number of the CSVs (and a tuning study's best_configs.toml) of a cited folder."""
    found = []
    for path in [*folder.glob("*.csv"), *folder.glob("*.toml")]:
        for cell in re.split(r"[,\n=]", path.read_text(encoding="utf-8")):
            try:
                found.append(abs(float(cell)))
            except ValueError:
                pass
    return found


def _printed_as(number: str, values: list[float]) -> bool:
    """Whether some value of the table, or 100 times it (a percentage), prints as ``number``
    (up to sign: a comparison can be read B against A)."""
    x = abs(float(number))
    mantissa = number.lstrip("-").split("e")[0]
    if "e" in number:
        digits = len(mantissa.replace(".", "").lstrip("0"))
        tolerance = 0.5 * 10 ** (math.floor(math.log10(x)) - digits + 1)
    else:
        tolerance = 0.5 * 10 ** -len(mantissa.split(".")[1])
    return any(abs(v * scale - x) <= tolerance * (1 + 1e-9) for v in values for scale in (1, 100))


@pytest.mark.parametrize("folder", READINGS, ids=lambda f: f.name)
def test_every_decimal_of_a_reading_is_in_the_table_it_cites(folder):
    """Numbers the template writes literally (outside its expressions) in a paragraph that cites
    ``leaderboards/<dataset>/...`` (or ``tuning/<dataset>/...``, of its own folder or of
    ``results/<other>/``) must be printed values of that folder's CSVs (whole numbers, such as
    seeds, steps and counts, are not checked)."""
    template = (folder / "README.md.j2").read_text(encoding="utf-8")
    template = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", " ", template, flags=re.S)
    values: dict[Path, list[float]] = {}
    wrong = []
    for paragraph in re.split(r"\n\s*\n", template):
        datasets = {(ROOT / "results" / other if other else folder) / cited
                    for other, cited in re.findall(r"(?:results/(\w+)/)?((?:leaderboards|tuning)/\w+/)", paragraph)}
        text = re.sub(r"`[^`]*`", " ", paragraph)
        for number in DECIMAL.findall(text) if datasets else []:
            if number.lstrip("-") in NOT_FROM_THE_CITED_TABLE:
                continue
            if not any(_printed_as(number, values.setdefault(d, _table_values(d))) for d in datasets):
                wrong.append(f"{number} (cites {', '.join(str(d.relative_to(ROOT)) for d in sorted(datasets))}): "
                             f"{text.strip()[:50]!r}")
    assert not wrong, "numbers in the readings that the cited tables do not give:\n" + "\n".join(wrong)
