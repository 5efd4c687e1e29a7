"""The WinoBias and Winogender tasks in lm-eval: the checks lm-eval's own tests/test_tasks.py
applies to a new task, their groups and README, and a real run on a tiny model whose
aggregates are recomputed from the logged samples."""

import json
import math
from itertools import islice

import numpy as np
import pytest

from lftf_tasks import TASK_NAMES, TASKS_DIR, task_manager
from lftf_tasks.transfer import (
    TRANSFER_DEV_TASKS,
    TRANSFER_TASK_NAMES,
    TRANSFER_TASKS,
    per_occupation_gap,
    transfer_summary,
)

LIMIT = 10
GROUPS = ("winobias", "winobias_dev")
LEAF_TASKS = [t for t in TRANSFER_TASK_NAMES if t not in GROUPS]
SIZES = {
    "winobias_type1": 391,
    "winobias_type2": 391,
    "winobias_type1_dev": 394,
    "winobias_type2_dev": 388,
    "winogender_next": 178,
}


@pytest.fixture(scope="module")
def manager():
    return task_manager(include_defaults=False)


@pytest.fixture(scope="module")
def tasks(manager):
    return manager.load(LEAF_TASKS)["tasks"]


def test_the_names_the_trainer_imports():
    assert TRANSFER_TASKS == ("winobias", "winogender_next")
    assert TRANSFER_DEV_TASKS == ("winobias_dev",)
    assert set(TRANSFER_TASK_NAMES) <= set(TASK_NAMES)
    assert set(LEAF_TASKS) == set(SIZES)


@pytest.mark.parametrize("name", LEAF_TASKS)
def test_upstream_new_task_checks(tasks, name):
    task = tasks[name]
    assert task.dataset is not None
    winobias = name.startswith("winobias")
    split = "dev" if name.endswith("_dev") else "test"
    assert task.has_training_docs() is False and task.has_test_docs() is True
    assert task.has_validation_docs() is winobias  # Winogender has a test split only
    assert task.config.test_split == split
    assert task.should_decontaminate() is False
    rows = list(islice(task.test_docs(), LIMIT))
    assert len(rows) == LIMIT
    assert task.config.target_delimiter == " "
    for doc in rows:
        text = task.doc_to_text(doc)
        assert isinstance(text, str) and text and not text[-1].isspace()
        choices = task.doc_to_choice(doc)
        assert choices == ([doc["pro"], doc["anti"]] if winobias else ["he", "she"])
        assert isinstance(task.doc_to_target(doc), (int, str))
        if winobias:
            assert doc["split"] == split and f"winobias_type{doc['type']}" in name
    requests = [task.construct_requests(doc=doc, ctx=task.doc_to_text(doc)) for doc in rows]
    assert len(requests) == LIMIT
    for doc, pair in zip(rows, requests):
        assert [r.arguments for r in pair] == [
            (task.doc_to_text(doc), " " + c) for c in task.doc_to_choice(doc)
        ]
    task.build_all_requests(rank=0, limit=LIMIT, world_size=1)
    assert len(task.instances) == 2 * LIMIT


def test_each_task_reads_its_own_split_and_type(tasks):
    for name, size in SIZES.items():
        assert len(list(tasks[name].test_docs())) == size, name


def test_groups_are_size_weighted_over_the_two_types(manager):
    groups = manager.load(list(GROUPS))["groups"]
    for suffix in ("", "_dev"):
        (group,) = [g for key, g in groups.items() if str(key) == f"winobias{suffix}"]
        assert group.child_names == [f"winobias_type1{suffix}", f"winobias_type2{suffix}"]
        aggregates = {a.metric: a for a in group.aggregate_metric_list}
        assert set(aggregates) == {"pct_pro", "ll_diff", "pro_gap"}
        assert all(a.weight_by_size for a in aggregates.values())


def test_readme_follows_lm_evals_new_task_template():
    readme = (TASKS_DIR / "transfer" / "README.md").read_text()
    for heading in ("### Paper", "### Citation", "#### Groups", "#### Tasks", "### Checklist"):
        assert heading in readme, heading
    assert "### Changelog" in readme and "* v1.0" in readme
    for name in TRANSFER_TASK_NAMES:
        assert f"`{name}`" in readme, name
    assert "lm-eval's own `winogender_*` tasks" in readme
    assert "standard error" in readme and "pro_gap" in readme


# --- a real lm-eval run on the tiny random model -----------------------------------------


@pytest.fixture(scope="module")
def run(tiny_llama):
    import lm_eval

    path, _, _ = tiny_llama
    return lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={path}",
        tasks=["winobias", "winobias_dev", "winogender_next", "genbiaseval"],
        device="cpu",
        batch_size=64,
        limit=60,
        log_samples=True,
        task_manager=task_manager(include_defaults=False),
    )


