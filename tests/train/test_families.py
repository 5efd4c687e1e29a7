"""Every method on every model family: the family map read off tiny random models of each
decoder-only family transformers has, every command run on each, and what lm-eval loads
equal to what was trained."""

from __future__ import annotations

import json
import math

import pytest
import torch
from peft.utils.constants import (
    TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as PEFT_FEEDFORWARD,
)
from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_LORA
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from lftf_train import LFTFConfig, cli, debias
from lftf_train.capability import perplexity
from lftf_train.editing import context_templates, corpus, second_moments
from lftf_train.families import block_parts, max_positions
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


# --- sampled text fits the model: GPT-2, GPT-J and OPT index a table of positions, and
# asking for one past its end (in generate or a forward) is an IndexError

SHORT = ("gpt2", "gptj", "opt")


@pytest.fixture(scope="module")
def short(tokenizer):
    """family -> a tiny random model of it with 128 positions (built once per module)."""
    models = {}

    def get(family):
        if family not in models:
            models[family] = tiny_model(family, tokenizer, positions=128)
            assert max_positions(models[family]) == 128
        return models[family]

    return get


@pytest.mark.parametrize("family", SHORT)
def test_the_sampled_corpus_fits_the_model_s_positions(family, short, tokenizer):
    """The text of ROME's and MEMIT's second moment, DAMA's whitening and MEND's locality
    loss: 500 tokens in 4 rows ask for 133 new tokens a row after the first word, more than
    128 positions hold."""
    texts = corpus(short(family), tokenizer, f"short-{family}", seed=0, n_tokens=500, rows=4)
    assert sum(len(tokenizer(t).input_ids) for t in texts) >= 500


@pytest.mark.parametrize("family", SHORT)
def test_second_moments_read_windows_that_fit_the_model_s_positions(family, short, tokenizer):
    model = short(family)
    text = " ".join(["The nurse smiled because she was tired."] * 50)  # 400 tokens
    moments = second_moments(model, tokenizer, [text], [1, 2])  # windows of 256 asked for
    cut = second_moments(model, tokenizer, [text], [1, 2], max_tokens=128)
    assert all(torch.equal(moments[b], cut[b]) for b in (1, 2))


@pytest.mark.parametrize("family", SHORT)
def test_context_prefixes_longer_than_the_model_s_positions_are_cut_to_fit(
    family, short, tokenizer
):
    templates = context_templates(short(family), tokenizer, ((200, 5),), seed=0)
    assert len(templates) == 6 and templates[0] == "{}"
    assert all(t.endswith(". {}") for t in templates[1:])


@pytest.mark.parametrize("family", SHORT)
def test_perplexity_scores_windows_that_fit_the_model_s_positions(family, short, tokenizer):
    text = " ".join(["The nurse smiled because she was tired."] * 50)
    assert math.isfinite(perplexity(short(family), tokenizer, text, context="I said:"))


@pytest.mark.slow
def test_mend_edits_a_gpt2_with_128_positions_from_the_command_line(tokenizer, tmp_path):
    """The command that died inside generate: the corpus of 20000 tokens at its default."""
    path = tmp_path / "gpt2"
    tiny_model("gpt2", tokenizer, positions=128).save_pretrained(path)
    tokenizer.save_pretrained(path)
    argv = ["edit", "--editor", "mend", "--edits", "2", "--mend-steps", "2"]
    argv += ["--mend-val-requests", "2", "--model", str(path), "--output-dir", tmp_path / "o"]
    assert cli.main(argv) == 0
    assert (tmp_path / "o" / "edits.json").exists()
