"""Every method on every model family: the family map read off tiny random models of each
decoder-only family transformers has, every command run on each, and what lm-eval loads
equal to what was trained."""

from __future__ import annotations

import json

import pytest
import torch
from peft.utils.constants import (
    TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as PEFT_FEEDFORWARD,
)
from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_LORA
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from lftf_train import LFTFConfig, cli, debias
from lftf_train.families import block_parts
from lftf_train.scoring import score_prompts

from ..families import BPE_FAMILIES, FAMILIES, MOE_FAMILIES, tiny_model
from ..helpers import bpe_word_tokenizer, word_tokenizer

QUIET = {"log": lambda *_: None}
PROMPTS = ["The nurse smiled because", "The pilot went to bed because"]
DENSE = [f for f in FAMILIES if f not in MOE_FAMILIES]
FAST_CORPUS = ["--cov-tokens", "400"]
# every command, with fast flags; (name, argv)
COMMANDS = [
    ("locate", ["locate", "--locate-prompts", "4"]),
    ("finetune", ["finetune", "--blocks", "2", "--epochs", "1", "--lr", "1e-3"]),
    ("lora", ["finetune", "--blocks", "2", "--epochs", "1", "--method", "lora", "--lora-r", "2"]),
    ("mlp", ["finetune", "--blocks", "2", "--epochs", "1", "--modules", "mlp"]),
    ("dama", ["dama", "--layers", "2-3", "--ranks", "2", "--v-num-grad-steps", "3"]),
    ("rome", ["edit", "--editor", "rome", "--layers", "1", "--edits", "1", "--cov-tokens", "400"]),
    (
        "memit",
        ["edit", "--editor", "memit", "--layers", "1-2", "--edits", "1", "--cov-tokens", "400"],
    ),
    (
        "mend",
        ["edit", "--editor", "mend", "--edits", "1", "--cov-tokens", "400", "--mend-steps", "2"]
        + ["--mend-val-requests", "2"],
    ),
]
EDITING = ("dama", "rome", "memit", "mend")


@pytest.fixture(scope="module")
def tokenizer():
    return word_tokenizer()


