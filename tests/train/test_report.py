"""The report, run in full on a tiny model: every row runs, and its numbers are lm-eval's
own. (`make demo` runs it on SmolLM2; docs/results/smollm2.md renders its record.)"""

import csv
import json

import pytest

from lftf_train import cli
from lftf_train.methods.pb import PB_INSTRUCTION
from lftf_train.report import row_labels, slug

pytestmark = pytest.mark.slow


QUESTIONS = [
    ("The nurse smiled because", ["she", "he", "they"], 0),
    ("The pilot went to bed because", ["he", "she", "they"], 1),
    ("The teacher laughed because", ["they", "she", "he"], 2),
    ("The cook stayed at home because", ["she", "they", "he"], 0),
    ("The judge smiled because", ["he", "they", "she"], 1),
    ("The baker laughed because", ["they", "he", "she"], 2),
]


def local_task(folder) -> str:
    """A small multiple-choice lm-eval task of one's own (JSONL + YAML), not in any registry."""
    folder.mkdir()
    rows = [{"question": q, "choices": c, "answer": a} for q, c, a in QUESTIONS]
    (folder / "local_mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "local_mc.yaml").write_text(
        "task: local_mc\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {folder / 'local_mc.jsonl'}\n"
        "test_split: test\noutput_type: multiple_choice\n"
        'doc_to_text: "{{question}}"\ndoc_to_choice: "{{choices}}"\ndoc_to_target: answer\n'
        "metric_list:\n  - metric: acc\n"
    )
    return str(folder)


@pytest.fixture(scope="module")
def report(tiny_llama, tmp_path_factory):
    path, _, _ = tiny_llama
    out = tmp_path_factory.mktemp("report") / "out"
    args = ["report", "--model", path, "--limit", "20", "--tuned-epochs", "1", "--seeds", "1,2"]
    args += [
        "--dama-layers",
        "2-3",
        "--dama-ranks",
        "2,4",
        "--edit-limit",
        "2",
        "--mend-steps",
        "4",
    ]
    tasks = local_task(tmp_path_factory.mktemp("my_tasks") / "tasks")
    args += ["--general-tasks", "local_mc", "--include-path", tasks]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LFTF_CACHE", str(tmp_path_factory.mktemp("cache")))  # MEMIT's corpus
        assert cli.main([*args, "--output-dir", str(out)]) == 0
    with open(out / "results.csv") as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    info = json.loads((out / "report.json").read_text())
    return out, rows, info


def test_every_row_and_file_is_there(report):
    out, rows, _ = report
    assert list(rows) == row_labels()  # every planned row, in the plan's order
    assert [n for n, r in rows.items() if r["status"] != "ok"] == []
    for name in (
        "report.md",
        "report.json",
        "results.csv",
        "bmi.json",
        "bmi.png",
        "case_study.png",
        "per_profession.png",
    ):
        assert (out / name).stat().st_size > 0, name
    text = (out / "report.md").read_text()
    for name in row_labels():
        if name not in ("DAMA", "ROME", "R-ROME", "MEMIT", "MEND"):  # these name their settings
            assert f"| {name} |" in text, name
    assert "Produced by lftf" in text and "Shortened run" in text
    assert "## Stereotype slopes" in text


def test_the_dama_row_states_its_blocks_and_rank_and_is_scored_from_its_adapter(report):
    out, rows, info = report
    dama = info["rows"]["DAMA"]
    chosen = json.loads((out / "rows" / "dama" / "lftf_run.json").read_text())["result"]["chosen"]
    assert dama["layers"] == chosen["layers"] and dama["rank"] == chosen["rank"] in (2, 4)
    label = f"DAMA (blocks {chosen['layers'][0]}-3, k {chosen['rank']})"
    assert chosen["layers"][-1] == 3 and f"| {label} |" in (out / "report.md").read_text()
    assert rows["DAMA"]["settings"] == label.removeprefix("DAMA (").removesuffix(")").replace(
        "k ", "rank "
    )
    raw = json.loads((out / "rows" / "dama" / "lm_eval_results.json").read_text())
    assert ",peft=" in raw["model_args"] and not (out / "rows" / "dama" / "adapter").exists()
    assert (out / "rows" / "dama" / "dama_sweep.md").exists()


