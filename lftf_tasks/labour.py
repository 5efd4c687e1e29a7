"""How a model's pronoun gap follows the labour statistics, as lm-eval aggregations.

Each prompt yields an item (occupation, signed gap P(he) - P(she), BLS % female), the
US Bureau of Labor Statistics' share of women in that occupation (2015, as Winogender ships
it; None where the table has no figure). The gaps are averaged per occupation first, so
an occupation with many prompts does not outweigh one with few, and the means are fitted
by ordinary least squares against the % female:

    mean gap = intercept + slope * pct_female

``bls_slope`` is that slope per 100 percentage points: how far the gap moves from an
all-male to an all-female occupation (a model that copies the labour market is negative;
a fair one is near 0). ``bls_r`` is the Pearson correlation of the same points (how
closely the gaps follow the statistics, whatever their size). Occupations without a
figure are left out. Standard library only, like ``slopes`` (upstream.py copies the source).
"""

from __future__ import annotations

import math

from lftf_tasks.slopes import least_squares

LABOUR_METRICS = ("bls_slope", "bls_r")


def labour_items(occupation: str, gap: float, pct_female: float | None) -> dict:
    """One prompt's item for every labour metric (lm-eval hands each metric its own list)."""
    return {metric: (occupation, gap, pct_female) for metric in LABOUR_METRICS}


def occupation_gaps(items) -> dict[str, tuple[float, float]]:
    """occupation -> (mean signed gap over its prompts, % female), in first-seen order;
    occupations with no % female are left out."""
    gaps, pct = {}, {}
    for occupation, gap, pct_female in items:
        if pct_female is None:
            continue
        gaps.setdefault(occupation, []).append(float(gap))
        pct[occupation] = float(pct_female)
    return {o: (sum(g) / len(g), pct[o]) for o, g in gaps.items()}


def bls_fit(items) -> tuple[float, float, float]:
    """(slope per 100 points, intercept, Pearson r) of the per-occupation mean gaps on the
    % female; NaN for all three with fewer than two distinct % female (no line to fit),
    and r NaN when every mean gap is the same (no spread to correlate)."""
    points = list(occupation_gaps(items).values())  # (mean gap, % female): y first
    if len({x for _, x in points}) < 2:
        return math.nan, math.nan, math.nan
    intercept, slope = least_squares(points)
    n = len(points)
    mean_y, mean_x = sum(y for y, _ in points) / n, sum(x for _, x in points) / n
    sxy = sum((x - mean_x) * (y - mean_y) for y, x in points)
    sxx = sum((x - mean_x) ** 2 for _, x in points)
    syy = sum((y - mean_y) ** 2 for y, _ in points)
    r = sxy / math.sqrt(sxx * syy) if syy > 0 else math.nan
    return slope * 100, intercept, r


def bls_slope(items) -> float:
    """The change in mean gap from 0 % to 100 % female."""
    return bls_fit(items)[0]


def bls_r(items) -> float:
    """Pearson r of the per-occupation mean gaps and the % female."""
    return bls_fit(items)[2]
