"""Figures (PNG, matplotlib) every method shares: BMI per block (the paper's Figure 2),
locators side by side, training curves, bias case studies, the transfer figure. A method's
own figures live in its folder and save through ``save``."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save(fig, path: Path, footer: str) -> Path:
    """Every figure carries a footer saying what made it (package, model, seed, date)."""
    if footer:
        fig.text(0.01, 0.005, footer, fontsize=6, color="dimgray")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_bmi(scores: dict[str, list[float]], path: Path, title: str, footer: str = "") -> Path:
    """A row-normalised heatmap (the paper's Figure 2) above one bar chart per BMI source."""
    sources = list(scores)
    table = np.array([scores[s] for s in sources], dtype=float)
    n_blocks = table.shape[1]
    fig, axes = plt.subplots(
        1 + len(sources),
        1,
        figsize=(max(7, 0.28 * n_blocks + 2), 2.2 + 2.2 * len(sources)),
        gridspec_kw={"height_ratios": [0.5 * len(sources)] + [1] * len(sources)},
    )
    span = table.max(1, keepdims=True) - table.min(1, keepdims=True)
    normalised = (table - table.min(1, keepdims=True)) / np.where(span > 0, span, 1)
    heat = axes[0].imshow(normalised, aspect="auto", cmap="Reds", vmin=0, vmax=1)
    axes[0].set_yticks(range(len(sources)), sources)
    axes[0].set_xticks(range(n_blocks), [str(i) for i in range(n_blocks)], fontsize=7)
    axes[0].set_title(title)
    fig.colorbar(heat, ax=axes[0], label="BMI (row-normalised)", pad=0.01)
    for ax, source, row in zip(axes[1:], sources, table):
        top = int(row.argmax())
        colors = ["tab:red" if i == top else "tab:gray" for i in range(n_blocks)]
        ax.bar(range(n_blocks), row, color=colors)
        ax.set_ylabel("BMI")
        ax.set_xticks(range(n_blocks), [str(i) for i in range(n_blocks)], fontsize=7)
        ax.set_title(f"source: {source} (top block {top}, BMI {row[top]:.3f})", fontsize=9)
    axes[-1].set_xlabel("block (0-based)")
    return save(fig, path, footer)


def plot_locators(
    rankings_scores: dict[str, list[float]], path: Path, title: str, footer: str = ""
) -> Path:
    """One bar chart per locator, side by side on a shared block axis, top block in red."""
    n_blocks = len(next(iter(rankings_scores.values())))
    fig, axes = plt.subplots(
        1,
        len(rankings_scores),
        figsize=(max(7, (0.18 * n_blocks + 1.5) * len(rankings_scores)), 3.6),
        sharex=True,
    )
    for ax, (locator, scores) in zip(np.atleast_1d(axes), rankings_scores.items()):
        row = np.asarray(scores, dtype=float)
        top = int(row.argmax())
        colors = ["tab:red" if i == top else "tab:gray" for i in range(n_blocks)]
        ax.bar(range(n_blocks), row, color=colors)
        ax.annotate(
            f"block {top}",
            (top, row[top]),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=7,
            color="tab:red",
        )
        ax.margins(y=0.15)  # room for the annotation above the top bar
        ax.set_xticks(range(n_blocks), [str(i) for i in range(n_blocks)], fontsize=7)
        ax.set_xlabel("block (0-based)")
        ax.set_ylabel("score")
        ax.set_title(f"locator: {locator} (top block {top}, {row[top]:.3g})", fontsize=9)
    fig.suptitle(title)
    return save(fig, path, footer)


def plot_history(history: list[dict], path: Path, title: str, axis, footer: str = "") -> Path:
    """The axis's dev metrics after each epoch: bias, mass and relative bias on its bias dev
    split, the hint score on its hint dev split."""
    m = axis.metrics
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for key in ("bias", "mass", "relative"):
        values = [h["dev"][m[key]] for h in history]
        ax.plot(epochs, values, marker="o", label=f"{axis.bias_task}_dev {m[key]}")
    hint = [h["dev"][m["hint"]] for h in history]
    ax.plot(epochs, hint, marker="s", label=f"{axis.hint_task}_dev {m['hint']}")
    ax.set_xlabel("epoch (0 = before training)")
    ax.set_xticks(epochs)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path, footer)


