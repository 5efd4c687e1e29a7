"""The prompts LFTF trains and scores on: an axis's bias and hint prompts (GenBiasEval and
GenHintEval for gender), built from its spec exactly as the shipped task data is."""

from __future__ import annotations

import dataclasses
import random

from lftf_tasks.axis import SPLITS, Axis, build_bias, build_hint, load_axis

# Hinted prompts for LFTF's anchor term (LFTFConfig.anchor_weight), on templates of their own:
# neither GenHintEval's test nor its dev templates, so both stay unseen in training.
ANCHOR_TEMPLATES = {
    "gender": (
        "The {subject} packed {hint} bag because",
        "The {subject} called {hint} sister because",
        "The {subject} cleaned {hint} desk because",
    )
}


def bias_records(split: str, axis: Axis | None = None) -> list[dict]:
    axis = axis or load_axis("gender")
    if split not in SPLITS:
        raise ValueError(f"{axis.bias_task} has splits {SPLITS}, not {split!r}")
    return [r for r in build_bias(axis) if r["split"] == split]


def hint_records(split: str = "test", axis: Axis | None = None) -> list[dict]:
    """'test' is the paper's GenHintEval (786 prompts for gender), 'dev' other templates."""
    axis = axis or load_axis("gender")
    if split not in ("dev", "test"):
        raise ValueError(f"{axis.hint_task} has splits ('dev', 'test'), not {split!r}")
    return build_hint(axis, split)


def sample_prompts(split: str, n: int, seed: int, axis: Axis | None = None) -> list[str]:
    """n prompts of a bias split drawn without replacement by a seeded shuffle."""
    prompts = [r["prompt"] for r in bias_records(split, axis)]
    if n > len(prompts):
        raise ValueError(f"asked for {n} prompts but the {split} split has {len(prompts)}")
    return random.Random(seed).sample(prompts, n)


def training_prompts(axis: Axis | None = None) -> dict[str, list[str]]:
    """What fine-tuning sees: the axis's bias train split to train on, and its bias dev and
    hint dev splits to select on (GenBiasEval-train/-dev and GenHintEval-dev for gender).

    The test splits stay unseen until the final evaluation.
    """
    return {
        "train": [r["prompt"] for r in bias_records("train", axis)],
        "dev": [r["prompt"] for r in bias_records("dev", axis)],
        "hint": [r["prompt"] for r in hint_records("dev", axis)],
    }


def anchor_prompts(axis: Axis) -> list[str]:
    """The axis's subjects on the anchor templates, the hint shared out among the groups as
    in the hint task (for gender: 786 prompts, half "his", half "her")."""
    if axis.name not in ANCHOR_TEMPLATES:
        raise ValueError(
            f"anchor_weight needs hinted training templates for the axis {axis.name!r}; "
            f"only {sorted(ANCHOR_TEMPLATES)} has them (lftf_train/data.py ANCHOR_TEMPLATES)"
        )
    templates = {**axis.hint_templates, "anchor": list(ANCHOR_TEMPLATES[axis.name])}
    anchored = dataclasses.replace(axis, hint_templates=templates)
    return [r["prompt"] for r in build_hint(anchored, "anchor")]
