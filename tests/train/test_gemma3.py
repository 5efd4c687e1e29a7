"""The second real model, Gemma-3-270M (four PyPI chunks of one GGUF file): another family
(SentencePiece with a BOS token, 18 blocks of four norms each, a 262k vocabulary) through
every step: lm-eval scores it as lftf does, locate, LFTF, DAMA and MEMIT run on it, and
each saved adapter loads in lm-eval with `peft=` as the model that was trained or edited.

Small settings throughout (one epoch, one DAMA block and 24 requests, two edits, 20
prompts of each task):
these prove the plumbing on a real model; the README's Gemma numbers come from the full
runs it names.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM

import lftf_train
from lftf_train import DAMAConfig, EditConfig, LFTFConfig, cli, data
from lftf_train.families import block_parts, family, num_blocks
from lftf_train.scoring import score_prompts, target_token_ids

from ..helpers import (
    in_memory_probabilities,
    lm_eval_cli,
    lm_eval_probabilities,
    max_probability_diff,
)

pytestmark = pytest.mark.gemma3
QUIET = {"log": lambda *_: None}
TASKS = "genbiaseval_word,genhinteval"


def _debiased(gemma3_path, gemma3, config, tmp_path_factory):
    """``config``'s method applied to a fresh copy of Gemma, saved: (result, folder)."""
    model = AutoModelForCausalLM.from_pretrained(gemma3_path).eval()
    result = lftf_train.debias(model, gemma3[1], config, **QUIET)
    folder = tmp_path_factory.mktemp(result.method) / "out"
    result.save_pretrained(folder)
    return result, folder


def _adapter_modules(folder) -> set[str]:
    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as f:
        return {k.removeprefix("base_model.model.").rsplit(".", 1)[0] for k in f.keys()}


def _loads_as_trained(result, folder, gemma3_path) -> None:
    """lm-eval's model class, given ``peft=folder``, gives the in-memory log P(he), log P(she)."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    tokenizer = result.tokenizer
    prompts = [r["prompt"] for r in data.bias_records("test")][:10]
    prompts += [r["prompt"] for r in data.hint_records("test")][:10]
    expected = score_prompts(result.model, tokenizer, prompts)
    lm = HFLM(
        pretrained=gemma3_path, peft=str(folder), dtype="float32", batch_size=20, device="cpu"
    )
    requests = [
        Instance("loglikelihood", {}, (p, f" {w}"), 0) for p in prompts for w in ("he", "she")
    ]
    loaded = torch.tensor([ll for ll, _ in lm.loglikelihood(requests)]).view(len(prompts), 2)
    assert (loaded - expected).abs().max() < 1e-4
    original = AutoModelForCausalLM.from_pretrained(gemma3_path).eval()
    assert (score_prompts(original, tokenizer, prompts) - expected).abs().max() > 1e-3


def test_gemma3_is_a_named_model_with_its_own_block_layout(gemma3):
    model, tok = gemma3
    assert (family(model), num_blocks(model)) == ("gemma3_text", 18)
    assert tok("The nurse").input_ids[0] == tok.bos_token_id  # SentencePiece, BOS first
    assert len({i for group in target_token_ids(tok) for i in group}) == 2  # " he", " she"
    parts = block_parts(model)
    assert parts.attn == ("self_attn", "input_layernorm", "post_attention_layernorm")
    assert parts.mlp == ("mlp", "pre_feedforward_layernorm", "post_feedforward_layernorm")
    assert (parts.mlp_out, parts.transposed, parts.final) == (
        "mlp.down_proj",
        False,
        ("model.norm",),
    )
    p_he, p_she = score_prompts(model, tok, ["The nurse smiled because"]).exp()[0].tolist()
    assert p_she > 1.5 * p_he  # really biased, like SmolLM2


def test_lm_eval_scores_gemma3_as_lftf_does(gemma3, gemma3_path, tmp_path):
    """`lm_eval` on our tasks prepends Gemma's BOS as lftf's scoring does: the same P(he),
    P(she) for every prompt."""
    model, tok = gemma3
    run = lm_eval_cli(f"pretrained={gemma3_path},dtype=float32", tmp_path, TASKS, limit=20)
    assert (
        max_probability_diff(lm_eval_probabilities(run), in_memory_probabilities(model, tok, 20))
        < 1e-4
    )
    assert run["results"]["results"]["genbiaseval_word"]["afgb,none"] > 0.1


def test_locate_ranks_gemma3_s_18_blocks(tmp_path):
    out = tmp_path / "locate"
    argv = ["locate", "--model", "gemma3-270m", "--locate-prompts", "16", "--output-dir", out]
    assert cli.main([str(a) for a in argv]) == 0
    report = json.loads((out / "bmi.json").read_text())
    hidden, block_io = report["scores"]["hidden_states"], report["scores"]["block_io"]
    assert sorted(report["ranking"]["hidden_states"]) == list(range(18))
    # the two sources agree below the top; transformers' last hidden state is after the
    # final norm, which the family map found (model.norm), so the top block differs
    assert max(abs(a - b) for a, b in zip(hidden[:17], block_io[:17])) < 1e-5
    assert abs(hidden[17] - block_io[17]) > 1e-3


def test_lftf_on_gemma3_lowers_dev_afgb_and_loads_with_peft(gemma3_path, gemma3, tmp_path_factory):
    config = LFTFConfig(model="gemma3-270m", blocks=[17], lr=1e-4, epochs=1)
    result, folder = _debiased(gemma3_path, gemma3, config, tmp_path_factory)
    history = result.record["result"]["history"]
    assert history[-1]["dev"]["afgb"] < 0.8 * history[0]["dev"]["afgb"]
    assert _adapter_modules(folder) >= {
        "model.layers.17.mlp.down_proj",
        "model.layers.17.input_layernorm",
    }
    _loads_as_trained(result, folder, gemma3_path)


def test_dama_on_gemma3_projects_its_down_projection_and_loads_with_peft(
    gemma3_path, gemma3, tmp_path_factory
):
    config = DAMAConfig(model="gemma3-270m", layers="15", ranks=8, requests=24, v_num_grad_steps=5)
    result, folder = _debiased(gemma3_path, gemma3, config, tmp_path_factory)
    assert _adapter_modules(folder) == {"model.layers.15.mlp.down_proj"}
    _loads_as_trained(result, folder, gemma3_path)


def test_memit_on_gemma3_makes_every_target_likelier_and_loads_with_peft(
    gemma3_path, gemma3, tmp_path_factory
):
    config = EditConfig(
        model="gemma3-270m",
        editor="memit",
        edits=2,
        cov_tokens=4000,  # C of the 2,048-dimensional keys must be invertible
        context_prefixes=False,
    )
    result, folder = _debiased(gemma3_path, gemma3, config, tmp_path_factory)
    edits = json.loads((folder / "edits.json").read_text())["edits"]
    assert len(edits) == 2 and all(e["p_target_after"] > e["p_target_before"] for e in edits), [
        (e["p_target_before"], e["p_target_after"]) for e in edits
    ]
    blocks = result.record["result"]["blocks"]
    assert result.record["result"]["edited_modules"] == [
        f"model.layers.{b}.mlp.down_proj" for b in blocks
    ]
    _loads_as_trained(result, folder, gemma3_path)
