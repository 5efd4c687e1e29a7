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
