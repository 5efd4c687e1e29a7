"""lftf-eval, lftf-tasks-path and lftf-export-dataset as a user runs them (in-process
through their entry points, except the one that must show it is installed)."""

import glob
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lftf_tasks import TASKS_DIR, data_dir, export
from lftf_tasks.cli import lftf_eval

BIN = Path(sys.executable).parent


def run(*args, timeout=600):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout)


def test_tasks_path_prints_the_task_folder():
    proc = run(BIN / "lftf-tasks-path")
    assert proc.returncode == 0
    assert Path(proc.stdout.strip()) == TASKS_DIR
    assert (Path(proc.stdout.strip()) / "genbiaseval" / "genhinteval.yaml").exists()


def test_lftf_eval_help_explains_itself_and_shows_lm_eval_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        lftf_eval(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "genbiaseval" in out and "--include_path" in out
    assert "--model_args" in out


@pytest.mark.slow
def test_wrong_task_name_is_a_clear_error_not_a_traceback():
    argv = ["--model", "hf", "--model_args", "pretrained=unused", "--tasks", "genbiaseval_wordz"]
    with pytest.raises(SystemExit) as exit_:
        lftf_eval(argv)
    message = str(exit_.value.code)
    assert message.startswith("lftf-eval: Tasks not found: genbiaseval_wordz")
    assert "genhinteval" in message  # it lists ours


def test_missing_include_path_is_a_clear_error():
    with pytest.raises(SystemExit) as exit_:
        lftf_eval(["--tasks", "genbiaseval", "--include_path", "/no/such/dir"])
    assert "/no/such/dir" in str(exit_.value.code) and "not a directory" in str(exit_.value.code)


@pytest.mark.slow
def test_lftf_eval_merges_a_users_include_path(tiny_llama, tmp_path):
    path, _, _ = tiny_llama
    user_tasks = tmp_path / "my_tasks"
    user_tasks.mkdir()
    (user_tasks / "my_pronoun_task.yaml").write_text(
        "task: my_pronoun_task\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data_dir() / 'genhinteval' / 'test.jsonl'}\n"
        "test_split: test\noutput_type: multiple_choice\n"
        'doc_to_text: "{{prompt}}"\ndoc_to_choice: ["he", "she"]\ndoc_to_target: 0\n'
        "metric_list:\n  - metric: acc\n"
    )
    out = tmp_path / "out"
    argv = ["--model", "hf", "--model_args", f"pretrained={path}"]
    argv += ["--tasks", "genbiaseval_word,my_pronoun_task", "--include_path", str(user_tasks)]
    lftf_eval([*argv, "--limit", "3", "--output_path", str(out)])
    (results,) = glob.glob(f"{out}/*/results_*.json")
    names = set(json.loads(Path(results).read_text())["results"])
    assert names == {"genbiaseval_word", "my_pronoun_task"}


def test_export_writes_a_hub_ready_folder_and_refuses_to_overwrite(tmp_path, capsys):
    import datasets

    out = tmp_path / "hub"
    assert export.main([str(out)]) == 0
    assert (out / "README.md").read_text().startswith("---\nlicense: mit")
    info = json.loads((out / "export.json").read_text())
    assert info["produced_by"].startswith("lftf ") and info["axis"] == "gender"
    assert info["files"] == sorted(
        [
            "LICENSE-professions",
            "README.md",
            "genbiaseval/dev.jsonl",
            "genbiaseval/test.jsonl",
            "genbiaseval/train.jsonl",
            "genhinteval/dev.jsonl",
            "genhinteval/test.jsonl",
            "professions.json",
        ]
    )
    for rel in info["files"]:  # the package's data build, byte for byte
        shipped = data_dir() / rel
        assert (out / rel).read_bytes() == shipped.read_bytes(), rel
    bias = datasets.load_dataset(str(out), "genbiaseval", cache_dir=str(tmp_path / "c"))
    assert {k: len(v) for k, v in bias.items()} == {"train": 943, "validation": 471, "test": 944}
    hint = datasets.load_dataset(str(out), "genhinteval", cache_dir=str(tmp_path / "c"))
    assert {k: len(v) for k, v in hint.items()} == {"validation": 786, "test": 786}
    capsys.readouterr()
    assert export.main([str(out)]) == 2 and "--overwrite" in capsys.readouterr().err


def test_export_dataset_has_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        export.main(["--help"])
    assert exit_.value.code == 0 and "usage: lftf-export-dataset" in capsys.readouterr().out
