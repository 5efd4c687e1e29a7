"""Pure parts of the report: row plan, general-task metrics, per-profession gaps, CSV."""

import csv
import statistics

import pytest

from lftf_tasks.axis import load_axis
from lftf_train.config import LocateConfig
from lftf_train.methods.edit import plots as edit_plots
from lftf_train.methods.lftf.report import LFTFReportOptions
from lftf_train.methods.pb import PB_INSTRUCTION
from lftf_train.registry import methods
from lftf_train.report import (
    ORIGINAL,
    ReportSettings,
    general_metrics,
    per_profession_gap,
    plan,
    row_config,
    write_csv,
)


def _planned(axis_name: str = "gender", **settings) -> dict:
    """label -> (method, row, the row's config, or the error its method refuses with)."""
    axis, s = load_axis(axis_name), ReportSettings(options={"lftf": LFTFReportOptions(**settings)})
    base, rows = LocateConfig(axis=axis_name), {}
    for row, method in plan(axis):
        try:
            config = (
                method
                and not row.not_run
                and row_config(base, method, row.config_overrides(s.options.get(method.name), axis))
            )
        except ValueError as err:
            config = err
        rows[row.label] = (method, row, config)
    return rows


# The comparisons of the paper's tables (its Tables 2-4 and ablations), which the report has
# whatever else is registered.
PAPER_ROWS = {"Original", "LFTF (paper defaults)", "FPFT", "PB", "DAMA", "ROME", "R-ROME"}
PAPER_ROWS |= {"MEMIT", "MEND", "w/o ATT", "w/o MLP", "w/o he", "w/o she"}


def test_the_row_plan_is_the_registry_in_order():
    """The original first; then every registered method's main rows, in registration order;
    then every ablation; each label once."""
    planned = plan(load_axis("gender"))
    labels = [row.label for row, _ in planned]
    assert labels[0] == ORIGINAL and len(set(labels)) == len(labels)
    tables = [row.table for row, _ in planned[1:]]
    assert tables == sorted(tables, key=lambda t: t != "main")  # main rows before ablations
    owners = [m.name for row, m in planned[1:] if row.table == "main"]
    registered = [name for name in methods() if name in owners]
    assert list(dict.fromkeys(owners)) == registered
    for method in methods().values():  # every registered method is a row of the report
        assert any(m is method for _, m in planned), method.name


def test_row_plan_matches_the_papers_comparisons():
    rows = _planned(tuned_lr=3e-4, tuned_epochs=5)
    assert PAPER_ROWS <= set(rows)
    config = {name: c for name, (_, _, c) in rows.items()}
    assert (
        config["LFTF (paper defaults)"].lr == 1e-5 and config["LFTF (paper defaults)"].epochs == 2
    )
    assert config["LFTF (dev-tuned)"].lr == 3e-4 and config["LFTF (dev-tuned)"].epochs == 5
    assert config["FPFT"].blocks == "all" and config["FPFT"].lr == 3e-4
    assert config["w/o ATT"].modules == ["mlp"] and config["w/o MLP"].modules == ["attn"]
    assert config["w/o he"].terms == ["she"] and config["w/o she"].terms == ["he"]
    assert rows["Original"][0] is None and config["MEND"].editor == "mend"
    assert rows["PB"][0].name == "pb" and config["PB"].instruction == PB_INSTRUCTION
    assert config["MEMIT"].editor == "memit" and config["MEMIT"].edits == 6
    assert config["MEND"].edits == 6 and config["MEND"].mend_steps == 1200  # its own default
    assert rows["DAMA"][0].name == "dama"
    dama = config["DAMA"]
    assert dama.ranks == [8] and dama.layers == "auto" and dama.seed == 42


def test_ablation_rows_are_named_from_the_axis_groups():
    rows = _planned("religion")
    labels = ["christianity", "islam", "judaism", "hinduism"]
    assert [n for n in rows if n.startswith("w/o ") and n not in ("w/o ATT", "w/o MLP")] == [
        f"w/o {g}" for g in labels
    ]
    assert rows["w/o islam"][2].terms == ["christianity", "judaism", "hinduism"]
    assert "stereotype slopes" in str(rows["DAMA"][2])  # the report marks it "not run: ..."


