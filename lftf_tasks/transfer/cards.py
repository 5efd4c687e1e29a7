"""The data cards of WinoBias and Winogender (``data/winobias/README.md``,
``data/winogender/README.md``), written by ``python -m lftf_tasks.build`` so that every
count in them is the build's."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from lftf_tasks.outputs import render_template
from lftf_tasks.transfer import WINOBIAS_TYPES
from lftf_tasks.transfer.sources import read_tsv
from lftf_tasks.transfer.winobias import SPLITS, source_name
from lftf_tasks.transfer.winogender import FIRST_PRONOUN, TEMPLATE_HEADER, TEMPLATES, source_path

WINOBIAS_CITATION = """@inproceedings{zhao-etal-2018-gender,
  title     = {Gender Bias in Coreference Resolution: Evaluation and Debiasing Methods},
  author    = {Zhao, Jieyu and Wang, Tianlu and Yatskar, Mark and Ordonez, Vicente and Chang, Kai-Wei},
  booktitle = {Proceedings of the 2018 Conference of the North American Chapter of the Association for Computational Linguistics: Human Language Technologies, Volume 2 (Short Papers)},
  pages     = {15--20},
  year      = {2018},
  address   = {New Orleans, Louisiana},
  publisher = {Association for Computational Linguistics},
  url       = {https://aclanthology.org/N18-2003}
}"""
WINOGENDER_CITATION = """@inproceedings{rudinger-etal-2018-gender,
  title     = {Gender Bias in Coreference Resolution},
  author    = {Rudinger, Rachel and Naradowsky, Jason and Leonard, Brian and Van Durme, Benjamin},
  booktitle = {Proceedings of the 2018 Conference of the North American Chapter of the Association for Computational Linguistics: Human Language Technologies, Volume 2 (Short Papers)},
  pages     = {8--14},
  year      = {2018},
  address   = {New Orleans, Louisiana},
  publisher = {Association for Computational Linguistics},
  url       = {https://aclanthology.org/N18-2002}
}"""
NORMALISATION = """1. the line number and the space after it are removed;
2. the brackets that mark the two coreferent mentions are removed, and runs of spaces are
   collapsed to one (line 176 of `pro_stereotyped_type2.txt.dev` has "[ physician]");
3. " 's" is joined to the word before it ("the librarian 's room" -> "the librarian's
   room");
4. no space is left before . , ; : ! ? (the rule never applies in this release; it is
   there so that a " ." could not reach a prompt).

Nothing else changes: case, spelling and the sentences' own typos stay as published."""


TEMPLATES_DIR = Path(__file__).parents[1] / "templates"


def _differing_words(doc: dict) -> int:
    return sum(p != a for p, a in zip(doc["pro"].split(), doc["anti"].split()))


def _winobias_counts(kept: list[dict], dropped: list[dict]) -> str:
    n_kept = Counter((d["type"], d["split"]) for d in kept)
    n_dropped = Counter((d["type"], d["split"]) for d in dropped)
    rows = [
        f"| {t} | {s} | `{source_name('pro', t, s)}` / `{source_name('anti', t, s)}` | "
        f"{n_kept[t, s] + n_dropped[t, s]} | {n_kept[t, s]} | {n_dropped[t, s]} |"
        for s in SPLITS
        for t in WINOBIAS_TYPES
    ]
    rows.append(f"| all | | | {len(kept) + len(dropped)} | {len(kept)} | {len(dropped)} |")
    return "\n".join(rows)


def winobias_card(kept: list[dict], dropped: list[dict]) -> str:
    """data/winobias/README.md."""
    genders = Counter(d["pro_gender"] for d in kept)
    return render_template(
        TEMPLATES_DIR / "winobias_card.md.j2",
        two=sum(_differing_words(d) > 1 for d in kept),
        male=genders["male"],
        female=genders["female"],
        counts=_winobias_counts(kept, dropped),
        n_dropped=len(dropped),
        dropped_rows="\n".join(
            f"| {d['type']} | {d['split']} | {d['line']} | {d['reason']} | {d['pro']} | "
            f"{d['anti']} |"
            for d in dropped
        ),
        normalisation=NORMALISATION,
        citation=WINOBIAS_CITATION,
    )


def _first_pronouns() -> Counter:
    rows = read_tsv(source_path(TEMPLATES), TEMPLATE_HEADER)
    return Counter(FIRST_PRONOUN.search(cells[3]).group(1) for _, cells in rows)


def winogender_card(prompts: list[dict]) -> str:
    """data/winogender/README.md."""
    firsts = _first_pronouns()
    return render_template(
        TEMPLATES_DIR / "winogender_card.md.j2",
        n_templates=len({d["template_id"] for d in prompts}),
        n_all=sum(firsts.values()),
        n_poss=firsts["POSS"],
        n_acc=firsts["ACC"],
        n_prompts=len(prompts),
        n_occupations=len({d["occupation"] for d in prompts}),
        n_distinct=len({d["prompt"] for d in prompts}),
        citation=WINOGENDER_CITATION,
    )
