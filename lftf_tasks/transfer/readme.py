"""The README of ``tasks/transfer/`` in lm-eval's new-task template, written by
``python -m lftf_tasks.build`` so that its counts are the build's."""

from __future__ import annotations

from lftf_tasks.outputs import render_template
from lftf_tasks.transfer.cards import TEMPLATES_DIR, WINOBIAS_CITATION, WINOGENDER_CITATION


def _n(kept: list[dict], type_: int, split: str) -> int:
    return sum(d["type"] == type_ and d["split"] == split for d in kept)


def task_readme(kept: list[dict], dropped: list[dict], prompts: list[dict], version: float) -> str:
    counts = {f"type{t}_{s}": _n(kept, t, s) for t in (1, 2) for s in ("dev", "test")}
    return render_template(
        TEMPLATES_DIR / "transfer_README.md.j2",
        n_kept=len(kept),
        n_pairs=len(kept) + len(dropped),
        n_test=counts["type1_test"] + counts["type2_test"],
        n_dev=counts["type1_dev"] + counts["type2_dev"],
        n_templates=len({d["template_id"] for d in prompts}),
        n_prompts=len(prompts),
        n_occupations=len({d["occupation"] for d in prompts}),
        winobias_citation=WINOBIAS_CITATION,
        winogender_citation=WINOGENDER_CITATION,
        version=version,
        **counts,
    )