def test_general_task_metrics_are_read_from_lm_eval_results():
    results = {
        "results": {
            "mmlu": {"acc,none": 0.61, "acc_stderr,none": 0.01},
            "hellaswag": {"acc,none": 0.5, "acc_norm,none": 0.7},
            "gsm8k": {"exact_match,strict-match": 0.3, "exact_match_stderr,strict-match": 0.02},
            "groupless": {"acc,none": 0.4, "acc_stderr,none": "N/A"},
        }
    }
    assert general_metrics(results, ["mmlu", "hellaswag", "gsm8k", "groupless", "missing"]) == {
        "mmlu_acc": 0.61,
        "mmlu_acc_stderr": 0.01,
        "hellaswag_acc": 0.5,
        "gsm8k_exact_match": 0.3,
        "gsm8k_exact_match_stderr": 0.02,
        "groupless_acc": 0.4,
    }


def test_a_group_scored_on_one_doc_per_subtask_gets_the_stderr_of_its_docs_together():
    # lm-eval's --samples with one doc per subject: every subject's stderr is "N/A"
    scores = [1.0, 0.0, 0.0]  # the three subjects' one doc each
    results = {
        "results": {"mmlu": {"acc,none": sum(scores) / 3, "acc_stderr,none": "N/A"}},
        "group_subtasks": {"mmlu": ["mmlu_stem", "mmlu_other"], "mmlu_stem": ["a", "b"]},
        "n-samples": {t: {"original": 100, "effective": 1} for t in ("a", "b", "mmlu_other")},
    }
    assert general_metrics(results, ["mmlu"])["mmlu_acc_stderr"] == pytest.approx(
        statistics.stdev(scores) / 3**0.5
    )
    results["group_subtasks"] = {"mmlu": ["a"]}  # one doc in all: no stderr
    assert "mmlu_acc_stderr" not in general_metrics(results, ["mmlu"])


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
    assert edit_plots.rolling_mean([1, 3, 5, 7], 2).tolist() == [1, 2, 4, 6]
    assert edit_plots.rolling_mean([2, 4], 5).tolist() == [2, 3]
    records = [{"p_target_before": i / 40, "p_target_after": 1 - i / 80} for i in range(40)]
    figures = []
    monkeypatch.setattr(edit_plots, "save", lambda fig, path, footer: figures.append(fig))
    edit_plots.plot_edit_trajectory(
        {"ROME": records, "MEMIT": records[:20]}, tmp_path / "e.png", "t"
    )
    (fig,) = figures
    rome, memit = fig.axes
    before, after = (line.get_ydata() for line in rome.get_lines())
    assert (
        before.tolist()
        == edit_plots.rolling_mean([r["p_target_before"] for r in records], 2).tolist()
    )
    assert after[-1] == pytest.approx(
        (records[-1]["p_target_after"] + records[-2]["p_target_after"]) / 2
    )
    assert len(memit.get_lines()[0].get_ydata()) == 20 and "20 edits" in memit.get_title()


def test_general_limit_is_one_count_or_a_count_per_named_task():
    from lftf_train.evaluate import Evaluation, _task_manager, first_docs, parse_general_limit

    assert parse_general_limit("2") == 2
    assert parse_general_limit("gsm8k=50, gsm_plus_mini=5") == {"gsm8k": 50, "gsm_plus_mini": 5}
    manager = _task_manager(True, ())
    every = first_docs(manager, ["mmlu", "gsm8k"], 2)
    assert len(every) == 58 and every["mmlu_anatomy"] == [0, 1] and every["gsm8k"] == [0, 1]
    assert first_docs(manager, ["mmlu", "gsm8k"], {"gsm8k": 3}) == {"gsm8k": [0, 1, 2]}
    with pytest.raises(ValueError, match="general_limit.*'hellaswag'"):
        Evaluation(general_tasks=["mmlu"], general_limit={"hellaswag": 5})
    with pytest.raises(ValueError, match="general_limit"):
        Evaluation(general_tasks=["gsm8k"], general_limit={"gsm8k": 0})
