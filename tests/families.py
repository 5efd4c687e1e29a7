"""Tiny random models of every decoder-only family lftf supports, with the word-level test
tokenizer (so " he" and " she" are single tokens), saved once per session."""

from __future__ import annotations

import torch
import transformers as T

SMALL = {"hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 4}
LLAMA_LIKE = {**SMALL, "intermediate_size": 64, "num_key_value_heads": 2}
HEAD_DIM = {**LLAMA_LIKE, "head_dim": 8}
GPT = {"n_embd": 32, "n_layer": 4, "n_head": 4, "n_positions": 256}
MOE = {"num_experts_per_tok": 2}

# family -> (config class, its arguments); what the issue names, MoE last
FAMILIES = {
    "llama": (T.LlamaConfig, LLAMA_LIKE),
    "mistral": (T.MistralConfig, LLAMA_LIKE),
    "qwen2": (T.Qwen2Config, LLAMA_LIKE),
    "qwen3": (T.Qwen3Config, HEAD_DIM),
    "olmo2": (T.Olmo2Config, LLAMA_LIKE),
    "gemma2": (T.Gemma2Config, HEAD_DIM),
    "gemma3_text": (T.Gemma3TextConfig, HEAD_DIM),
    "phi": (T.PhiConfig, {**SMALL, "intermediate_size": 64}),
    "phi3": (T.Phi3Config, LLAMA_LIKE),
    "gpt2": (T.GPT2Config, GPT),
    "gptj": (T.GPTJConfig, {**GPT, "rotary_dim": 4}),
    "gpt_neox": (T.GPTNeoXConfig, {**SMALL, "intermediate_size": 64}),
    "opt": (T.OPTConfig, {**SMALL, "ffn_dim": 64, "word_embed_proj_dim": 32}),
    "falcon": (T.FalconConfig, SMALL),
    "mixtral": (T.MixtralConfig, {**LLAMA_LIKE, **MOE, "num_local_experts": 4}),
    "qwen2_moe": (
        T.Qwen2MoeConfig,
        {
            **LLAMA_LIKE,
            **MOE,
            "num_experts": 4,
            "moe_intermediate_size": 16,
            "shared_expert_intermediate_size": 32,
        },
    ),
}
MOE_FAMILIES = ("mixtral", "qwen2_moe")
# transformers loads Qwen2's own tokenizer class from any folder, which rebuilds a BPE from
# the vocabulary and merges: these families get the byte-level BPE version of the words
BPE_FAMILIES = ("qwen2",)


def tiny_model(family: str, tokenizer, positions: int = 256):
    """A random model of ``family`` with ``positions`` positions (n_positions for GPT-2 and
    GPT-J, max_position_embeddings for the others)."""
    cls, kwargs = FAMILIES[family]
    if "n_positions" in kwargs:
        kwargs = {**kwargs, "n_positions": positions}
    ids = {k: tokenizer.eos_token_id for k in ("bos_token_id", "eos_token_id", "pad_token_id")}
    config = cls(vocab_size=len(tokenizer), max_position_embeddings=positions, **kwargs, **ids)
    torch.manual_seed(0)
    return T.AutoModelForCausalLM.from_config(config).eval()
