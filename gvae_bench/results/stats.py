"""Which differences between models hold: intervals, tests, power and ranks over training seeds.

A leaderboard cell is one metric's values over the training seeds of one model config, usually
n = 3 to 5 seeds, sometimes 1 or 2. This module turns such cells into statements a reader can
trust: a Student t interval per cell (:func:`mean_interval`), a two-sample test per pair of rows
(:func:`compare`: Welch's t-test, or the paired t-test when both rows were run on the same
seeds), Holm's correction over the pairs of one metric (:func:`adjust`), and a compact letter
display (:func:`rank_groups`, :func:`best_or_tied`). All arithmetic is scipy's and statsmodels';
nothing here re-derives a distribution.

What to make of three seeds. With n = 3 per model an exact permutation test has only
C(6, 3) = 20 distinct splits of the six values, so even two totally separated samples reach a
smallest two-sided p-value of 2/20 = 0.1: it can never reach 0.05. The t-tests used here borrow
the normal-error assumption to do better, but they are still weak at n = 3, so "not separated"
at n = 3 usually means "not enough seeds", not "equal". How many seeds a study needs is decided
before it runs, from a pilot's spread (:func:`seeds_for_paired_power`, a priori), never from the
effect a finished study observed (post-hoc power says nothing the p-value does not).

Intervals stay in the metric's range (:data:`METRIC_RANGES`, :func:`mean_interval`): a Student t
interval on the logit scale for metrics bounded on both sides, on the log scale for metrics bounded
below, and on the metric's own scale for unbounded ones (an unbiased estimator such as MMD²_u or
KID can be negative; its interval keeps that real range).

Values that are NaN (a failed or missing metric) are dropped before anything is computed.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from string import ascii_letters
import numpy as np
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

log = logging.getLogger(__name__)

NAN = float("nan")
WELCH, PAIRED, NO_TEST = "welch", "paired t by seed", "none"
Separated = Callable[[str, str], bool] | set[frozenset[str]] | frozenset[frozenset[str]]


@dataclass(frozen=True)
class Interval:
    """Mean over seeds, sample std (ddof = 1), n, and the interval [low, high]; NaN where undefined."""

    mean: float
    std: float
    n: int
    low: float
    high: float
    method: str


@dataclass(frozen=True)
class Comparison:
    """Row A against row B on one metric; ``difference`` is mean_a - mean_b, [low, high] its CI.

    ``test`` is "welch", "paired t by seed" or "none" (then ``reason`` says why). ``note`` records
    special cases (zero variance). ``p_adjusted`` and ``verdict`` are filled in by :func:`adjust`.
    """

    mean_a: float
    mean_b: float
    n_a: int
    n_b: int
    difference: float
    low: float
    high: float
    confidence: float
    test: str
    p_value: float
    higher_is_better: bool
    reason: str = ""
    note: str = ""
    p_adjusted: float = NAN
    verdict: str = ""


def _clean(values: Sequence[float] | np.ndarray, seeds: Sequence[int] | None = None
           ) -> tuple[np.ndarray, list[int] | None]:
    x = np.asarray(values, dtype=float).ravel()
    keep = ~np.isnan(x)
    if seeds is None:
        return x[keep], None
    if len(seeds) != len(x):
        raise ValueError(f"{len(seeds)} seeds for {len(x)} values")
    return x[keep], [s for s, k in zip(seeds, keep) if k]


def _no_spread(x: np.ndarray, scale: np.ndarray | None = None) -> bool:
    """Whether the values are equal up to float rounding (a spread below 1e-12 of their magnitude,
    e.g. 0.31 - 0.11 against 0.30 - 0.10), where a t statistic would be rounding noise."""
    reference = np.abs(x if scale is None else scale)
    return float(np.ptp(x)) <= 1e-12 * float(reference.max(initial=0.0))


@dataclass(frozen=True)
class MetricRange:
    """The values a metric's estimator can take: [low, high], either end possibly infinite."""

    low: float = -math.inf
    high: float = math.inf

    @property
    def scale(self) -> str:
        """Where its interval is made: ``logit`` (bounded both sides), ``log`` (bounded below),
        ``log of the distance to the upper bound`` (bounded above), ``real`` (unbounded)."""
        if math.isfinite(self.low) and math.isfinite(self.high):
            return "logit"
        if math.isfinite(self.low):
            return "log"
        return "log below the upper bound" if math.isfinite(self.high) else "real"