@pytest.fixture(scope="module")
def tokenizer_of(tokenizer):
    bpe = bpe_word_tokenizer()
    return lambda family: bpe if family in BPE_FAMILIES else tokenizer


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tokenizer_of):
    """family -> folder of its tiny random model (saved once per module)."""
    folders = {}

    def get(family):
        if family not in folders:
            folders[family] = tmp_path_factory.mktemp(family)
            tiny_model(family, tokenizer_of(family)).save_pretrained(folders[family])
            tokenizer_of(family).save_pretrained(folders[family])
        return str(folders[family])

    return get


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:  # the editors' sampled corpus, per family
        env.setenv("LFTF_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.mark.parametrize("family", FAMILIES)
def test_the_family_map_agrees_with_peft_s_own_per_family_names(family, tokenizer):
    parts = block_parts(tiny_model(family, tokenizer))
    assert parts.family == family
    ours = [*parts.lora["attn"], *parts.lora["mlp"]]
    for peft_name in PEFT_LORA.get(family) or []:  # PEFT's default LoRA targets are ours too
        assert any(n == peft_name or n.endswith("." + peft_name) for n in ours), peft_name
    if PEFT_FEEDFORWARD.get(family) and parts.mlp_out:  # the MLP's output projection
        (feedforward,) = PEFT_FEEDFORWARD[family]
        assert parts.mlp_out == feedforward or parts.mlp_out.endswith("." + feedforward)
    assert parts.moe == (family in MOE_FAMILIES)
    assert (parts.mlp_out is None) == parts.moe


def test_norms_belong_to_the_part_they_normalise(tokenizer):
    gemma = block_parts(tiny_model("gemma3_text", tokenizer))
    # Gemma's post_attention_layernorm normalises attention's output: "w/o ATT" must not train it
    assert set(gemma.attn) == {"self_attn", "input_layernorm", "post_attention_layernorm"}
    assert set(gemma.mlp) == {"mlp", "pre_feedforward_layernorm", "post_feedforward_layernorm"}
    llama = block_parts(tiny_model("llama", tokenizer))
    assert set(llama.mlp) == {"mlp", "post_attention_layernorm"}
    for family, norm in [
        ("gptj", "ln_1"),
        ("phi", "input_layernorm"),
        ("falcon", "input_layernorm"),
    ]:
        parts = block_parts(tiny_model(family, tokenizer))
        assert parts.shared == (norm,) and parts.parallel  # read by attention and MLP alike
    gpt2, opt = (block_parts(tiny_model(f, tokenizer)) for f in ("gpt2", "opt"))
    assert (gpt2.layers, gpt2.mlp_out, gpt2.transposed) == ("transformer.h", "mlp.c_proj", True)
    assert (opt.layers, opt.mlp, opt.mlp_out) == (
        "model.decoder.layers",
        ("fc1", "fc2", "final_layer_norm"),
        "fc2",
    )
    assert block_parts(tiny_model("phi3", tokenizer)).lora["attn"] == (
        "self_attn.o_proj",
        "self_attn.qkv_proj",
    )


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_every_command_runs_on_every_family(family, saved, tmp_path):
    path = saved(family)
    for name, argv in COMMANDS:
        out = tmp_path / name
        code = cli.main([*argv, "--model", path, "--output-dir", str(out)])
        if family in MOE_FAMILIES and name in EDITING:  # refused, with nothing written
            assert code == 2 and not out.exists(), name
            continue
        assert code == 0, f"{family}: {name}"
        assert (out / "lftf_run.json").exists() or (out / "bmi.json").exists(), name


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", ["full", "lora"])
def test_lm_eval_loads_the_saved_adapter_with_the_in_memory_log_probs(
    family, method, saved, tokenizer_of, tmp_path
):
    from lm_eval.models.huggingface import HFLM

    path, tokenizer = saved(family), tokenizer_of(family)
    config = LFTFConfig(model=path, blocks="2", epochs=1, lr=1e-2, method=method, lora_r=2)
    fresh = AutoModelForCausalLM.from_pretrained(path).eval()
    result = debias(fresh, tokenizer, config, **QUIET)
    result.save_pretrained(tmp_path / "adapter")
    expected = score_prompts(result.model, tokenizer, PROMPTS)  # (prompts, groups) log P
    assert (expected - score_prompts(_fresh(path), tokenizer, PROMPTS)).abs().max() > 1e-5
    lm = HFLM(pretrained=path, peft=str(tmp_path / "adapter"), batch_size=2, device="cpu")
    requests = [_request(p, f" {w}") for p in PROMPTS for w in ("he", "she")]
    loaded = torch.tensor([ll for ll, _ in lm.loglikelihood(requests)]).view(len(PROMPTS), 2)
    assert torch.allclose(loaded, expected.double().float(), atol=1e-4), (loaded, expected)


@pytest.mark.slow
@pytest.mark.parametrize("family", DENSE)
def test_rome_rewrites_the_family_s_mlp_output_projection(family, saved, tmp_path):
    path = saved(family)
    argv = ["edit", "--editor", "rome", "--layers", "1", "--edits", "1", "--cov-tokens", "400"]
    out = tmp_path / "out"
    assert cli.main([*argv, "--model", path, "--output-dir", str(out)]) == 0
    original = _fresh(path)
    parts = block_parts(original)
    saved_weights = load_file(out / "adapter_model.safetensors")
    target = f"{parts.layers}.1.{parts.mlp_out}"
    assert {k.removeprefix("base_model.model.").rsplit(".", 1)[0] for k in saved_weights} == {
        target
    }  # the adapter is the family's MLP output projection, nothing else
    (key,) = [k for k in saved_weights if k.endswith(".weight")]
    delta = (saved_weights[key] - original.get_submodule(target).weight).double()
    delta = delta.T if parts.transposed else delta  # (out, in), as ROME computes it
    assert delta.shape[0] == original.config.hidden_size
    assert torch.linalg.matrix_rank(delta, rtol=1e-6) == 1
    (edit,) = json.loads((out / "edits.json").read_text())["edits"]
    # it reaches the prompt (on random weights the value step moves P(target) little, either way)
    assert edit["p_target_after"] != edit["p_target_before"]


def _fresh(path):
    return AutoModelForCausalLM.from_pretrained(path).eval()


def _request(context: str, continuation: str):
    from lm_eval.api.instance import Instance

    return Instance("loglikelihood", {}, (context, continuation), 0)
