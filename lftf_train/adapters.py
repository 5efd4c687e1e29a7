"""Wrap a model so that only the chosen blocks train, as a PEFT model that saves small.

``method='full'``: the chosen blocks (or their attn/mlp parts) become PEFT
``modules_to_save``: trainable copies, saved alone as the adapter. PEFT has no "no LoRA
targets" option, so we pass its internal dummy target, which wraps nothing else (pinned and
tested against peft 0.21.2). ``method='lora'``: LoRA on the chosen blocks' projections only.
"""

from __future__ import annotations

from peft import LoraConfig, PeftModel, get_peft_model
from peft.utils.constants import DUMMY_TARGET_MODULES

from lftf_train.blocks import (
    check_block_parts,
    decoder_layers,
    lora_target_modules,
    trained_module_names,
)
from lftf_train.config import LFTFConfig


def whole_modules(names: list[str]) -> LoraConfig:
    """A PEFT config whose adapter is just full copies of the named modules."""
    return LoraConfig(target_modules=DUMMY_TARGET_MODULES, modules_to_save=names)


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


def wrap_edited(model, names: list[str]) -> PeftModel:
    """An edited model as a PeftModel whose adapter holds the named (edited) modules whole:
    saved, it turns the unedited base into the edited model in lm-eval's ``peft=``."""
    return get_peft_model(model, whole_modules(names))