REAL, UNIT, NONNEGATIVE = MetricRange(), MetricRange(0.0, 1.0), MetricRange(0.0)
#: the range of each built-in metric's estimator (a metric not named here keeps its real range).
#: Proportions and similarities in [0, 1]; distances, counts and densities >= 0; the Vendi score
#: >= 1 (the effective number of distinct samples); MMD²_u and KID are unbiased U-statistics and
#: can be negative, C_T is a z-score, the likelihood terms are real: those keep the real line.
METRIC_RANGES: dict[str, MetricRange] = {
    **{name: UNIT for name in ("coverage", "recall", "precision", "ms_ssim", "accuracy", "authenticity",
                                "tissue_tv")},
    "high_quality": MetricRange(0.0, 100.0),
    **{name: NONNEGATIVE for name in ("fid", "density", "frd", "hu_wasserstein", "mode_kl", "modes")},
    "vendi": MetricRange(1.0),
    **{name: REAL for name in ("mmd", "kid", "copying", "elbo", "kl", "recon_error", "iwae_nll", "ais_nll")},
}


def range_of(metric: str) -> MetricRange:
    """The range of ``metric``'s estimator (:data:`METRIC_RANGES`; unknown metrics: the real line)."""
    return METRIC_RANGES.get(metric, REAL)


def _to_scale(x: np.ndarray, bounds: MetricRange, resolution: float
              ) -> tuple[np.ndarray, Callable[[float], float], bool]:
    """Values on the interval's scale, the map back, and whether any value was clamped."""
    lo, hi = bounds.low, bounds.high
    scale = bounds.scale
    if scale == "real":
        return x, float, False
    if scale == "logit":
        width = hi - lo
        r = min(resolution / width, 0.25)
        u = (x - lo) / width
        clamped = bool(np.any((u < r) | (u > 1 - r)))
        u = np.clip(u, r, 1 - r)
        return np.log(u) - np.log1p(-u), lambda y: lo + width * float(st.logistic.cdf(y)), clamped
    distance = x - lo if scale == "log" else hi - x
    clamped = bool(np.any(distance < resolution))
    y = np.log(np.maximum(distance, resolution))
    if scale == "log":
        return y, lambda v: lo + math.exp(v), clamped
    return y, lambda v: hi - math.exp(v), clamped


