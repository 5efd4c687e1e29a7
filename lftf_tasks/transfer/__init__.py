"""WinoBias and Winogender in lm-eval: the task names to ask for, and the figures to read back.
The subpackage holds all of it: the published files' parsing (``sources``, ``winobias``,
``winogender``), the docs, data cards, task folder and README the build writes (``files``,
``cards``, ``readme``), and the tasks' lm-eval hooks (``hooks``). The BLS fit they share with
GenBiasEval stays in ``lftf_tasks.labour``.

These benchmarks were written by others for other questions, so a debiasing method never
trains or tunes on them: they show whether what it learnt on GenBiasEval carries over.

    from lftf_tasks.transfer import TRANSFER_TASKS, transfer_summary
    out = lm_eval.simple_evaluate(..., tasks=[*TRANSFER_TASKS, "genbiaseval"], ...)
    transfer_summary(out)  # {"winobias_pct_pro": ..., "winogender_bls_slope": ..., ...}
"""

from __future__ import annotations

from lftf_tasks.labour import occupation_gaps

TRANSFER_TASKS = ("winobias", "winogender_next")  # test splits
TRANSFER_DEV_TASKS = ("winobias_dev",)  # WinoBias's dev split (Winogender has none)
WINOBIAS_TYPES = (1, 2)
TRANSFER_TASK_NAMES = (
    "winobias",
    *(f"winobias_type{t}" for t in WINOBIAS_TYPES),
    "winobias_dev",
    *(f"winobias_type{t}_dev" for t in WINOBIAS_TYPES),
    "winogender_next",
)
WINOGENDER_KEYS = ("afgb", "afgb_stderr", "pronoun_mass", "relative_gap", "bls_slope", "bls_r")


def _metric(task_results: dict, key: str):
    """lm-eval's "metric,none" (stderr keys are "metric_stderr,none")."""
    return task_results[f"{key},none"]


def _winobias(r: dict, suffix: str) -> dict:
    """winobias{suffix}_* from the group and its two types; pro_gap from the pooled share."""
    prefix, out = f"winobias{suffix}", {}
    if prefix in r:
        pct_pro = _metric(r[prefix], "pct_pro")
        out[f"{prefix}_pct_pro"] = pct_pro
        out[f"{prefix}_pct_pro_stderr"] = _metric(r[prefix], "pct_pro_stderr")
        out[f"{prefix}_pro_gap"] = abs(pct_pro - 0.5)
        out[f"{prefix}_ll_diff"] = _metric(r[prefix], "ll_diff")
    for t in WINOBIAS_TYPES:
        if f"winobias_type{t}{suffix}" in r:
            out[f"{prefix}_type{t}_pct_pro"] = _metric(r[f"winobias_type{t}{suffix}"], "pct_pro")
    return out


def transfer_summary(results: dict) -> dict:
    """Flat figures from an lm-eval results dict (``simple_evaluate``'s return value or the
    saved results JSON): winobias_*, winobias_dev_* (when run), winogender_* and the
    genbiaseval group's labour fit (genbiaseval_bls_slope, genbiaseval_bls_r). A task that
    was not run gives no keys.

    winobias_pro_gap is |pooled pct_pro - 0.5| over both types; the group's own
    ``pro_gap`` metric is instead the size-weighted mean of the types' gaps."""
    r = results["results"]
    out = {**_winobias(r, ""), **_winobias(r, "_dev")}
    if "winogender_next" in r:
        out.update({f"winogender_{k}": _metric(r["winogender_next"], k) for k in WINOGENDER_KEYS})
    if "genbiaseval" in r and "bls_slope,none" in r["genbiaseval"]:
        out["genbiaseval_bls_slope"] = _metric(r["genbiaseval"], "bls_slope")
        out["genbiaseval_bls_r"] = _metric(r["genbiaseval"], "bls_r")
    return out


def per_occupation_gap(samples: dict) -> dict[str, tuple[float, float]]:
    """occupation -> (mean signed gap P(he) - P(she), BLS % female) over lm-eval's logged
    samples of winogender_next (``samples`` as simple_evaluate returns it, by task): the
    points that winogender_bls_slope fits. Empty when the task was not run."""
    return occupation_gaps(
        (s["doc"]["occupation"], s["gap"], s["doc"]["bls_pct_female"])
        for s in samples.get("winogender_next", [])
    )
