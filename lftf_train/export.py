"""A PeftModel as a full model (``--merged``): lm-eval then needs only ``pretrained=``.

lm_eval --model hf --model_args pretrained=BASE,peft=OUT ...        # the adapter (api.py)
lm_eval --model hf --model_args pretrained=OUT/merged ...           # with --merged
"""

from __future__ import annotations

from pathlib import Path


def save_merged(peft_model, tokenizer, out_dir: Path) -> None:
    """A full standalone model: the base with the trained weights folded in.

    Call after the adapter is saved: merging consumes the PEFT wrapper.
    """
    merged = peft_model.merge_and_unload()
    merged.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
