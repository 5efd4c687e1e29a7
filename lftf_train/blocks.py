"""Which parameters LFTF trains: pure functions of block indices and module names."""

from __future__ import annotations

from torch import nn

# Llama-style block parts; the input norm belongs to attention, the post-attention norm to
# the MLP, so 'attn' + 'mlp' together are the whole block.
BLOCK_PARTS = {
    "attn": ("self_attn", "input_layernorm"),
    "mlp": ("mlp", "post_attention_layernorm"),
}
LORA_TARGETS = {
    "attn": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "mlp": ("gate_proj", "up_proj", "down_proj"),
}


def text_config(model):
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def num_blocks(model) -> int:
    return text_config(model).num_hidden_layers


def decoder_layers(model: nn.Module) -> tuple[str, nn.Module, str, nn.ModuleList]:
    """(dotted name, parent module, attribute, ModuleList) of the model's decoder blocks."""
    n = num_blocks(model)
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n and name.endswith("layers"):
            parent_name, _, attr = name.rpartition(".")
            return name, model.get_submodule(parent_name), attr, module
    raise ValueError(
        f"could not find the {n} decoder blocks (an nn.ModuleList named '...layers') in "
        f"{type(model).__name__}; LFTF supports decoder-only transformers models"
    )


def resolve_blocks(blocks, n_blocks: int, ranking: list[int] | None, top_k: int = 1) -> list[int]:
    """'auto' -> the top_k of the BMI ranking; 'all' -> every block; indices are checked."""
    if blocks == "all":
        return list(range(n_blocks))
    if blocks == "auto":
        if ranking is None:
            raise ValueError("blocks='auto' needs a BMI ranking (run locate first)")
        if top_k > n_blocks:
            raise ValueError(f"num_blocks={top_k} but the model has only {n_blocks} blocks")
        return sorted(ranking[:top_k])
    bad = [b for b in blocks if not 0 <= b < n_blocks]
    if bad:
        raise ValueError(
            f"block(s) {bad} out of range: this model has {n_blocks} blocks, 0..{n_blocks - 1}"
        )
    return sorted(blocks)


def trained_module_names(layers_name: str, blocks: list[int], modules: list[str]) -> list[str]:
    """Full dotted names of the modules to train (PEFT's modules_to_save).

    Names are complete ("model.layers.29"), never bare indices: PEFT matches by suffix, so
    "9" alone would also match blocks 19 and 29.
    """
    if set(modules) == set(BLOCK_PARTS):
        return [f"{layers_name}.{b}" for b in blocks]
    return [f"{layers_name}.{b}.{part}" for b in blocks for m in modules for part in BLOCK_PARTS[m]]


def lora_target_modules(modules: list[str]) -> list[str]:
    return [name for m in modules for name in LORA_TARGETS[m]]


def check_block_parts(block: nn.Module, modules: list[str], method: str) -> None:
    """Fail early, naming what is missing, if a block lacks the parts --modules refers to."""
    children = {name for name, _ in block.named_modules()}
    if method == "full" and set(modules) != set(BLOCK_PARTS):
        needed = [p for m in modules for p in BLOCK_PARTS[m]]
    elif method == "lora":
        needed = lora_target_modules(modules)
    else:
        return
    missing = [p for p in needed if not any(c == p or c.endswith("." + p) for c in children)]
    if missing:
        raise ValueError(
            f"--modules {','.join(modules)} needs Llama-style block parts {missing} that "
            f"{type(block).__name__} does not have; train whole blocks with --modules attn,mlp"
        )