def mean_interval(values: Sequence[float] | np.ndarray, confidence: float = 0.95,
                  bounds: MetricRange = REAL, resolution: float | None = None) -> Interval:
    """Mean over seeds and a Student t interval (Student 1908) that stays in the metric's range.

    Unbounded metrics: mean ± t_{n-1, (1+confidence)/2} · s / √n, s the sample std (ddof = 1), from
    ``scipy.stats.t.interval``. Bounded ones: the same interval for the mean of the transformed
    values y = g(x), mapped back by g⁻¹, with g = logit((x - L) / (U - L)) on [L, U], g = log(x - L)
    for x >= L and g = log(U - x) for x <= U. g⁻¹ maps every real number into the range, so the
    interval never crosses a bound the metric cannot cross. It is exact when g(x) is normal across
    seeds (the t interval holds at any n >= 2 under normality; at n = 5 that is the assumption
    that matters), and it is an interval for the centre of the seed distribution on that scale
    (for the log scale, the geometric mean): with skewed seeds the arithmetic mean shown beside
    it can lie slightly off its middle. Values at a bound have no finite g; they are moved
    ``resolution`` inside it (a proportion of N samples: 1 / (2N), the empirical-logit correction
    of Haldane 1956; default 1e-9 of the range's width or of the largest distance), and the method
    says so.

    NaN values are dropped first. n = 1: mean is the value, std, low and high are NaN ("one seed:
    no interval"); n = 0: everything NaN. Zero spread (n >= 2, all values equal) gives
    low = high = mean.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    x, _ = _clean(values)
    n = int(x.size)
    if n == 0:
        return Interval(NAN, NAN, 0, NAN, NAN, "no seeds: no interval")
    mean = float(np.mean(x))
    if n == 1:
        return Interval(mean, NAN, 1, NAN, NAN, "one seed: no interval")
    scale = bounds.scale
    method = f"student t, {n - 1} df" + ("" if scale == "real" else f", on the {scale} scale")
    if _no_spread(x):  # all equal up to rounding (np.std may still give ~1e-17)
        return Interval(mean, 0.0, n, mean, mean, method + "; zero spread")
    if np.any(x < bounds.low) or np.any(x > bounds.high):
        raise ValueError(f"values outside the metric's range [{bounds.low}, {bounds.high}]: {x.tolist()}")
    std = float(np.std(x, ddof=1))
    if resolution is None:
        width = bounds.high - bounds.low
        resolution = 1e-9 * (width if math.isfinite(width) else float(np.max(np.abs(x - (
            bounds.low if math.isfinite(bounds.low) else bounds.high)))) or 1.0)
    y, back, clamped = _to_scale(x, bounds, resolution)
    if clamped:
        method += f"; values at a bound moved {resolution:.2g} inside it"
    if _no_spread(y):
        value = back(float(np.mean(y)))
        return Interval(mean, std, n, value, value, method + "; zero spread on that scale")
    low, high = st.t.interval(confidence, n - 1, loc=float(np.mean(y)), scale=float(st.sem(y)))
    low, high = sorted((back(float(low)), back(float(high))))
    return Interval(mean, std, n, low, high, method)


def _pairing(a_seeds: list[int] | None, b_seeds: list[int] | None) -> str:
    """'' when the two sides can be paired by seed, else why not."""
    if a_seeds is None or b_seeds is None:
        return "seeds not given"
    if len(set(a_seeds)) != len(a_seeds) or len(set(b_seeds)) != len(b_seeds):
        return "a seed appears twice on one side"
    if set(a_seeds) != set(b_seeds):
        return "the two sides have different seeds"
    if len(a_seeds) < 2:
        return "fewer than 2 common seeds"
    return ""


def compare(a_values: Sequence[float] | np.ndarray, b_values: Sequence[float] | np.ndarray,
            higher_is_better: bool, *, a_seeds: Sequence[int] | None = None,
            b_seeds: Sequence[int] | None = None, paired: bool | None = None,
            alpha: float = 0.05) -> Comparison:
    """Difference of means A - B, its (1 - alpha) CI and a two-sided test.

    Welch's t-test (Welch 1947; ``scipy.stats.ttest_ind(equal_var=False)``): t = (x̄_a - x̄_b) /
    √(s_a²/n_a + s_b²/n_b) with Welch-Satterthwaite df; the CI is the result's
    ``confidence_interval``. Paired t-test by seed (Student 1908; ``scipy.stats.ttest_rel``):
    t = d̄ / (s_d / √n) on the per-seed differences d = a - b, CI of the mean difference. Runs of
    one seed share their real evaluation subsets, which justifies pairing. ``paired=None`` pairs
    when a_seeds and b_seeds hold the same >= 2 seeds, each once per side; ``False`` always uses
    Welch; ``True`` requires such seeds (ValueError otherwise). NaN values are dropped with
    their seeds.

    Fewer than 2 values on either side: no test (test "none", p NaN, CI NaN, ``reason`` says
    which side). Zero variance (both sides for Welch, the differences for the paired test):
    scipy's p is NaN or degenerate, so it is set explicitly: p = 1.0 when the means are equal,
    else 0.0, CI = [difference, difference], with a ``note``.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    a, sa = _clean(a_values, a_seeds)
    b, sb = _clean(b_values, b_seeds)
    confidence = 1.0 - alpha
    mean_a = float(np.mean(a)) if a.size else NAN
    mean_b = float(np.mean(b)) if b.size else NAN
    diff = mean_a - mean_b
    common = dict(mean_a=mean_a, mean_b=mean_b, n_a=int(a.size), n_b=int(b.size), difference=diff,
                  confidence=confidence, higher_is_better=higher_is_better)
    if a.size < 2 or b.size < 2:
        short = ", ".join(f"{k} has {x.size}" for k, x in (("A", a), ("B", b)) if x.size < 2)
        return Comparison(low=NAN, high=NAN, test=NO_TEST, p_value=NAN,
                          reason=f"needs >= 2 seeds per model; {short}", **common)
    why_not = _pairing(sa, sb)
    if paired and why_not:
        raise ValueError(f"paired=True but cannot pair by seed: {why_not}")
    use_paired = paired is not False and not why_not
    if use_paired:
        position = {s: i for i, s in enumerate(sb)}
        b = b[[position[s] for s in sa]]  # same seed order as A
        test, degenerate = PAIRED, _no_spread(a - b, scale=np.concatenate([a, b]))
    else:
        test, degenerate = WELCH, _no_spread(a) and _no_spread(b)
    note = ""
    if degenerate:
        p = 1.0 if diff == 0.0 else 0.0
        low = high = diff
        note = f"zero variance: p set to {p:.0f} ({'different' if p == 0.0 else 'equal'} means)"
    else:
        with warnings.catch_warnings():  # near-equal values: scipy's precision warning, the result stands
            warnings.simplefilter("ignore", RuntimeWarning)
            res = st.ttest_rel(a, b) if use_paired else st.ttest_ind(a, b, equal_var=False)
        p = float(res.pvalue)
        ci = res.confidence_interval(confidence_level=confidence)
        low, high = float(ci.low), float(ci.high)
    return Comparison(low=low, high=high, test=test, p_value=p, note=note, **common)


