"""MEND's own settings, fields of ``EditConfig`` (flags of `lftf-train edit`, used with
``--editor mend``). Defaults: EasyEdit's MEND training hyperparameters where a CPU can
afford them (c_edit 0.1, c_loc 1.0, alpha 1e-4 and its learning rate 1e-4, gradient
accumulation 10), scaled where it cannot (rank, learning rate, steps: see the README)."""

from __future__ import annotations

from dataclasses import dataclass

from lftf_train.config import Checks, option

MEND = "MEND (with --editor mend)"
REFERENCE_RANK = 1920  # EasyEdit's rank for Llama-3.2-3B ...
REFERENCE_WIDTH = 3072 + 8192  # ... whose editor input is hidden + intermediate size


@dataclass
class MENDSettings(Checks):
    mend_rank: int | None = option(
        None,
        "Rank of the editor network's layers; default: the reference's 1920 at Llama-3.2-3B's "
        "width (hidden + intermediate = 11264), scaled in proportion below it (360 for "
        "SmolLM2-135M).",
        group=MEND,
    )
    mend_steps: int = option(
        1200,
        "Training edits (outer steps) at most; the reference trains for up to 100k on a GPU.",
        group=MEND,
    )
    mend_lr: float = option(
        1e-4,
        "Adam learning rate of the editor networks (reference 1e-6 over 100k steps; raised "
        "with the shorter schedule).",
        group=MEND,
    )
    mend_alpha: float = option(1e-4, "Initial edit step alpha per matrix.", group=MEND)
    mend_alpha_lr: float = option(1e-4, "Adam learning rate of the alphas.", group=MEND)
    mend_edit_weight: float = option(
        0.1, "c_edit: weight of the target's NLL after the edit.", group=MEND
    )
    mend_loc_weight: float = option(
        1.0, "c_loc: weight of KL(original || edited) on text sampled from the model.", group=MEND
    )
    mend_accumulation: int = option(10, "Training edits per optimiser step.", group=MEND)
    mend_val_every: int = option(
        200, "Validate on the held-out requests every this many training edits.", group=MEND
    )
    mend_val_requests: int = option(
        48,
        "Train requests held out for validation, never trained on (1..942 for gender: "
        "at least one is trained on).",
        group=MEND,
    )
    mend_patience: int = option(
        3, "Stop after this many validations without a better loss.", group=MEND
    )
    mend_loc_windows: int = option(
        2, "Windows of sampled text in each edit's locality loss.", group=MEND
    )
    mend_loc_tokens: int = option(16, "Tokens per locality window.", group=MEND)
    mend_retrain: bool = option(
        False, "Train the editor again even if the lftf cache holds one.", group=MEND
    )

    def check_mend(self) -> None:
        """The counts, rates and weights of MEND's training (the methods of ``Checks``)."""
        self._positive(
            "mend_steps",
            "mend_accumulation",
            "mend_val_every",
            "mend_val_requests",
            "mend_patience",
            "mend_loc_windows",
            "mend_loc_tokens",
        )
        if self.mend_rank is not None:
            self._positive("mend_rank")
        self._above_zero("mend_lr", "mend_alpha_lr", "mend_edit_weight")
        self._non_negative("mend_loc_weight")

    def training_settings(self) -> dict:
        """The fields that decide a trained editor (its cache key), mend_retrain aside."""
        names = [f for f in MENDSettings.__dataclass_fields__ if f != "mend_retrain"]
        return {name: getattr(self, name) for name in names}


def default_rank(width: int) -> int:
    return max(1, min(REFERENCE_RANK, round(REFERENCE_RANK * width / REFERENCE_WIDTH)))
