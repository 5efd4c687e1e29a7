"""get_lftf_model: a model wrapped so that only the chosen blocks train, as a PEFT model
that saves small (PEFT's ``get_peft_model`` for LFTF).

``method='full'``: the chosen blocks (or their attn/mlp parts) become PEFT
``modules_to_save`` (``adapters.whole_modules``). ``method='lora'``: LoRA on the chosen
blocks' projections only.
"""

from __future__ import annotations

from peft import LoraConfig, PeftModel, get_peft_model
from transformers.pytorch_utils import Conv1D

from lftf_train.adapters import whole_modules
from lftf_train.blocks import decoder_layers, lora_targets, trained_module_names
from lftf_train.methods.lftf.config import LFTFConfig


def peft_config(config: LFTFConfig, model, blocks: list[int]) -> LoraConfig:
    if config.method == "full":
        return whole_modules(trained_module_names(model, blocks, config.modules))
    targets = lora_targets(model, blocks, config.modules)
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        **targets,
        # GPT-2's Conv1D stores its weight as (in, out)
        fan_in_fan_out=any(
            isinstance(model.get_submodule(t), Conv1D) for t in targets["target_modules"]
        ),
    )


def wrap_for_training(model, config: LFTFConfig, blocks: list[int]) -> PeftModel:
    """A PeftModel whose only trainable parameters belong to ``blocks``."""
    layers_name = decoder_layers(model)[0]
    peft_model = get_peft_model(model, peft_config(config, model, blocks))
    prefix = f"{layers_name}."
    outside = [
        n
        for n, p in peft_model.named_parameters()
        if p.requires_grad and not any(f"{prefix}{b}." in n for b in blocks)
    ]
    if outside:
        raise RuntimeError(f"parameters outside blocks {blocks} would train: {outside[:3]}")
    return peft_model
