"""lftf-train as a user runs it, on a tiny random model.

Commands run in-process through ``cli.main(argv)`` (the console script's own entry point);
only what must be a separate process is one: `accelerate launch` and Ctrl-C.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from lftf_train import cli

from ..helpers import run_cli

BIN = Path(sys.executable).parent
TINY_RUN = ["--blocks", "3", "--epochs", "1", "--lr", "1e-3", "--seed", "5"]


lftf_train = run_cli


@pytest.fixture(scope="module")
def trained(tiny_llama, tmp_path_factory):
    path, _, _ = tiny_llama
    out = tmp_path_factory.mktemp("ft") / "out"
    assert (
        cli.main(["finetune", "--model", path, *TINY_RUN, "--output-dir", str(out), "--merged"])
        == 0
    )
    return path, out


@pytest.mark.parametrize("command", ["locate", "finetune", "run", "sweep", "report"])
def test_help_explains_every_command(capsys, command):
    code, out, _ = lftf_train(capsys, command, "--help")
    assert code == 0
    for flag in ("--model", "--output-dir", "--seed", "--config", "--overwrite", "--axis"):
        assert flag in out, (command, flag)
    code, top, _ = lftf_train(capsys, "--help")
    assert code == 0 and "accelerate launch" in top and command in top


def test_finetune_writes_a_small_adapter_with_its_config_and_provenance(trained):
    path, out = trained
    names = {p.name for p in out.iterdir()}
    assert {
        "adapter_model.safetensors",
        "adapter_config.json",
        "lftf_config.json",
        "lftf_run.json",
        "training.png",
        "merged",
    } <= names
    weights = load_file(out / "adapter_model.safetensors")
    assert weights and all(".layers.3." in k for k in weights)
    run = json.loads((out / "lftf_run.json").read_text())
    assert run["seed"] == 5 and run["result"]["blocks"] == [3] and run["resolved_model"] == path
    assert run["method"] == "lftf" and run["load_with"].endswith(f"peft={out}")
    assert run["versions"]["peft"] and run["date"]
    assert run["command"] == f"lftf-train finetune --model {path} {' '.join(TINY_RUN)} " + (
        f"--output-dir {out} --merged"
    )
    assert run["metrics"] == {
        "bias": "afgb",
        "hint": "ub",
        "mass": "pronoun_mass",
        "relative": "relative_gap",
    }
    assert set(run["result"]["history"][1]["dev"]) >= {"afgb", "ub", "pronoun_mass", "relative_gap"}
    saved = json.loads((out / "lftf_config.json").read_text())
    assert saved["lr"] == 1e-3 and saved["lftf_method"] == "lftf"
    assert (out / "merged" / "config.json").exists()


def test_saved_config_reproduces_the_run(trained, tmp_path, capsys):
    _, out = trained
    again = tmp_path / "again"
    code, _, err = lftf_train(
        capsys, "finetune", "--config", out / "lftf_config.json", "--output-dir", again
    )
    assert code == 0, err[-2000:]
    first = json.loads((out / "lftf_run.json").read_text())["result"]["step_losses"]
    assert json.loads((again / "lftf_run.json").read_text())["result"]["step_losses"] == first


def test_existing_output_is_refused_unless_overwrite(trained, capsys):
    path, out = trained
    before = (out / "lftf_run.json").read_text()
    code, _, err = lftf_train(
        capsys, "finetune", "--model", path, "--blocks", "3", "--output-dir", out
    )
    assert code == 2 and "--overwrite" in err and "Traceback" not in err
    assert (out / "lftf_run.json").read_text() == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "/no/such/model"], "no such folder"),
        (["--model", "/no/such/model.gguf"], "GGUF file /no/such/model.gguf does not exist"),
        (["--blocks", "4"], "out of range: this model has 4 blocks, 0..3"),
        (["--modules", "ffn"], "--modules ffn: choose one or both"),
        (["--lr", "-1"], "--lr -1.0: must be > 0"),
        (["--axis", "no_such_axis"], "--axis no_such_axis: axis 'no_such_axis'"),
        (["--terms", "they"], "--terms they: choose groups"),
    ],
)
def test_bad_input_is_a_clear_error(tiny_llama, tmp_path, capsys, args, message):
    path, _, _ = tiny_llama
    model = [] if "--model" in args else ["--model", path]
    code, _, err = lftf_train(capsys, "finetune", *model, "--output-dir", tmp_path / "o", *args)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_multi_token_pronouns_are_refused_with_an_explanation(char_model, tmp_path, capsys):
    path, _, _ = char_model
    code, _, err = lftf_train(
        capsys, "finetune", "--model", path, "--blocks", "1", "--output-dir", tmp_path / "o"
    )
    assert code == 2 and "Traceback" not in err
    assert "splits ' he' into 3 tokens" in err and "single-token" in err


def test_run_evaluates_before_and_after_with_lm_eval(tiny_llama, tmp_path, capsys):
    path, _, _ = tiny_llama
    out = tmp_path / "run"
    code, stdout, err = lftf_train(
        capsys, "run", "--model", path, *TINY_RUN, "--limit", "4", "--output-dir", out
    )
    assert code == 0, err[-3000:]
    run = json.loads((out / "lftf_run.json").read_text())
    evaluation = run["evaluation"]
    assert evaluation["limit"] == 4
    for when, row in (("before", "original"), ("after", "LFTF")):
        raw = evaluation[f"lm_eval_{when}"]
        assert evaluation["rows"][row]["afgb_avg"] == raw["genbiaseval"]["afgb,none"]
        assert evaluation["rows"][row]["ub"] == raw["genhinteval"]["ub,none"]
    assert evaluation["rows"]["original"] != evaluation["rows"]["LFTF"]
    summary = (out / "summary.md").read_text()
    assert "| LFTF |" in summary and "| original |" in summary and "| LFTF |" in stdout
    # WinoBias and Winogender in the same lm-eval calls, their own table and figure
    for when, row in (("before", "original"), ("after", "LFTF")):
        raw = evaluation[f"lm_eval_{when}"]
        scores = evaluation["rows"][row]
        assert scores["winobias_pct_pro"] == raw["winobias"]["pct_pro,none"]
        slope = raw["winogender_next"]["bls_slope,none"]  # NaN: 4 prompts, one occupation
        assert scores["winogender_bls_slope"] == pytest.approx(slope, nan_ok=True)
    assert "## Transfer: WinoBias and Winogender" in summary and "WinoBias % pro" in stdout
    assert (out / "transfer.png").stat().st_size > 0
    # MMLU by default, both forms, in the same calls, with lm-eval's stderr
    assert evaluation["general_tasks"] == ["mmlu", "mmlu_continuation"]
    for when, row in (("before", "original"), ("after", "LFTF")):
        raw, scores = evaluation[f"lm_eval_{when}"], evaluation["rows"][row]
        for task in ("mmlu", "mmlu_continuation"):
            assert scores[f"{task}_acc"] == raw[task]["acc,none"]
            assert scores[f"{task}_acc_stderr"] == raw[task]["acc_stderr,none"]
    assert "mmlu_continuation_acc" in summary


def test_sweep_chooses_on_dev_and_labels_with_the_axis_names(tiny_llama, tmp_path, capsys):
    path, _, _ = tiny_llama
    out = tmp_path / "sweep"
    args = ["--axis", "religion", "--blocks", "3", "--epochs", "2", "--lrs", "1e-3,3e-3"]
    code, _, err = lftf_train(capsys, "sweep", "--model", path, *args, "--output-dir", out)
    assert code == 0, err[-3000:]
    info = json.loads((out / "sweep.json").read_text())
    best = {lr: r["best"]["dev"]["range"] for lr, r in info["result"]["runs"].items()}
    assert info["result"]["chosen_lr"] == float(min(best, key=best.get))
    table = (out / "sweep.md").read_text()
    assert "| dev range | dev relative_range | dev mass | dev hint_score |" in table
    assert "afgb" not in table.lower() and (out / "sweep.png").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_no_output(tiny_llama, tmp_path, signum):
    path, _, _ = tiny_llama
    out = tmp_path / "o"
    proc = subprocess.Popen(
        [
            str(BIN / "lftf-train"),
            "finetune",
            "--model",
            path,
            "--blocks",
            "0",
            "--epochs",
            "500",
            "--output-dir",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # A shell that starts the suite in the background makes children ignore SIGINT;
        # give this one the default disposition, as in a terminal.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        for line in proc.stdout:  # wait until training runs
            if line.startswith("epoch 0:"):
                break
        time.sleep(0.5)
        proc.send_signal(signum)
        rest = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:  # never leave a 500-epoch run behind
            proc.kill()
    assert proc.returncode == 130, rest[-2000:]
    assert "interrupted; no output was written" in rest
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_two_cpu_processes_with_accelerate_match_one(trained, tmp_path):
    path, out = trained
    env = {**os.environ, "ACCELERATE_USE_CPU": "1"}
    cmd = [
        str(BIN / "accelerate"),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "lftf_train",
        "finetune",
        "--model",
        path,
        *TINY_RUN,
        "--output-dir",
        str(tmp_path / "ddp"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp" / "lftf_run.json").read_text())
    single = json.loads((out / "lftf_run.json").read_text())
    ddp, single = ddp["result"], single["result"]
    assert ddp["processes"] == 2 and single["processes"] == 1
    assert ddp["step_losses"][0] == pytest.approx(single["step_losses"][0], abs=1e-5)
    assert ddp["step_losses"] == pytest.approx(single["step_losses"], rel=1e-3)
    a = load_file(tmp_path / "ddp" / "adapter_model.safetensors")
    b = load_file(out / "adapter_model.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-3


def test_locate_reports_every_locator_side_by_side(tiny_llama, tmp_path, capsys):
    path, model, tok = tiny_llama
    out = tmp_path / "loc"
    code, stdout, err = lftf_train(
        capsys, "locate", "--model", path, "--locate-prompts", 8, "--output-dir", out
    )
    assert code == 0, err[-3000:]
    report = json.loads((out / "bmi.json").read_text())
    assert set(report["ranking"]) == {"hidden_states", "block_io", "skip"}
    assert (out / "locators.png").stat().st_size > 0 and (out / "bmi.png").exists()
    from lftf_train import data
    from lftf_train import locating as locate

    prompts = data.sample_prompts("train", 8, 42)
    assert report["scores"]["skip"] == pytest.approx(locate.skip_scores(model, tok, prompts))
    assert "skip" in stdout and "(used for --blocks auto)" in stdout


def test_skip_locator_picks_the_trained_block_on_another_axis(tiny_llama, tmp_path, capsys):
    path, _, _ = tiny_llama
    out = tmp_path / "skip"
    args = ["--axis", "religion", "--locator", "skip", "--locate-prompts", 8, "--epochs", 1]
    code, _, err = lftf_train(capsys, "finetune", "--model", path, *args, "--output-dir", out)
    assert code == 0, err[-3000:]
    run = json.loads((out / "lftf_run.json").read_text())
    assert run["axis"] == "religion" and run["config"]["locator"] == "skip"
    assert run["result"]["blocks"] == [run["result"]["bmi"]["top_block"]["skip"]]
    assert "-log P(islam|p)" in run["result"]["loss"]
    # the history speaks the axis's own metric names, measured on its own dev tasks
    assert run["metrics"]["bias"] == "range" and run["metrics"]["hint"] == "hint_score"
    assert run["dev_tasks"] == ["relbiaseval_dev", "relhinteval_dev"]
    assert {"range", "hint_score", "mass", "relative_range", "p_islam"} <= set(
        run["result"]["history"][0]["dev"]
    )
    history = run["result"]["history"][0]["dev"]
    assert "afgb" not in history and "ub" not in history


def test_run_refuses_a_missing_include_path_before_any_work(tiny_llama, tmp_path, capsys):
    path, _, _ = tiny_llama
    argv = ["run", "--model", path, "--include-path", "/no/such/tasks", "--output-dir"]
    code, _, err = lftf_train(capsys, *argv, tmp_path / "o")
    assert code == 2 and "--include-path /no/such/tasks: no such folder" in err
    assert not (tmp_path / "o").exists()


# --- bad numbers are refused before any work, in one line that names the flag

TRAIN = "the gender axis's train split has 943 requests; give 1..943"


@pytest.mark.parametrize(
    "argv, line",
    [
        (
            ["edit", "--edits", "100000"],
            f"lftf-train edit: --edits 100000: {TRAIN} (or leave it unset for all)",
        ),
        (["edit", "--edits", "0"], f"lftf-train edit: --edits 0: {TRAIN}"),
        (["dama", "--requests", "944"], f"lftf-train dama: --requests 944: {TRAIN}"),
        (
            ["locate", "--locate-prompts", "944"],
            f"lftf-train locate: --locate-prompts 944: {TRAIN}",
        ),
        (["report", "--edit-limit", "944"], f"lftf-train report: --edit-limit 944: {TRAIN}"),
        (
            ["edit", "--editor", "mend", "--mend-val-requests", "943"],
            "lftf-train edit: --mend-val-requests 943: the gender axis's train split has 943 "
            "requests; give 1..942 (the rest are trained on)",
        ),
        (["dama", "--ranks", "0"], "lftf-train dama: --ranks 0: a projection rank is 1 or more"),
        (["dama", "--ranks", "0,8"], "lftf-train dama: --ranks 0,8: a projection rank is 1"),
        (["dama", "--v-lr", "0"], "lftf-train dama: --v-lr 0.0: must be > 0"),
        (["finetune", "--epochs", "0"], "lftf-train finetune: --epochs 0: must be a positive"),
        (["finetune", "--batch-size", "0"], "lftf-train finetune: --batch-size 0: "),
        (["finetune", "--lora-r", "0"], "lftf-train finetune: --lora-r 0: "),
        (["finetune", "--weight-decay", "-1"], "lftf-train finetune: --weight-decay -1.0: "),
        (["sweep", "--epochs", "0"], "lftf-train sweep: --epochs 0: "),
        (["edit", "--mend-lr", "0"], "lftf-train edit: --mend-lr 0.0: must be > 0"),
        (["edit", "--cov-tokens", "0"], "lftf-train edit: --cov-tokens 0: "),
        (["report", "--tuned-epochs", "0"], "lftf-train report: --tuned-epochs 0: "),
        (["report", "--dama-ranks", "0"], "lftf-train report: --dama-ranks 0: "),
        (
            ["edit", "--limit", "6"],
            "lftf-train edit: --limit 6: --limit is lm-eval's docs-per-task limit; the number "
            "of edits is --edits",
        ),
        (
            ["edit", "--limit", "6", "--evaluate"],
            "lftf-train edit: --limit 6: --limit is lm-eval's",
        ),
        (
            ["dama", "--limit", "4"],
            "lftf-train dama: --limit 4: --limit is lm-eval's docs per task, and nothing is "
            "evaluated without --evaluate",
        ),
        (
            ["edit", "--edits", "2", "--evaluate", "--limit", "0"],
            "lftf-train edit: --limit 0: lm-eval's docs per task: give 1 or more",
        ),
        (["run", "--limit", "-1"], "lftf-train run: --limit -1: lm-eval's docs per task"),
        (["report", "--limit", "0"], "lftf-train report: --limit 0: lm-eval's docs per task"),
    ],
)
def test_bad_numbers_are_refused_in_one_line_before_any_model_loads(
    argv, line, tmp_path, capsys, monkeypatch
):
    from lftf_train import models

    def no_load(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(models, "load", no_load)
    start = time.perf_counter()
    code, out, err = lftf_train(capsys, *argv, "--output-dir", tmp_path / "o")
    assert time.perf_counter() - start < 5
    assert code == 2 and err.startswith(line), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_limit_with_edits_and_evaluate_is_not_refused(capsys):
    args = cli.build_parser().parse_args(["edit", "--edits", "2", "--evaluate", "--limit", "4"])
    plan = cli._plan(args, cli.config_from_args(args))
    assert callable(plan)


def test_help_says_what_each_counting_flag_counts(capsys):
    _, out, _ = lftf_train(capsys, "edit", "--help")
    text = " ".join(out.split())
    assert "The number of edits: this many of the axis's train requests (1..943 for gender)" in text
    assert "lm-eval's --limit: at most N docs of each task in the evaluation" in text
    assert "It counts no training prompts or edits (edit: --edits)" in text
    _, out, _ = lftf_train(capsys, "report", "--help")
    assert "not --limit, which is lm-eval's docs per task" in " ".join(out.split())


def test_general_tasks_offline_without_local_copies_is_one_clear_error(
    tiny_llama, tmp_path, capsys, monkeypatch
):
    """No capability/ in the reference folder and no Hub: refused before any training."""
    reference = Path(os.environ.get("LFTF_REFERENCE_DIR", "../shared/reference")).resolve()
    bias_only = tmp_path / "reference"
    bias_only.mkdir()
    for entry in reference.iterdir():
        if entry.name != "capability":
            (bias_only / entry.name).symlink_to(entry)
    monkeypatch.setenv("LFTF_REFERENCE_DIR", str(bias_only))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    path, _, _ = tiny_llama
    argv = ["run", "--model", path, *TINY_RUN, "--limit", "2", "--general-tasks", "mmlu_anatomy"]
    code, _, err = lftf_train(capsys, *argv, "--output-dir", tmp_path / "run")
    last = err.strip().splitlines()[-1]  # (lm-eval's own log lines come before it)
    assert code == 2 and last.startswith("lftf-train: error: lm-eval could not load")
    assert "Hugging Face Hub" in last and "LFTF_REFERENCE_DIR" in last
    assert "--general-tasks none" in last
    assert not (tmp_path / "run").exists()
