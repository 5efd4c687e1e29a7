"""DAMA's stereotype slopes: the least-squares fit, and the lm-eval aggregations that use it."""

import math

import numpy as np
import pytest

from lftf_tasks import task_manager
from lftf_tasks.slopes import (
    factual_slope,
    least_squares,
    slope_intercept,
    slope_items,
    stereotype_slope,
)


def test_an_exact_plane_is_recovered():
    # gap = 1 + 2 x_s - 1 x_f through four points
    items = [(1, 0, 0), (3, 1, 0), (0, 0, 1), (2, 1, 1)]
    assert stereotype_slope(items) == pytest.approx(2)
    assert factual_slope(items) == pytest.approx(-1)
    assert slope_intercept(items) == pytest.approx(1)


def test_a_least_squares_line_by_hand():
    # points (x, y) = (0, 0), (1, 1), (2, 1): slope S_xy / S_xx = 1 / 2, intercept 2/3 - 1/2
    assert least_squares([(0, 0), (1, 1), (1, 2)]) == pytest.approx([1 / 6, 1 / 2])


def test_a_degenerate_design_gives_nan_not_an_error():
    assert all(math.isnan(v) for v in least_squares([(0.1, 0.5, 0), (0.3, 0.5, 0)]))


def test_items_carry_the_absolute_and_the_relative_signed_gap():
    items = slope_items(0.3, 0.1, stereotypical=0.4, definitional=-0.1)
    assert items["a_s"] == pytest.approx((0.2, 0.4, -0.1))
    assert items["a_s_relative"] == pytest.approx((0.5, 0.4, -0.1))
    assert slope_items(0.0, 0.0, 0.4, 0.0)["a_f_relative"] == (0.0, 0.4, 0.0)


def test_lm_eval_reports_the_fit_of_its_logged_samples(tiny_llama):
    """A real lm-eval run: a_s, a_f and the intercept of each task equal numpy's
    least-squares fit of the logged per-prompt P(he) - P(she) on the profession scores."""
    import lm_eval

    path, _, _ = tiny_llama
    out = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={path}",
        tasks=["genbiaseval_word", "genbiaseval_phrase"],
        device="cpu",
        limit=60,
        log_samples=True,
        task_manager=task_manager(include_defaults=False),
    )
    for task in ("genbiaseval_word", "genbiaseval_phrase"):
        samples = out["samples"][task]
        assert len(samples) == 60
        xs = np.array([[1, s["doc"]["stereotypical"], s["doc"]["definitional"]] for s in samples])
        gap = np.array([s["p_he"] - s["p_she"] for s in samples])
        relative = gap / np.array([s["p_he"] + s["p_she"] for s in samples])
        b, a_s, a_f = np.linalg.lstsq(xs, gap, rcond=None)[0]
        results = out["results"][task]
        assert results["a_s,none"] == pytest.approx(a_s, rel=1e-6)
        assert results["a_f,none"] == pytest.approx(a_f, rel=1e-6)
        assert results["a_intercept,none"] == pytest.approx(b, rel=1e-6)
        _, rel_s, _ = np.linalg.lstsq(xs, relative, rcond=None)[0]
        assert results["a_s_relative,none"] == pytest.approx(rel_s, rel=1e-6)
