"""LFTF on the embedded SmolLM2-135M-Instruct: outputs load in lm-eval, and it works."""

import glob
import json
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from lftf_tasks import include_path
from lftf_train import data
from lftf_train.adapters import wrap_for_training
from lftf_train.config import LFTFConfig
from lftf_train.export import save_adapter, save_merged
from lftf_train.pipeline import locate_blocks
from lftf_train.scoring import score_prompts
from lftf_train.train import finetune

pytestmark = pytest.mark.smollm2
BIN = Path(sys.executable).parent


def lm_eval_samples(model_args, out, tasks="genbiaseval_word,genhinteval", limit=40):
    cmd = [
        str(BIN / "lm_eval"),
        "--model",
        "hf",
        "--model_args",
        model_args,
        "--tasks",
        tasks,
        "--include_path",
        include_path(),
        "--limit",
        str(limit),
        "--batch_size",
        "32",
        "--log_samples",
        "--output_path",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {}
    for path in glob.glob(f"{out}/*/samples_*.jsonl"):
        with open(path) as f:
            for line in f:
                s = json.loads(line)
                rows[s["doc"]["prompt"]] = (s["p_he"], s["p_she"])
    return rows


@pytest.fixture(scope="module")
def trained(smollm2_path, smollm2, tmp_path_factory):
    _, tok = smollm2
    config = LFTFConfig(blocks="29", lr=1e-4, epochs=1, seed=11)
    model = wrap_for_training(AutoModelForCausalLM.from_pretrained(smollm2_path), config, [29])
    finetune(model, tok, config, [29], show_progress=False, log=lambda *_: None)
    out = tmp_path_factory.mktemp("lftf") / "adapter"
    save_adapter(model, tok, out, config, {"test": True})
    prompts = [r["prompt"] for r in data.bias_records("test") if r["scale"] == "word"][:40]
    prompts += [r["prompt"] for r in data.hint_records("test")][:40]
    in_memory = dict(zip(prompts, score_prompts(model, tok, prompts).exp().tolist()))
    save_merged(model, tok, out / "merged")
    return out, in_memory


def _max_diff(rows, in_memory):
    assert set(rows) == set(in_memory)
    return max(max(abs(a - c), abs(b - d)) for p, (a, b) in rows.items() for c, d in [in_memory[p]])


def test_lm_eval_peft_flag_loads_exactly_the_trained_model(trained, smollm2_path, tmp_path):
    out, in_memory = trained
    rows = lm_eval_samples(f"pretrained={smollm2_path},peft={out}", tmp_path)
    assert _max_diff(rows, in_memory) < 1e-4
    base = lm_eval_samples(f"pretrained={smollm2_path}", tmp_path / "base")
    assert _max_diff(base, in_memory) > 1e-2  # the adapter really changes the model
    full_size = (Path(smollm2_path) / "model.safetensors").stat().st_size
    assert (out / "adapter_model.safetensors").stat().st_size < full_size / 10


def test_merged_model_loads_with_pretrained_alone(trained, tmp_path):
    out, in_memory = trained
    rows = lm_eval_samples(f"pretrained={out / 'merged'}", tmp_path)
    assert _max_diff(rows, in_memory) < 1e-4


def test_same_seed_same_bmi_ranking_and_scores(smollm2):
    model, tok = smollm2
    config = LFTFConfig(seed=3)
    a = locate_blocks(model, tok, config, show_progress=False)
    b = locate_blocks(model, tok, config, show_progress=False)
    assert a["ranking"] == b["ranking"]
    for source in a["scores"]:
        assert max(abs(x - y) for x, y in zip(a["scores"][source], b["scores"][source])) < 1e-6
    # the README's claim: the two sources disagree on SmolLM2
    assert a["top_block"] == {"hidden_states": 29, "block_io": 0}


def test_lftf_run_halves_test_afgb_and_keeps_ub(tmp_path):
    """The README's recipe (chosen by `lftf-train sweep` on the dev splits), end to end."""
    out = tmp_path / "run"
    proc = subprocess.run(
        [str(BIN / "lftf-train"), "run", "--lr", "1e-4", "--epochs", "7", "--output-dir", str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((out / "lftf_run.json").read_text())
    assert run["blocks"] == [29]
    before, after = run["evaluation"]["rows"]["original"], run["evaluation"]["rows"]["LFTF"]
    assert after["afgb_avg"] <= 0.5 * before["afgb_avg"]
    assert after["ub"] >= 0.8 * before["ub"]
    assert "| LFTF |" in (out / "summary.md").read_text()


def _finetune_smollm2(smollm2_path, smollm2, **settings):
    _, tok = smollm2
    config = LFTFConfig(seed=1, **settings)
    blocks = list(range(30)) if config.blocks == "all" else config.blocks
    model = wrap_for_training(AutoModelForCausalLM.from_pretrained(smollm2_path), config, blocks)
    return finetune(model, tok, config, blocks, show_progress=False, log=lambda *_: None).history


def test_fpft_drives_ub_toward_zero(smollm2_path, smollm2):
    """The paper's finding: training every block with the same loss forgets the hints."""
    history = _finetune_smollm2(smollm2_path, smollm2, blocks="all", lr=1e-4, epochs=1)
    before, after = history[0], history[-1]
    assert before["dev_ub"] > 0.3
    assert abs(after["dev_ub"]) < 0.1 * before["dev_ub"]
    assert after["dev"]["afgb"] < before["dev"]["afgb"]


@pytest.mark.parametrize("term, sign", [("he", 1), ("she", -1)])
def test_one_loss_term_drives_afgb_toward_one(smollm2_path, smollm2, term, sign):
    """The paper's w/o-he and w/o-she ablations: one pronoun takes all the mass."""
    history = _finetune_smollm2(smollm2_path, smollm2, blocks="29", terms=term, lr=1e-4, epochs=1)
    after = history[-1]["dev"]
    assert after["afgb"] > 0.95
    assert sign * after["gap"] > 0.95
