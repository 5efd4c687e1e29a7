"""lftf-train as a user runs it (subprocesses on a tiny random model)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

BIN = Path(sys.executable).parent
TINY_RUN = ["--blocks", "3", "--epochs", "1", "--lr", "1e-3", "--seed", "5"]


def lftf_train(*args, timeout=600, env=None):
    return subprocess.run(
        [str(BIN / "lftf-train"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture(scope="module")
def trained(tiny_llama, tmp_path_factory):
    path, _, _ = tiny_llama
    out = tmp_path_factory.mktemp("ft") / "out"
    proc = lftf_train(
        "finetune",
        "--model",
        path,
        *TINY_RUN,
        "--output-dir",
        out,
        "--merged",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return path, out, proc


def test_help_explains_every_command():
    top = subprocess.run([str(BIN / "lftf-train"), "--help"], capture_output=True, text=True)
    assert top.returncode == 0 and "accelerate launch" in top.stdout
    for command in ("locate", "finetune", "run", "sweep"):
        proc = subprocess.run(
            [str(BIN / "lftf-train"), command, "--help"], capture_output=True, text=True
        )
        assert proc.returncode == 0
        for flag in ("--model", "--output-dir", "--seed", "--config", "--overwrite"):
            assert flag in proc.stdout, (command, flag)


def test_finetune_writes_a_small_adapter_with_its_config_and_provenance(trained):
    path, out, _ = trained
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
    assert run["seed"] == 5 and run["blocks"] == [3] and run["resolved_model"] == path
    assert run["versions"]["peft"] and run["date"] and run["command"].startswith("lftf-train")
    assert json.loads((out / "lftf_config.json").read_text())["lr"] == 1e-3
    assert (out / "merged" / "config.json").exists()


def test_saved_config_reproduces_the_run(trained, tmp_path):
    path, out, _ = trained
    again = tmp_path / "again"
    proc = lftf_train("finetune", "--config", out / "lftf_config.json", "--output-dir", again)
    assert proc.returncode == 0, proc.stderr[-2000:]
    first = json.loads((out / "lftf_run.json").read_text())["step_losses"]
    assert json.loads((again / "lftf_run.json").read_text())["step_losses"] == first


def test_existing_output_is_refused_unless_overwrite(trained):
    path, out, _ = trained
    before = (out / "lftf_run.json").read_text()
    proc = lftf_train("finetune", "--model", path, "--blocks", "3", "--output-dir", out)
    assert proc.returncode == 2 and "--overwrite" in proc.stderr and "Traceback" not in proc.stderr
    assert (out / "lftf_run.json").read_text() == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "/no/such/model"], "no such folder"),
        (["--blocks", "4"], "out of range: this model has 4 blocks, 0..3"),
        (["--modules", "ffn"], "LFTFConfig.modules"),
        (["--lr", "-1"], "LFTFConfig.lr"),
    ],
)
def test_bad_input_is_a_clear_error(tiny_llama, tmp_path, args, message):
    path, _, _ = tiny_llama
    full = ["finetune", "--model", path, "--output-dir", tmp_path / "o", *args]
    if "--model" in args:
        full = ["finetune", "--output-dir", tmp_path / "o", *args]
    proc = lftf_train(*full)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_multi_token_pronouns_are_refused_with_an_explanation(char_model, tmp_path):
    path, _, _ = char_model
    proc = lftf_train("finetune", "--model", path, "--blocks", "1", "--output-dir", tmp_path / "o")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "splits ' he' into 3 tokens" in proc.stderr and "single-token" in proc.stderr


def test_interrupted_run_leaves_no_output(tiny_llama, tmp_path):
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
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:  # never leave a 500-epoch run behind
            proc.kill()
    assert proc.returncode == 130, rest[-2000:]
    assert "interrupted; no output was written" in rest
    assert list(tmp_path.iterdir()) == []


def test_two_cpu_processes_with_accelerate_match_one(trained, tmp_path):
    path, out, _ = trained
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
    assert ddp["processes"] == 2 and single["processes"] == 1
    assert ddp["step_losses"][0] == pytest.approx(single["step_losses"][0], abs=1e-5)
    assert ddp["step_losses"] == pytest.approx(single["step_losses"], rel=1e-3)
    a = load_file(tmp_path / "ddp" / "adapter_model.safetensors")
    b = load_file(out / "adapter_model.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-3


def test_locate_reports_every_locator_side_by_side(tiny_llama, tmp_path):
    path, model, tok = tiny_llama
    out = tmp_path / "loc"
    proc = lftf_train("locate", "--model", path, "--locate-prompts", 8, "--output-dir", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "bmi.json").read_text())
    assert set(report["ranking"]) == {"hidden_states", "block_io", "skip"}
    assert (out / "locators.png").stat().st_size > 0 and (out / "bmi.png").exists()
    from lftf_train import data, locate

    prompts = data.sample_prompts("train", 8, 42)
    assert report["scores"]["skip"] == pytest.approx(locate.skip_scores(model, tok, prompts))
    assert "skip" in proc.stdout and "(used for --blocks auto)" in proc.stdout


def test_skip_locator_picks_the_trained_block_on_another_axis(tiny_llama, tmp_path):
    path, _, _ = tiny_llama
    out = tmp_path / "skip"
    args = ["--axis", "religion", "--locator", "skip", "--locate-prompts", 8, "--epochs", 1]
    proc = lftf_train("finetune", "--model", path, *args, "--output-dir", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((out / "lftf_run.json").read_text())
    assert run["axis"] == "religion" and run["config"]["locator"] == "skip"
    assert run["blocks"] == [run["bmi"]["top_block"]["skip"]]
    assert "-log P(islam|p)" in run["loss"]
    assert run["history_keys"]["afgb"] == "dev range"  # the k-group score under its key
