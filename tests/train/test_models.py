"""Where models come from: a GGUF file is converted once into the lftf cache and found
again by its content, whatever its path."""

import json
import shutil

import pytest

from lftf_train import cli
from lftf_train.models import embedded_gguf, resolve_model

pytestmark = pytest.mark.smollm2


def test_a_gguf_file_is_converted_once_and_found_again_by_content(smollm2_path, tmp_path, capsys):
    assert resolve_model(str(embedded_gguf())) == smollm2_path  # the alias is that GGUF file
    renamed = tmp_path / "my-model.gguf"
    shutil.copyfile(embedded_gguf(), renamed)
    capsys.readouterr()
    assert resolve_model(str(renamed)) == smollm2_path
    assert "converting" not in capsys.readouterr().err  # the cached conversion was reused


def test_lftf_train_takes_a_gguf_path(smollm2_path, tmp_path, capsys):
    out = tmp_path / "loc"
    argv = ["locate", "--model", str(embedded_gguf()), "--locate-prompts", "4"]
    assert cli.main([*argv, "--output-dir", str(out)]) == 0
    report = json.loads((out / "bmi.json").read_text())
    assert report["resolved_model"] == smollm2_path and report["model"] == str(embedded_gguf())
    assert report["top_block"]["hidden_states"] == 29


def test_two_lftf_train_processes_converting_into_an_empty_cache_end_with_one_copy(tmp_path):
    """Both convert at once; one folder appears whole, the other run uses it."""
    import os
    import subprocess

    from .. import helpers

    env = {**os.environ, "LFTF_CACHE": str(tmp_path / "cache")}
    cmd = [str(helpers.BIN / "lftf-train"), "locate", "--model", "smollm2-135m"]
    cmd += ["--locate-prompts", "2"]
    procs = [
        subprocess.Popen(
            [*cmd, "--output-dir", str(tmp_path / f"loc{i}")],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-2000:]
    entries = [p for p in (tmp_path / "cache").iterdir() if p.name.startswith("SmolLM2")]
    hidden = [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]
    assert len(entries) == 1 and (entries[0] / "lftf_source.json").exists() and not hidden
    reports = [json.loads((tmp_path / f"loc{i}" / "bmi.json").read_text()) for i in range(2)]
    assert reports[0]["resolved_model"] == reports[1]["resolved_model"] == str(entries[0])
