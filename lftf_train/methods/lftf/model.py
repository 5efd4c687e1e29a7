"""get_lftf_model: a model wrapped so that only the chosen blocks train, as a PEFT model
that saves small (PEFT's ``get_peft_model`` for LFTF).

``method='full'``: the chosen blocks (or their attn/mlp parts) become PEFT
``modules_to_save`` (``adapters.whole_modules``). ``method='lora'``: LoRA on the chosen
blocks' projections only.
"""

from __future__ import annotations

from peft import LoraConfig, PeftModel, get_peft_model

from lftf_train.adapters import whole_modules
from lftf_train.blocks import (
    check_block_parts,
    decoder_layers,
    lora_target_modules,
    trained_module_names,
)
from lftf_train.methods.lftf.config import LFTFConfig


def peft_config(config: LFTFConfig, layers_name: str, blocks: list[int]) -> LoraConfig:
    if config.method == "full":
        return whole_modules(trained_module_names(layers_name, blocks, config.modules))
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=lora_target_modules(config.modules),
        layers_to_transform=blocks,
        layers_pattern=layers_name.rsplit(".", 1)[-1],
    )


def wrap_for_training(model, config: LFTFConfig, blocks: list[int]) -> PeftModel:
    """A PeftModel whose only trainable parameters belong to ``blocks``."""
    layers_name, _, _, layers = decoder_layers(model)
    check_block_parts(layers[blocks[0]], config.modules, config.method)
    peft_model = get_peft_model(model, peft_config(config, layers_name, blocks))
    prefix = f"{layers_name}."
    outside = [
        n
        for n, p in peft_model.named_parameters()
        if p.requires_grad and not any(f"{prefix}{b}." in n for b in blocks)
    ]
    if outside:
        raise RuntimeError(f"parameters outside blocks {blocks} would train: {outside[:3]}")
    return peft_model
