"""DAMA's figure: its dev sweep."""

from __future__ import annotations

from pathlib import Path

from lftf_train.plots import plt, save


def plot_dama_sweep(
    sweep: list[dict], original: dict, path: Path, title: str, axis, footer: str = ""
) -> Path:
    """DAMA's dev sweep: each dev metric against the rank, one line per layer set, the
    original model dashed."""
    m = axis.metrics
    keys = ["a_s", "a_s_relative", m["bias"], m["mass"], m["hint"]]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.4))
    sets = []
    for entry in sweep:
        if entry["layers"] not in sets:
            sets.append(entry["layers"])
    for ax, key in zip(axes, keys):
        for layers in sets:
            rows = [e for e in sweep if e["layers"] == layers]
            label = f"blocks {layers[0]}-{layers[-1]}" if len(layers) > 1 else f"block {layers[0]}"
            ax.plot(
                [e["rank"] for e in rows], [e["dev"][key] for e in rows], marker="o", label=label
            )
        ax.axhline(original[key], color="gray", ls="--", lw=1, label="original")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("rank k")
        ax.set_title(f"dev {key}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    return save(fig, path, footer)
