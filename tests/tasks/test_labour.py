"""The labour-statistics fit and WinoBias's pair scores, against independent computations."""

import math
import random
import statistics

import numpy as np
import pytest

from lftf_tasks.labour import (
    LABOUR_METRICS,
    bls_fit,
    bls_r,
    bls_slope,
    labour_items,
    occupation_gaps,
)
from lftf_tasks.metrics import pair_scores, pro_gap


def random_items(seed=0, n_occupations=12, per_occupation=(1, 5)):
    """Items (occupation, gap, % female) with unequal prompt counts per occupation and some
    occupations without a figure."""
    rng = random.Random(seed)
    items = []
    for k in range(n_occupations):
        pct = None if k % 5 == 4 else rng.uniform(0, 100)
        for _ in range(rng.randint(*per_occupation)):
            items.append((f"job{k}", rng.uniform(-0.5, 0.5) - pct / 400 if pct else 0.3, pct))
    rng.shuffle(items)
    return items


def test_the_fit_is_numpys_on_the_per_occupation_means():
    items = random_items()
    means = {}
    for occupation, gap, pct in items:
        if pct is not None:
            means.setdefault(occupation, (pct, []))[1].append(gap)
    x = np.array([pct for pct, _ in means.values()])
    y = np.array([np.mean(gaps) for _, gaps in means.values()])
    slope, intercept = np.polyfit(x, y, 1)
    fit = bls_fit(items)
    assert fit == pytest.approx((slope * 100, intercept, statistics.correlation(x, y)), rel=1e-9)
    assert bls_slope(items) == fit[0] and bls_r(items) == fit[2]
    assert len(means) == 10 == len(occupation_gaps(items))  # job4 and job9 have no figure


def test_occupations_count_once_whatever_their_number_of_prompts():
    # two prompts at 0 % female with gaps 0.2 and 0.4 (mean 0.3), one at 100 % with -0.1
    items = [("a", 0.2, 0.0), ("a", 0.4, 0.0), ("b", -0.1, 100.0), ("c", 9.0, None)]
    assert occupation_gaps(items) == {"a": pytest.approx((0.3, 0.0)), "b": (-0.1, 100.0)}
    slope, intercept, r = bls_fit(items)
    assert slope == pytest.approx(-0.4) and intercept == pytest.approx(0.3)
    assert r == pytest.approx(-1.0)


def test_fewer_than_two_distinct_figures_give_nan():
    for items in ([], [("a", 0.1, 50.0)], [("a", 0.1, 50.0), ("b", 0.3, 50.0), ("c", 1, None)]):
        assert all(math.isnan(v) for v in bls_fit(items))


def test_a_flat_gap_has_a_zero_slope_and_no_correlation():
    slope, _, r = bls_fit([("a", 0.2, 10.0), ("b", 0.2, 90.0)])
    assert slope == pytest.approx(0.0) and math.isnan(r)


def test_items_name_every_labour_metric():
    assert labour_items("nurse", 0.1, 89.58) == {m: ("nurse", 0.1, 89.58) for m in LABOUR_METRICS}
    assert LABOUR_METRICS == ("bls_slope", "bls_r")


def test_pair_scores_follow_crows_pairs():
    assert pair_scores(-3.0, -5.0) == {"pct_pro": 1.0, "ll_diff": 2.0, "pro_gap": 1.0}
    assert pair_scores(-5.0, -3.0) == {"pct_pro": 0.0, "ll_diff": -2.0, "pro_gap": 0.0}
    assert pair_scores(-4.0, -4.0)["pct_pro"] == 0.0  # a tie is not a pro win


def test_pro_gap_is_the_distance_of_the_pro_share_from_a_half():
    assert pro_gap([1.0, 1.0, 1.0, 0.0]) == pytest.approx(0.25)
    assert pro_gap([0.0, 0.0, 0.0, 1.0]) == pytest.approx(0.25)
    assert pro_gap([1.0, 0.0]) == 0.0
