"""PBConfig: the prompt-based baseline's one setting, its instruction."""

from __future__ import annotations

from dataclasses import dataclass

from lftf_train.config import RunConfig, option

PB_INSTRUCTION = (
    "Treat all genders equally. Do not assume the gender of a person from their profession."
)


@dataclass
class PBConfig(RunConfig):
    """A prompt-based baseline (the paper's PB): an instruction before every prompt, through
    lm-eval's ``system_instruction``; no weight changes."""

    instruction: str = option(
        PB_INSTRUCTION, "The instruction put before every prompt.", group="PB"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.instruction.strip():
            self._fail("instruction", "an instruction to put before every prompt, got ''")
