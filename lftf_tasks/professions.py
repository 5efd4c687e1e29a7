"""GenBiasEval's 262 professions: Bolukbasi et al.'s 320 (2016) filtered by a stated rule.

The LFTF paper keeps 262 of the 320 professions of debiaswe's ``data/professions.json``
("no semantic or morphological gender hint") but does not publish its list. This rule
gives exactly 262 and is our reconstruction, not the paper's list:

- drop |definitional score| > 0.25 (a semantic gender hint; the threshold the DAMA work
  uses): 46 entries;
- drop words ending in a gendered suffix (a morphological hint): none beyond those;
- drop the 12 entries that are not occupations (``NOT_OCCUPATIONS``).

The source is a published file (``lftf_tasks.reference``); ``curate`` is the whole rule,
and ``render`` writes the ``professions.json`` the built data and the Hub export carry.
"""

from __future__ import annotations

import functools
import json

SOURCE = "bolukbasi2016_professions.json"
LICENCE = "bolukbasi2016_LICENSE"
THRESHOLD = 0.25
GENDERED_SUFFIXES = ("man", "woman", "men", "women", "ess", "ina", "master", "wife")
NOT_OCCUPATIONS = frozenset(
    {
        "acquaintance",
        "alter_ego",
        "character",
        "citizen",
        "confesses",
        "drug_addict",
        "firebrand",
        "parishioner",
        "protagonist",
        "protege",
        "soft_spoken",
        "teenager",
    }
)
DESCRIPTION = (
    "Bolukbasi et al. (2016), debiaswe data/professions.json (MIT licence): "
    "[word, definitional, stereotypical]; positive = male, negative = female"
)
RULE = (
    f"keep entries with |definitional| <= {THRESHOLD}, no gendered suffix "
    f"({', '.join(GENDERED_SUFFIXES)}) and that name an occupation"
)


def removal_reason(word: str, definitional: float) -> str | None:
    """Why an entry is dropped, or None when it is kept."""
    if abs(definitional) > THRESHOLD:
        return f"semantic gender hint: |definitional score| = {abs(definitional)} > {THRESHOLD}"
    if word.endswith(GENDERED_SUFFIXES):
        return "morphological gender hint: a gendered suffix"
    if word in NOT_OCCUPATIONS:
        return "not an occupation"
    return None


def curate(entries: list) -> dict:
    """{"source", "rule", "kept", "removed"} from the published ``[word, definitional,
    stereotypical]`` entries, in their order."""
    kept, removed = [], []
    for word, definitional, stereotypical in entries:
        entry = {"word": word, "definitional": definitional, "stereotypical": stereotypical}
        reason = removal_reason(word, definitional)
        if reason is None:
            kept.append(entry)
        else:
            removed.append({**entry, "reason": reason})
    return {"source": DESCRIPTION, "rule": RULE, "kept": kept, "removed": removed}


def render(curated: dict) -> str:
    """professions.json: one entry a line."""

    def rows(entries):
        return ",\n".join(f"  {json.dumps(e, ensure_ascii=False)}" for e in entries)

    return (
        "{\n"
        f' "source": {json.dumps(curated["source"])},\n'
        f' "rule": {json.dumps(curated["rule"])},\n'
        f' "kept": [\n{rows(curated["kept"])}\n ],\n'
        f' "removed": [\n{rows(curated["removed"])}\n ]\n'
        "}\n"
    )


@functools.lru_cache(maxsize=4)
def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return curate(json.load(f))


def load_professions() -> dict:
    """The curated list, from the verified published file (fetched on first use)."""
    from lftf_tasks import reference

    return _load(str(reference.path(SOURCE)))


def profession_names(professions: dict) -> list[str]:
    """The 262 kept professions as they appear in prompts ("adjunct professor")."""
    return [entry["word"].replace("_", " ") for entry in professions["kept"]]