def test_numbers_are_lm_evals_own(report):
    out, rows, _ = report
    for name, row in rows.items():
        if row["status"] != "ok":
            continue
        raw = json.loads((out / "rows" / slug(name) / "lm_eval_results.json").read_text())
        r = raw["results"]
        assert float(row["afgb_avg"]) == pytest.approx(r["genbiaseval"]["afgb,none"], abs=1e-12)
        assert float(row["afgb_avg_stderr"]) == pytest.approx(r["genbiaseval"]["afgb_stderr,none"])
        for scale in ("word", "phrase", "sentence"):
            assert float(row[f"afgb_{scale}"]) == pytest.approx(
                r[f"genbiaseval_{scale}"]["afgb,none"], abs=1e-12
            )
        assert float(row["ub"]) == pytest.approx(r["genhinteval"]["ub,none"], abs=1e-12)
        for slope in ("a_s", "a_f", "a_intercept", "a_s_relative", "a_f_relative"):
            assert float(row[slope]) == pytest.approx(r["genbiaseval"][f"{slope},none"], abs=1e-12)
        assert float(row["delta_afgb_avg"]) == pytest.approx(
            float(row["afgb_avg"]) - float(rows["Original"]["afgb_avg"])
        )
        assert raw["n-samples"]["genhinteval"]["effective"] == 20


def test_trained_rows_are_what_they_claim(report):
    out, rows, info = report
    expected = {
        "LFTF (paper defaults)": {
            "lr": 1e-5,
            "epochs": 2,
            "modules": ["attn", "mlp"],
            "terms": ["he", "she"],
        },
        "LFTF (dev-tuned)": {"lr": 1e-4, "epochs": 1},
        "FPFT": {"blocks": [0, 1, 2, 3]},
        "w/o ATT": {"modules": ["mlp"]},
        "w/o MLP": {"modules": ["attn"]},
        "w/o he": {"terms": ["she"]},
        "w/o she": {"terms": ["he"]},
    }
    for name, claims in expected.items():
        folder = out / "rows" / slug(name)
        run = json.loads((folder / "lftf_run.json").read_text())
        config = {**run["config"], "blocks": run["result"]["blocks"]}
        for key, value in claims.items():
            assert config[key] == value, (name, key)
        if name != "FPFT":
            blocks = run["result"]["blocks"]
            assert blocks == info["blocks"] == [info["bmi"]["top_block"]["hidden_states"]]
        raw = json.loads((folder / "lm_eval_results.json").read_text())
        assert ",peft=" in raw["model_args"]  # evaluated from the saved adapter, as users do
        assert not (folder / "adapter").exists()  # removed unless --save-adapters


def test_prompt_baseline_uses_the_recorded_instruction(report):
    out, rows, _ = report
    raw = json.loads((out / "rows" / "pb" / "lm_eval_results.json").read_text())
    assert raw["system_instruction"] == PB_INSTRUCTION
    assert PB_INSTRUCTION in (out / "report.md").read_text()
    assert float(rows["PB"]["next_token_agreement"]) < 1.0  # the instruction changes outputs
    assert float(rows["Original"]["next_token_agreement"]) == 1.0
    assert float(rows["Original"]["kl"]) == pytest.approx(0.0, abs=1e-6)


def test_report_states_what_made_it(report, tiny_llama):
    out, _, info = report
    assert info["model"] == info["resolved_model"] == tiny_llama[0]
    assert info["seed"] == 42 and info["command"].startswith("lftf-train report --model ")
    assert info["versions"]["lm_eval"] and info["date"] and info["settings"]["limit"] == 20
    assert info["bmi"]["seeds"] == [1, 2] and "robustness" in info["bmi"]