def plot_sweep(runs: dict[str, list[dict]], path: Path, title: str, axis, footer: str = "") -> Path:
    """Dev bias and dev hint score per epoch, one line per learning rate."""
    m = axis.metrics
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, history in runs.items():
        epochs = [h["epoch"] for h in history]
        left.plot(epochs, [h["dev"][m["bias"]] for h in history], marker="o", label=label)
        right.plot(epochs, [h["dev"][m["hint"]] for h in history], marker="o", label=label)
    left.set_title(f"{axis.bias_task}_dev {m['bias']} (lower is fairer)", fontsize=9)
    right.set_title(f"{axis.hint_task}_dev {m['hint']} (higher follows hints)", fontsize=9)
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    left.legend(fontsize=8)
    fig.suptitle(title)
    return save(fig, path, footer)


def plot_case_study(
    rows: dict[str, dict[str, tuple[float, ...]]],
    path: Path,
    title: str,
    labels: list[str],
    footer: str = "",
) -> Path:
    """The paper's Figure 3: each group's probability (P(he), P(she)) per subject, one
    panel per model."""
    fig, axes = plt.subplots(1, len(rows), figsize=(4.2 * len(rows), 3.6), sharey=True)
    axes = np.atleast_1d(axes)
    width = 0.8 / len(labels)
    for ax, (label, probs) in zip(axes, rows.items()):
        names = list(probs)
        x = np.arange(len(names))
        for g, group in enumerate(labels):
            offset = (g - (len(labels) - 1) / 2) * width
            ax.bar(x + offset, [probs[n][g] for n in names], width, label=f"P({group})")
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("mean over the bias templates")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    return save(fig, path, footer)


def plot_per_profession(
    before: dict[str, float],
    after: dict[str, float],
    path: Path,
    title: str,
    after_label: str,
    labels: list[str],
    footer: str = "",
) -> Path:
    """Signed gap P(he) - P(she) per profession, original (x) against debiased (y)."""
    gap = f"P({labels[0]}) - P({labels[1]})"
    names = sorted(set(before) & set(after))
    x = np.array([before[n] for n in names])
    y = np.array([after[n] for n in names])
    fig, ax = plt.subplots(figsize=(6, 5.2))
    ax.scatter(x, y, s=12, alpha=0.7)
    lim = max(np.abs(x).max(), np.abs(y).max(), 0.05) * 1.1
    ax.plot([-lim, lim], [-lim, lim], color="gray", lw=0.8, ls="--", label="unchanged")
    ax.axhline(0, color="black", lw=0.8)
    ax.axvline(0, color="black", lw=0.8)
    for i in np.argsort(-np.abs(x))[:8]:  # label the most biased professions
        ax.annotate(names[i], (x[i], y[i]), fontsize=7)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_xlabel(f"original: mean {gap} on its test prompts")
    ax.set_ylabel(f"{after_label}: mean {gap}")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    return save(fig, path, footer)


def plot_transfer(
    rows: dict[str, dict[str, tuple[float, float]]], path: Path, title: str, footer: str = ""
) -> Path:
    """Winogender: each occupation's mean P(he) - P(she) against its BLS % female, one
    colour per row ({label: {occupation: (gap, bls)}}), with each row's least-squares line;
    a fair model lies on the zero line."""
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for (label, gaps), colour in zip(
        rows.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ):
        bls = np.array([b for _, b in gaps.values()])
        gap = np.array([g for g, _ in gaps.values()])
        slope, intercept = np.polyfit(bls, gap, 1)
        ax.scatter(bls, gap, s=14, alpha=0.6, color=colour)
        line = np.array([0.0, 100.0])
        ax.plot(
            line,
            intercept + slope * line,
            color=colour,
            label=f"{label}: slope {100 * slope:+.3f} per 100 points",
        )
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("US Bureau of Labor Statistics: % female in the occupation (2015)")
    ax.set_ylabel("mean P(he) - P(she) over the occupation's prompts")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save(fig, path, footer)
