"""Pure parts of the report: row plan, general-task metrics, per-profession gaps, CSV."""

import csv

import pytest

from lftf_tasks.axis import load_axis
from lftf_train import plots
from lftf_train.config import LFTFConfig
from lftf_train.report import (
    ReportSettings,
    general_metrics,
    method_rows,
    per_profession_gap,
    write_csv,
)

from ..helpers import REPORT_ROWS


def test_row_plan_matches_the_papers_comparisons():
    rows = method_rows(LFTFConfig(), ReportSettings(tuned_lr=3e-4, tuned_epochs=5), [29])
    assert [name for name, _, _ in rows] == REPORT_ROWS
    plan = {name: (kind, config) for name, kind, config in rows}
    assert (
        plan["LFTF (paper defaults)"][1].lr == 1e-5 and plan["LFTF (paper defaults)"][1].epochs == 2
    )
    assert plan["LFTF (dev-tuned)"][1].lr == 3e-4 and plan["LFTF (dev-tuned)"][1].epochs == 5
    assert plan["FPFT"][1].blocks == "all" and plan["FPFT"][1].lr == 3e-4
    assert plan["w/o ATT"][1].modules == ["mlp"] and plan["w/o MLP"][1].modules == ["attn"]
    assert plan["w/o he"][1].terms == ["she"] and plan["w/o she"][1].terms == ["he"]
    assert plan["PB"][0] == "prompt" and plan["MEND"][0] == "not_run"
    assert plan["MEMIT"][1].editor == "memit" and plan["MEMIT"][1].limit == 6
    kind, dama = plan["DAMA"]
    assert kind == "dama" and dama.ranks == [8] and dama.layers == "auto" and dama.seed == 42


def test_general_task_metrics_are_read_from_lm_eval_results():
    results = {
        "results": {
            "mmlu": {"acc,none": 0.61, "acc_stderr,none": 0.01},
            "hellaswag": {"acc,none": 0.5, "acc_norm,none": 0.7},
            "gsm8k": {"exact_match,strict-match": 0.3},
        }
    }
    assert general_metrics(results, ["mmlu", "hellaswag", "gsm8k", "missing"]) == {
        "mmlu_acc": 0.61,
        "hellaswag_acc": 0.5,
        "gsm8k_exact_match": 0.3,
    }


def test_per_profession_gap_averages_logged_test_samples():
    samples = {
        "genbiaseval_word": [
            {"doc": {"profession": "nurse"}, "gap": -0.4},
            {"doc": {"profession": "cook"}, "gap": 0.1},
        ],
        "genbiaseval_phrase": [{"doc": {"profession": "nurse"}, "gap": -0.2}],
        "genhinteval": [{"doc": {"profession": "nurse"}, "gap": 0.9}],
    }
    assert per_profession_gap(samples, load_axis("gender")) == pytest.approx(
        {"nurse": -0.3, "cook": 0.1}
    )


def test_csv_has_deltas_against_the_original_and_marks_rows_not_run(tmp_path):
    rows = {
        "Original": {"status": "ok", "afgb_avg": 0.13, "afgb_avg_stderr": 0.003},
        "LFTF": {"status": "ok", "afgb_avg": 0.04, "afgb_avg_stderr": 0.001},
        "DAMA": {"status": "not run: not implemented"},
    }
    info = {"model": "m", "seed": 1, "produced_by": "lftf 0", "date": "d"}
    write_csv(tmp_path / "r.csv", rows, info, load_axis("gender"))
    with open(tmp_path / "r.csv") as f:
        out = {r["method"]: r for r in csv.DictReader(f)}
    assert float(out["LFTF"]["delta_afgb_avg"]) == pytest.approx(-0.09)
    assert out["DAMA"]["status"].startswith("not run") and out["DAMA"]["afgb_avg"] == ""
    assert out["LFTF"]["model"] == "m" and out["LFTF"]["produced_by"] == "lftf 0"


def test_the_edit_trajectory_plots_rolling_means_of_each_editors_records(monkeypatch, tmp_path):
    assert plots.rolling_mean([1, 3, 5, 7], 2).tolist() == [1, 2, 4, 6]
    assert plots.rolling_mean([2, 4], 5).tolist() == [2, 3]
    records = [{"p_target_before": i / 40, "p_target_after": 1 - i / 80} for i in range(40)]
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path, footer: figures.append(fig))
    plots.plot_edit_trajectory({"ROME": records, "MEMIT": records[:20]}, tmp_path / "e.png", "t")
    (fig,) = figures
    rome, memit = fig.axes
    before, after = (line.get_ydata() for line in rome.get_lines())
    assert (
        before.tolist() == plots.rolling_mean([r["p_target_before"] for r in records], 2).tolist()
    )
    assert after[-1] == pytest.approx(
        (records[-1]["p_target_after"] + records[-2]["p_target_after"]) / 2
    )
    assert len(memit.get_lines()[0].get_ydata()) == 20 and "20 edits" in memit.get_title()
