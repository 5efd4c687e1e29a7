"""Which parameters LFTF trains: functions of block indices and the family's parts
(families.py, the one place that knows module names)."""

from __future__ import annotations

from torch import nn

from lftf_train.families import block_list, block_parts, num_blocks, text_config

PARTS = ("attn", "mlp")

__all__ = ["decoder_layers", "num_blocks", "text_config", "resolve_blocks"]


def decoder_layers(model: nn.Module) -> tuple[str, nn.Module, str, nn.ModuleList]:
    """(dotted name, parent module, attribute, ModuleList) of the model's decoder blocks."""
    name, layers = block_list(model)
    parent_name, _, attr = name.rpartition(".")
    return name, model.get_submodule(parent_name), attr, layers


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


def trained_module_names(model, blocks: list[int], modules: list[str]) -> list[str]:
    """Full dotted names of the modules to train (PEFT's modules_to_save).

    Names are complete ("model.layers.29"), never bare indices: PEFT matches by suffix, so
    "9" alone would also match blocks 19 and 29. A norm attention and MLP share (parallel
    blocks) trains only with the whole block.
    """
    parts = block_parts(model)
    if set(modules) == set(PARTS):
        return [f"{parts.layers}.{b}" for b in blocks]
    own = [name for m in modules for name in getattr(parts, m)]
    return [f"{parts.layers}.{b}.{name}" for b in blocks for name in own]


def lora_targets(model, blocks: list[int], modules: list[str]) -> dict[str, list[str]]:
    """PEFT LoRA's ``target_modules`` (every Linear/Conv1D of the chosen parts) and
    ``target_parameters`` (a mixture-of-experts MLP's 3-d expert weights), as full names."""
    parts = block_parts(model)
    full = lambda names: [f"{parts.layers}.{b}.{n}" for b in blocks for n in names]  # noqa: E731
    targets = full([name for m in modules for name in parts.lora[m]])
    experts = full(parts.expert_weights) if "mlp" in modules else []
    if not targets and not experts:
        raise ValueError(
            f"--method lora --modules {','.join(modules)}: family '{parts.family}' has no "
            "Linear or Conv1D layer in that part; use --method full"
        )
    return {"target_modules": targets, "target_parameters": experts}
