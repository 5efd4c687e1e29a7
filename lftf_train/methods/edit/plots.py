"""The knowledge editors' figures: P(target) along a sequence of edits, MEND's training curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lftf_train.plots import plt, save


def rolling_mean(values, window: int) -> np.ndarray:
    """The mean of each value and the ``window - 1`` before it (fewer at the start)."""
    values = np.asarray(values, dtype=float)
    sums = np.cumsum(np.concatenate([[0.0], values]))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def plot_edit_trajectory(edits: dict[str, list[dict]], path: Path, title: str, footer="") -> Path:
    """Per editor, along its sequence of edits: P(target) on each request's prompt just
    before and just after its own edit (rolling means). A before-curve that climbs means
    the earlier edits already moved the later prompts: the edits generalise."""
    fig, axes = plt.subplots(1, len(edits), figsize=(4.2 * len(edits), 3.4), squeeze=False)
    for ax, (name, records) in zip(axes[0], edits.items()):
        window = max(1, len(records) // 20)
        x = np.arange(1, len(records) + 1)
        for key, label in (("p_target_before", "before its edit"), ("p_target_after", "after")):
            ax.plot(x, rolling_mean([r[key] for r in records], window), label=label)
        ax.set_ylim(0, 1)
        ax.set_xlabel("edit")
        ax.set_ylabel(f"P(target), mean of {window}")
        ax.set_title(f"{name}: {len(records)} edits", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    return save(fig, path, footer)


def plot_mend_training(curve: list[dict], path: Path, title: str, footer: str = "") -> Path:
    """MEND's training curve at each validation: on held-out requests, each edited alone,
    P(target) before and after the edit and how often it became likelier (left); the
    locality KL on held-out text and the train loss terms (right)."""
    steps = [p["step"] for p in curve]
    val = [p["val"] for p in curve]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.plot(steps, [v["p_before"] for v in val], "--", color="gray", label="P(target) before")
    left.plot(steps, [v["p_after"] for v in val], "o-", label="P(target) after")
    left.plot(steps, [v["likelier"] for v in val], "s-", label="share made likelier")
    left.set_ylim(0, 1)
    left.set_xlabel("training edits")
    left.set_title("held-out edits", fontsize=9)
    left.legend(fontsize=7)
    right.plot(steps, [v["kl"] for v in val], "o-", label="held-out KL(original || edited)")
    trained = [p for p in curve if p["train_kl"] is not None]  # step 0: not trained yet
    right.plot(
        [p["step"] for p in trained], [p["train_kl"] for p in trained], "--", label="train KL"
    )
    right.set_yscale("log")
    right.set_xlabel("training edits")
    right.set_title("locality", fontsize=9)
    right.legend(fontsize=7)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return save(fig, path, footer)
