"""Save a trained PeftModel so that lm-eval loads it with one flag.

lm_eval --model hf --model_args pretrained=BASE,peft=OUT ...        # the adapter
lm_eval --model hf --model_args pretrained=OUT/merged ...           # with --merged
"""

from __future__ import annotations

from pathlib import Path

from lftf_tasks.outputs import write_json
from lftf_train.config import RunConfig


def save_adapter(
    peft_model,
    tokenizer,
    out_dir: Path,
    config: RunConfig,
    run_info: dict,
    files: tuple[str, str] = ("lftf_config.json", "lftf_run.json"),
) -> None:
    """Adapter weights (only what changed), tokenizer, and the config and run record under
    the method's file names."""
    peft_model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    config.save(Path(out_dir) / files[0])
    write_json(Path(out_dir) / files[1], run_info)


def save_merged(peft_model, tokenizer, out_dir: Path) -> None:
    """A full standalone model: the base with the trained weights folded in.

    Call after save_adapter: merging consumes the PEFT wrapper.
    """
    merged = peft_model.merge_and_unload()
    merged.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
