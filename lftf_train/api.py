"""The Python API: what the CLI does, in memory, with no paths.

    model, tokenizer = lftf_train.load_model("smollm2-135m")
    ranking = lftf_train.locate(model, tokenizer)                  # BMI, top block first
    result = lftf_train.debias(model, tokenizer, LFTFConfig(blocks=ranking.top(1)))
    result.save_pretrained("out")      # the folder `lftf-train` writes; lm-eval: peft=out

``debias`` takes the config of any registered method (LFTFConfig, DAMAConfig, EditConfig,
PBConfig, or one of your own). For your own training loop or transformers' ``Trainer``:
``get_lftf_model`` (PEFT's ``get_peft_model`` for LFTF) and ``lftf_loss``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch
from peft import PeftModel

from lftf_tasks.outputs import atomic_output_dir, write_json
from lftf_train import models
from lftf_train.config import LocateConfig
from lftf_train.evaluate import lm_eval_model_args
from lftf_train.export import save_merged
from lftf_train.locating import locate_blocks, ranking_key
from lftf_train.methods.lftf.config import LFTFConfig
from lftf_train.methods.lftf.model import wrap_for_training
from lftf_train.methods.lftf.train import lftf_loss as _group_loss
from lftf_train.records import CONFIG_FILE, RECORD_FILE, run_record
from lftf_train.registry import Adapted, Context, method_for
from lftf_train.scoring import group_logprobs, target_token_ids


def load_model(name: str = "smollm2-135m", dtype: str = "auto", device=None):
    """(model, tokenizer) as every command loads them: a local folder, a hub id, a .gguf
    file, or a named model ('smollm2-135m', 'gemma3-270m')."""
    model, tokenizer, _ = models.load(name, dtype, device=device)
    return model, tokenizer


@dataclass
class Ranking:
    """Blocks ranked by a locator: ``order`` top first, ``scores`` per block, ``report``
    everything measured (both BMI sources, the skip locator if asked, seeds)."""

    order: list[int]
    scores: list[float]
    report: dict

    def top(self, n: int = 1) -> list[int]:
        return sorted(self.order[:n])


def locate(model, tokenizer, config: LocateConfig | None = None, *, seeds=None, **fields):
    """Rank the blocks of ``model`` by ``config``'s locator (default: BMI on hidden states,
    100 train prompts of the gender axis); keyword fields override the config's."""
    if config is None:
        config = LocateConfig(**fields)
    elif fields:
        config = dataclasses.replace(config, **fields)
    report = locate_blocks(model, tokenizer, config, seeds, with_skip=config.locator == "skip")
    key = ranking_key(config)
    return Ranking(order=report["ranking"][key], scores=report["scores"][key], report=report)


@dataclass
class DebiasResult:
    """A debiased model in memory: ``model`` (a PeftModel, or for a prompt-only method the
    model itself), its ``record`` (the run record every output carries) and what
    ``save_pretrained`` writes."""

    method: str
    config: object
    model: object
    tokenizer: object
    record: dict
    adapted: Adapted = field(repr=False)
    context: Context = field(repr=False, default_factory=Context)  # to share with later runs

    @property
    def system_instruction(self) -> str | None:
        return self.adapted.system_instruction

    def lm_eval_model_args(self, folder) -> str:
        """``--model_args`` that load this result, saved in ``folder``, into lm-eval."""
        args = lm_eval_model_args(self.record["resolved_model"], self.config)
        return f"{args},peft={folder}" if isinstance(self.model, PeftModel) else args

    def load_with(self, folder) -> str:
        command = f"lm_eval --model hf --model_args {self.lm_eval_model_args(folder)}"
        if self.system_instruction:
            command += f' --system_instruction "{self.system_instruction}"'
        return command

    def save_pretrained(self, folder, *, merged: bool = False, overwrite: bool = False) -> Path:
        """Write ``folder`` whole or not at all: the PEFT adapter and tokenizer, the config
        (``lftf_config.json``, with the method's name), the run record (``lftf_run.json``)
        and the method's own files; with ``merged``, ``folder/merged`` as a full model."""
        with atomic_output_dir(Path(folder), overwrite) as tmp:
            self.write(tmp, final=Path(folder), merged=merged)
        return Path(folder)

    def write(
        self, folder: Path, final: Path | None = None, merged: bool = False, artifacts=True
    ) -> None:
        """What ``save_pretrained`` writes, into an existing folder (``final``: where it
        will live, for the record's load_with; ``artifacts``: the method's own files too)."""
        self.record["load_with"] = self.load_with(final or folder)
        if isinstance(self.model, PeftModel):
            self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        self.write_records(folder, artifacts)
        if merged:
            if not isinstance(self.model, PeftModel):
                raise ValueError(f"method {self.method} changes no weights: nothing to merge")
            save_merged(self.model, self.tokenizer, folder / "merged")

    def write_records(self, folder: Path, artifacts: bool = True) -> None:
        """The config, the run record and the method's own files (figures, tables)."""
        self.config.save(folder / CONFIG_FILE, method=self.method)
        write_json(folder / RECORD_FILE, self.record)
        for write_file in self.adapted.artifacts.values() if artifacts else ():
            write_file(folder, self.record)


def debias(model, tokenizer, config, *, context: Context | None = None, log=print):
    """Apply the method whose config ``config`` is to ``model`` (in place): the adapted model
    and its run record, in memory. ``context`` shares work across calls (see Context)."""
    method = method_for(config)
    resolved = getattr(model, "name_or_path", "") or config.model
    context = context or Context(resolved_model=resolved, log=log)
    if not context.resolved_model:
        context.resolved_model = resolved
    adapted = method.apply(model, tokenizer, config, context)
    record = run_record(config, method.name, context.resolved_model, adapted.details)
    return DebiasResult(method.name, config, adapted.model, tokenizer, record, adapted, context)


def get_lftf_model(model, config: LFTFConfig, tokenizer=None) -> PeftModel:
    """``model`` as a PeftModel whose only trainable parameters are the blocks ``config``
    chooses (LFTF's ``get_peft_model``): for your own loop or transformers' Trainer, with
    ``lftf_loss``. blocks='auto' locates first, which needs ``tokenizer``."""
    if config.blocks == "auto":
        if tokenizer is None:
            raise ValueError("blocks='auto' locates the blocks: pass tokenizer=, or give blocks")
        blocks = locate(model, tokenizer, config).top(config.num_blocks)
    elif config.blocks == "all":
        blocks = list(range(model.config.get_text_config().num_hidden_layers))
    else:
        blocks = config.blocks
    return wrap_for_training(model, config, blocks)


def lftf_loss(next_token_logits: torch.Tensor, group_ids, terms: list[int] | None = None):
    """The LFTF loss of a batch: mean over prompts of -sum over groups of log P(group|p),
    from the logits at each prompt's last position ``(batch, vocab)``; ``group_ids`` from
    ``target_token_ids(tokenizer, axis)``; ``terms``: which groups' terms (default all)."""
    logp = group_logprobs(next_token_logits, group_ids)
    return _group_loss(logp, list(range(logp.shape[-1])) if terms is None else terms)


__all__ = [
    "DebiasResult",
    "Ranking",
    "debias",
    "get_lftf_model",
    "lftf_loss",
    "load_model",
    "locate",
    "target_token_ids",
]