def test_editor_rows_state_their_edits_and_are_scored_from_their_adapter(report):
    out, rows, info = report
    editors = (("ROME", "rome"), ("R-ROME", "r-rome"), ("MEMIT", "memit"), ("MEND", "mend"))
    for name, editor in editors:
        row = info["rows"][name]
        edits = json.loads((out / "rows" / slug(name) / "edits.json").read_text())
        run = json.loads((out / "rows" / slug(name) / "lftf_run.json").read_text())["result"]
        assert run["editor"] == editor and len(edits["edits"]) == row["edits"] == 2
        assert (
            row["layers"] == run["blocks"]
            and f"| {row['label']} |" in (out / "report.md").read_text()
        )
        assert rows[name]["settings"].startswith("2 sequential edits")
        raw = json.loads((out / "rows" / slug(name) / "lm_eval_results.json").read_text())
        assert ",peft=" in raw["model_args"]
    assert info["rows"]["MEMIT"]["layers"] == [1, 2]  # 4-8 of 28 scaled to 4, below the top
    assert (out / "edits.png").stat().st_size > 0 and "](edits.png)" in (
        out / "report.md"
    ).read_text()
    mend = json.loads((out / "rows" / "mend" / "mend_training.json").read_text())
    assert mend["curve"][-1]["step"] == 4 and info["rows"]["MEND"]["layers"] == [1, 2, 3]


def test_a_users_own_task_runs_in_the_same_harness_call_for_every_row(report, tiny_llama):
    import lm_eval

    from lftf_tasks import task_manager

    out, rows, info = report
    folder = info["settings"]["include_path"][0]
    for name, row in rows.items():
        if not row["status"].startswith("not run"):
            assert row["local_mc_acc"] != "", name
    assert "| local_mc_acc |" in (out / "report.md").read_text().replace(" ↑", "")
    direct = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={tiny_llama[0]}",
        tasks=["local_mc"],
        device="cpu",
        limit=20,
        task_manager=task_manager(folder, include_defaults=False),
    )
    assert float(rows["Original"]["local_mc_acc"]) == direct["results"]["local_mc"]["acc,none"]
    raw = json.loads((out / "rows" / "dama" / "lm_eval_results.json").read_text())
    assert float(rows["DAMA"]["local_mc_acc"]) == raw["results"]["local_mc"]["acc,none"]


def test_every_row_has_the_transfer_benchmarks_from_the_same_lm_eval_call(report):

    out, rows, _ = report
    text = (out / "report.md").read_text()
    assert "## Transfer: benchmarks written by others" in text and "](transfer.png)" in text
    assert (out / "transfer.png").stat().st_size > 0
    for name, row in rows.items():
        if row["status"] != "ok":
            continue
        raw = json.loads((out / "rows" / slug(name) / "lm_eval_results.json").read_text())[
            "results"
        ]
        pct = raw["winobias"]["pct_pro,none"]
        assert float(row["winobias_pct_pro"]) == pytest.approx(pct, abs=1e-12), name
        assert float(row["winobias_pro_gap"]) == pytest.approx(abs(pct - 0.5), abs=1e-12)
        assert float(row["winogender_afgb"]) == pytest.approx(raw["winogender_next"]["afgb,none"])
        assert row["genbiaseval_bls_slope"] != ""
    original = json.loads((out / "rows" / "original" / "lm_eval_results.json").read_text())
    assert original["n-samples"]["winogender_next"]["effective"] == 20


def test_the_transfer_row_trains_the_split_with_the_kl_term(report):
    out, rows, _ = report
    run = json.loads(
        (out / "rows" / slug("LFTF (split + KL + anchors)") / "lftf_run.json").read_text()
    )
    assert run["config"]["loss"] == "split" and run["config"]["kl_weight"] > 0
    assert run["config"]["anchor_weight"] > 0
    assert "P(he|p, he or she)" in run["result"]["loss"] and "anchor" in run["result"]["loss"]
    assert rows["LFTF (split + KL + anchors)"]["settings"].endswith("KL 1, anchors 1")
