"""Shared fixtures: the embedded SmolLM2 model (converted once) and tiny random models."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def smollm2_path() -> str:
    from lftf_train.models import embedded_model_path

    return str(embedded_model_path())


@pytest.fixture(scope="session")
def smollm2(smollm2_path):
    """(model, tokenizer) of SmolLM2-135M-Instruct in float32, eval mode, shared read-only."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(smollm2_path).eval()
    return model, AutoTokenizer.from_pretrained(smollm2_path)


@pytest.fixture(scope="session")
def tiny_llama(smollm2_path, tmp_path_factory):
    """A 4-block random Llama with SmolLM2's tokenizer, saved to a folder: (path, model, tok)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(smollm2_path)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
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

    from lftf_tasks import DATA_DIR

    text = (DATA_DIR / "genbiaseval" / "test.jsonl").read_text()
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