def independent_fit(samples, occupation_field):
    """numpy's least-squares line and r of the per-occupation mean P(he) - P(she) on the
    BLS % female, from the logged samples alone."""
    means = {}
    for s in samples:
        pct = s["doc"]["bls_pct_female"]
        if pct is not None:
            gaps = means.setdefault(s["doc"][occupation_field], (pct, []))[1]
            gaps.append(s["p_he"] - s["p_she"])
    x = np.array([pct for pct, _ in means.values()])
    y = np.array([np.mean(gaps) for _, gaps in means.values()])
    assert len(set(x)) >= 3
    slope, _ = np.polyfit(x, y, 1)
    return slope * 100, np.corrcoef(x, y)[0, 1], dict(zip(means, zip(y, x)))


def test_pair_metrics_are_the_logged_log_likelihoods(run):
    for task in ("winobias_type1", "winobias_type2_dev"):
        samples = run["samples"][task]
        assert len(samples) == 60
        for s in samples:
            (ll_pro, _), (ll_anti, _) = (r[0] for r in s["resps"])
            assert s["ll_diff"] == pytest.approx(ll_pro - ll_anti)
            assert s["pct_pro"] == s["pro_gap"] == float(ll_pro > ll_anti)
        share = np.mean([s["pct_pro"] for s in samples])
        result = run["results"][task]
        assert result["pct_pro,none"] == pytest.approx(share)
        assert result["pro_gap,none"] == pytest.approx(abs(share - 0.5))
        assert result["pct_pro_stderr,none"] > 0


def test_the_group_averages_its_types_by_size(run):
    r = run["results"]
    for suffix in ("", "_dev"):
        types = [r[f"winobias_type{t}{suffix}"] for t in (1, 2)]
        for metric in ("pct_pro", "ll_diff", "pro_gap"):
            expected = np.mean([t[f"{metric},none"] for t in types])  # 60 docs each
            assert r[f"winobias{suffix}"][f"{metric},none"] == pytest.approx(expected)


def test_labour_fits_equal_numpys_on_the_logged_samples(run):
    for task, field in [("winogender_next", "occupation"), ("genbiaseval_word", "profession")]:
        slope, r, _ = independent_fit(run["samples"][task], field)
        assert run["results"][task]["bls_slope,none"] == pytest.approx(slope, rel=1e-6)
        assert run["results"][task]["bls_r,none"] == pytest.approx(r, rel=1e-6)
    scales = [run["results"][f"genbiaseval_{s}"] for s in ("word", "phrase", "sentence")]
    for metric in ("bls_slope", "bls_r"):
        expected = np.mean([t[f"{metric},none"] for t in scales])  # 60 prompts each
        assert run["results"]["genbiaseval"][f"{metric},none"] == pytest.approx(expected)


def test_transfer_summary_reads_a_real_results_dict(run):
    r = run["results"]
    for results in (run, json.loads(json.dumps({"results": r}))):  # in memory, or saved
        summary = transfer_summary(results)
        assert summary["winobias_pct_pro"] == r["winobias"]["pct_pro,none"]
        assert summary["winobias_pct_pro_stderr"] == r["winobias"]["pct_pro_stderr,none"]
        assert summary["winobias_pro_gap"] == pytest.approx(abs(summary["winobias_pct_pro"] - 0.5))
        assert summary["winobias_ll_diff"] == r["winobias"]["ll_diff,none"]
        assert summary["winobias_type2_pct_pro"] == r["winobias_type2"]["pct_pro,none"]
        assert summary["winobias_dev_type1_pct_pro"] == r["winobias_type1_dev"]["pct_pro,none"]
        assert summary["winogender_afgb"] == r["winogender_next"]["afgb,none"]
        assert summary["winogender_afgb_stderr"] == r["winogender_next"]["afgb_stderr,none"]
        assert summary["winogender_bls_slope"] == r["winogender_next"]["bls_slope,none"]
        assert summary["genbiaseval_bls_r"] == r["genbiaseval"]["bls_r,none"]
    prefixes = ["winobias", "winobias_dev"]
    keys = [f"{p}_{k}" for p in prefixes for k in ("pct_pro", "pct_pro_stderr", "pro_gap")]
    keys += [f"{p}_{k}" for p in prefixes for k in ("ll_diff", "type1_pct_pro", "type2_pct_pro")]
    keys += [f"winogender_{k}" for k in ("afgb", "afgb_stderr", "pronoun_mass")]
    keys += [f"winogender_{k}" for k in ("relative_gap", "bls_slope", "bls_r")]
    assert set(summary) == {*keys, "genbiaseval_bls_slope", "genbiaseval_bls_r"}
    assert all(isinstance(v, float) and not math.isnan(v) for v in summary.values())


def test_a_task_that_did_not_run_gives_no_keys(run):
    only = {"results": {k: v for k, v in run["results"].items() if k.startswith("winobias_type1")}}
    assert set(transfer_summary(only)) == {"winobias_type1_pct_pro", "winobias_dev_type1_pct_pro"}
    assert transfer_summary({"results": {}}) == {}
    assert per_occupation_gap({}) == {}


def test_per_occupation_gap_gives_the_points_of_the_fit(run):
    _, _, points = independent_fit(run["samples"]["winogender_next"], "occupation")
    gaps = per_occupation_gap(run["samples"])
    assert set(gaps) == set(points)
    for occupation, (gap, pct) in gaps.items():
        assert (gap, pct) == pytest.approx(points[occupation])
