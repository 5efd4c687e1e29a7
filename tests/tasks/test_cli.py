"""lftf-eval, lftf-tasks-path and lftf-export-dataset as a user runs them."""

import glob
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lftf_tasks import DATA_DIR, TASKS_DIR

BIN = Path(sys.executable).parent


def run(*args, timeout=600):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout)


def test_tasks_path_prints_the_task_folder():
    proc = run(BIN / "lftf-tasks-path")
    assert proc.returncode == 0
    assert Path(proc.stdout.strip()) == TASKS_DIR
    assert (Path(proc.stdout.strip()) / "genbiaseval" / "genhinteval.yaml").exists()


def test_lftf_eval_help_explains_itself_and_shows_lm_eval_options():
    proc = run(BIN / "lftf-eval", "--help")
    assert proc.returncode == 0
    assert "genbiaseval" in proc.stdout and "--include_path" in proc.stdout
    assert "--model_args" in proc.stdout


def test_wrong_task_name_is_a_clear_error_not_a_traceback():
    proc = run(
        BIN / "lftf-eval",
        "--model",
        "hf",
        "--model_args",
        "pretrained=unused",
        "--tasks",
        "genbiaseval_wordz",
    )
    assert proc.returncode != 0
    assert "Tasks not found: genbiaseval_wordz" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_include_path_is_a_clear_error():
    proc = run(BIN / "lftf-eval", "--tasks", "genbiaseval", "--include_path", "/no/such/dir")
    assert proc.returncode != 0
    assert "/no/such/dir" in proc.stderr and "Traceback" not in proc.stderr


def test_lftf_eval_merges_a_users_include_path(tiny_llama, tmp_path):
    path, _, _ = tiny_llama
    user_tasks = tmp_path / "my_tasks"
    user_tasks.mkdir()
    (user_tasks / "my_pronoun_task.yaml").write_text(
        "task: my_pronoun_task\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {DATA_DIR / 'genhinteval' / 'test.jsonl'}\n"
        "test_split: test\noutput_type: multiple_choice\n"
        'doc_to_text: "{{prompt}}"\ndoc_to_choice: ["he", "she"]\ndoc_to_target: 0\n'
        "metric_list:\n  - metric: acc\n"
    )
    out = tmp_path / "out"
    proc = run(
        BIN / "lftf-eval",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={path}",
        "--tasks",
        "genbiaseval_word,my_pronoun_task",
        "--include_path",
        user_tasks,
        "--limit",
        "3",
        "--output_path",
        out,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results,) = glob.glob(f"{out}/*/results_*.json")
    names = set(json.loads(Path(results).read_text())["results"])
    assert names == {"genbiaseval_word", "my_pronoun_task"}


def test_export_writes_a_hub_ready_folder_and_refuses_to_overwrite(tmp_path):
    import datasets

    out = tmp_path / "hub"
    assert run(BIN / "lftf-export-dataset", out).returncode == 0
    assert (out / "README.md").read_text().startswith("---\nlicense: mit")
    assert json.loads((out / "export.json").read_text())["produced_by"].startswith("lftf ")
    bias = datasets.load_dataset(str(out), "genbiaseval", cache_dir=str(tmp_path / "c"))
    assert {k: len(v) for k, v in bias.items()} == {"train": 943, "validation": 471, "test": 944}
    hint = datasets.load_dataset(str(out), "genhinteval", cache_dir=str(tmp_path / "c"))
    assert {k: len(v) for k, v in hint.items()} == {"validation": 786, "test": 786}
    again = run(BIN / "lftf-export-dataset", out)
    assert again.returncode == 2 and "--overwrite" in again.stderr


@pytest.mark.parametrize("command", ["lftf-export-dataset"])
def test_console_scripts_have_help(command):
    proc = run(BIN / command, "--help")
    assert proc.returncode == 0 and "usage" in proc.stdout