def adjust(comparisons: Sequence[Comparison], alpha: float = 0.05) -> list[Comparison]:
    """Holm-adjusted p-values and verdicts over one family, e.g. the pairs of one metric.

    Holm (1979): with the m finite p-values sorted, p_(i) → min(1, max_{j<=i} (m - j + 1) p_(j)),
    via ``statsmodels.stats.multitest.multipletests(method="holm")``. Comparisons without a
    p-value are left out of the family, keep p_adjusted NaN and get the verdict "no test".
    Otherwise the verdict is "A better" / "B better" when p_adjusted < alpha (the direction from
    the sign of the difference and ``higher_is_better``), else "not separated". Order is kept.
    """
    idx = [i for i, c in enumerate(comparisons) if math.isfinite(c.p_value)]
    adjusted = [NAN] * len(comparisons)
    if idx:
        _, p_adj, _, _ = multipletests([comparisons[i].p_value for i in idx], alpha=alpha,
                                       method="holm")
        for i, p in zip(idx, p_adj):
            adjusted[i] = float(p)
    out = []
    for c, p in zip(comparisons, adjusted):
        if not math.isfinite(p):
            verdict = "no test"
        elif p < alpha and c.difference != 0.0:
            a_wins = (c.difference > 0) == c.higher_is_better
            verdict = "A better" if a_wins else "B better"
        else:
            verdict = "not separated"
        out.append(replace(c, p_adjusted=p, verdict=verdict))
    return out


def separated_pairs(pairs: Mapping[tuple[str, str], Comparison]) -> set[frozenset[str]]:
    """The pairs {a, b} whose adjusted comparison says one is better, for :func:`rank_groups`."""
    return {frozenset(k) for k, c in pairs.items() if c.verdict in ("A better", "B better")}


def _separated_fn(separated: Separated) -> Callable[[str, str], bool]:
    if callable(separated):
        return lambda x, y: bool(separated(x, y) or separated(y, x))
    pairs = {frozenset(p) for p in separated}
    return lambda x, y: frozenset((x, y)) in pairs


def _best_first(names: Sequence[str], means: Mapping[str, float], higher_is_better: bool
                ) -> list[str]:
    def key(name: str) -> tuple[bool, float]:
        m = float(means[name])
        return (math.isnan(m), -m if higher_is_better else m)
    return sorted(dict.fromkeys(names), key=key)  # stable: ties keep the given order; NaN last


def rank_groups(names: Sequence[str], means: Mapping[str, float], higher_is_better: bool,
                separated: Separated) -> dict[str, str]:
    """Compact letter display: name → letters, best row first (Piepho 2004, insert-and-absorb).

    Start with one group holding every row; for each separated pair (x, y), replace each group
    holding both by two copies, one without x and one without y, then absorb groups contained
    in another (leaving the maximal sets of mutually non-separated rows). Then sweep: a group is dropped when every row in
    it keeps a letter and every pair in it still shares another group. Groups are lettered 'a',
    'b', ... in the order of their best rows, so 'a' holds the best row. Two rows share a letter
    iff they are not separated (which need not be transitive: A~B, B~C, A≁C gives a, ab, b).
    ``separated`` is a symmetric callable or a set of frozenset pairs. Up to 52 letters
    (a-z, A-Z); more raise ValueError.
    """
    order = _best_first(names, means, higher_is_better)
    sep = _separated_fn(separated)
    rank = {name: i for i, name in enumerate(order)}
    groups: list[frozenset[str]] = [frozenset(order)] if order else []
    for i, x in enumerate(order):
        for y in order[i + 1:]:
            if not sep(x, y):
                continue
            split: list[frozenset[str]] = []
            for g in groups:
                split.extend([g - {x}, g - {y}] if x in g and y in g else [g])
            groups = [g for g in set(split) if not any(g < h for h in split)]
    groups.sort(key=lambda g: sorted(rank[n] for n in g))
    kept = list(groups)
    for g in groups:  # sweep: drop letters whose rows and pairs are all covered elsewhere
        others = [h for h in kept if h is not g]
        if all(any(n in h for h in others) for n in g) and all(
                any(x in h and y in h for h in others) for x in g for y in g if x < y):
            kept = others
    if len(kept) > len(ascii_letters):
        raise ValueError(f"{len(kept)} letters needed; at most {len(ascii_letters)} supported")
    return {n: "".join(ascii_letters[j] for j, g in enumerate(kept) if n in g) for n in order}


def best_or_tied(names: Sequence[str], means: Mapping[str, float], higher_is_better: bool,
                 separated: Separated) -> set[str]:
    """The best row by mean (NaN means last) and every row not separated from it; {} if none."""
    order = _best_first(names, means, higher_is_better)
    if not order:
        return set()
    sep = _separated_fn(separated)
    best = order[0]
    return {best} | {n for n in order[1:] if not sep(best, n)}
