"""Whole modules as a PEFT adapter: the chosen modules become PEFT ``modules_to_save``
(trainable copies, saved alone as the adapter), which turn the unchanged base into the
adapted model in lm-eval's ``peft=``. PEFT has no "no LoRA targets" option, so we pass its
internal dummy target, which wraps nothing else (pinned and tested against peft 0.21.2).
LFTF trains such copies (``methods/lftf/model.py``); the editors save what they rewrote.
"""

from __future__ import annotations

from peft import LoraConfig, PeftModel, get_peft_model
from peft.utils.constants import DUMMY_TARGET_MODULES


def whole_modules(names: list[str]) -> LoraConfig:
    """A PEFT config whose adapter is just full copies of the named modules."""
    return LoraConfig(target_modules=DUMMY_TARGET_MODULES, modules_to_save=names)


def wrap_edited(model, names: list[str]) -> PeftModel:
    """An edited model as a PeftModel whose adapter holds the named (edited) modules whole:
    saved, it turns the unedited base into the edited model in lm-eval's ``peft=``."""
    return get_peft_model(model, whole_modules(names))
