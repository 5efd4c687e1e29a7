"""Shared fixtures: tiny random models with tokenizers of their own (no SmolLM2 needed), and
the embedded SmolLM2 model with its expensive products built once per session: the prefix
cache at block 29, the README's LFTF recipe trained once, lm-eval runs of both."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .helpers import lm_eval_cli, readme_python_example, word_tokenizer

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
_SESSION_CACHE = os.environ.get("LFTF_CACHE")  # modules may point LFTF_CACHE elsewhere


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    """A 4-block random Llama with a word-level tokenizer, saved to a folder: (path, model,
    tokenizer)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = word_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = LlamaForCausalLM(config).eval()
    path = tmp_path_factory.mktemp("tiny_llama")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path), model, tok


@pytest.fixture(scope="session")
def char_model(tmp_path_factory):
    """A 2-block random Llama with a character-level tokenizer, so " he" is 3 tokens and
    " she" 4: (path, model, tokenizer)."""
    import torch
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from lftf_tasks import data_dir

    text = (data_dir() / "genbiaseval" / "test.jsonl").read_text()
    vocab = {"<unk>": 0, "<eos>": 1}
    for ch in sorted(set(text) | set(" hes")):
        vocab.setdefault(ch, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<eos>", unk_token="<unk>", pad_token="<eos>"
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        eos_token_id=1,
        bos_token_id=1,
    )
    model = LlamaForCausalLM(config).eval()
    path = tmp_path_factory.mktemp("char_model")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path), model, tok


# --- the embedded SmolLM2 model (tests marked smollm2) ---------------------------------


@pytest.fixture(scope="session")
def smollm2_path() -> str:
    """Converted into the session's own cache, whichever module asks first."""
    from lftf_train.models import embedded_model_path

    with pytest.MonkeyPatch.context() as env:
        if _SESSION_CACHE is None:
            env.delenv("LFTF_CACHE", raising=False)
        else:
            env.setenv("LFTF_CACHE", _SESSION_CACHE)
        return str(embedded_model_path())


@pytest.fixture(scope="session")
def smollm2(smollm2_path):
    """(model, tokenizer) of SmolLM2-135M-Instruct in float32, eval mode, shared read-only."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(smollm2_path).eval()
    return model, AutoTokenizer.from_pretrained(smollm2_path)


@pytest.fixture(scope="session")
def smollm2_api_run(tmp_path_factory):
    """The README's recipe (block 29, lr 1e-4, 7 epochs, seed 42) trained once through the
    README's Python API example, executed as written (in a scratch folder, where it saves
    its adapter), plus a merged model: (DebiasResult, adapter folder)."""
    from lftf_train.export import save_merged

    namespace = {}
    with pytest.MonkeyPatch.context() as env:
        env.chdir(tmp_path_factory.mktemp("readme_api"))
        exec(readme_python_example("lftf_train.debias"), namespace)
        out = Path("outputs/api/lftf-smollm2").resolve()  # where the example saves
    result = namespace["result"]
    save_merged(result.model, result.tokenizer, out / "merged")
    return result, out


@pytest.fixture(scope="session")
def smollm2_cache(smollm2_api_run):
    """The prefix cache at block 29 (SmolLM2's top BMI block) for the gender axis: the one
    the README's run built from the same weights (the blocks below 29 never train)."""
    cache = smollm2_api_run[0].context.prefix_cache
    assert (cache.block, cache.axis) == (29, "gender")
    return cache


@pytest.fixture(scope="session")
def smollm2_lftf(smollm2_api_run):
    """The README's LFTF run: (model, the run record's result, adapter folder)."""
    result, out = smollm2_api_run
    return result.model, result.record["result"], out


@pytest.fixture(scope="session")
def smollm2_lm_eval(smollm2_path):
    """A full lm-eval run of genbiaseval and genhinteval on the original SmolLM2: the README's
    Python example, executed as written (lm-eval's API, on the CPU)."""
    namespace = {}
    exec(readme_python_example(), namespace)
    out = namespace["out"]
    return {"results": out, "samples": out["samples"]}


@pytest.fixture(scope="session")
def smollm2_lftf_lm_eval(smollm2_path, smollm2_lftf, tmp_path_factory):
    """The same lm_eval run on the trained adapter, loaded with `peft=` as a user would."""
    out = tmp_path_factory.mktemp("lm_eval_lftf")
    model_args = f"pretrained={smollm2_path},dtype=float32,peft={smollm2_lftf[2]}"
    return lm_eval_cli(model_args, out, "genbiaseval,genhinteval")


# --- the second real model, Gemma-3-270M (tests marked gemma3) -------------------------


@pytest.fixture(scope="session")
def gemma3_path() -> str:
    from lftf_train.models import resolve_model

    return resolve_model("gemma3-270m")


@pytest.fixture(scope="session")
def gemma3(gemma3_path):
    """(model, tokenizer) of Gemma-3-270M in float32, eval mode, shared read-only."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(gemma3_path).eval()
    return model, AutoTokenizer.from_pretrained(gemma3_path)
