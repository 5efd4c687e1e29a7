"""A bias axis as data: groups, their target words, subjects, templates and hints.

An axis spec is a small YAML (or JSON) file; ``axes/gender.yaml`` is the paper's
GenBiasEval/GenHintEval expressed in that format and ``axes/religion.yaml`` is a second,
four-group axis. From a spec we build the prompts (``build_bias``, ``build_hint``), the
lm-eval task folder (``lftf_tasks.generate``) and the scores below, which ``lftf-train``
also uses.

Scores for k groups, with P(g|p) = sum over the group's words w of P(w|p):
- bias of a prompt: the range max_g P(g|p) - min_g P(g|p). For two groups it is
  |P(g1|p) - P(g2|p)|, i.e. AFGB for he/she.
- hint score of a prompt whose hint names group h: P(h|p) - mean over g != h of P(g|p).
  For two groups it is F * (P(g1|p) - P(g2|p)), F = +1 for a g1 hint: UB for he/she.
- LFTF loss: -sum_g log P(g|p), smallest when every group is equally likely.
"""

from __future__ import annotations

import functools
import json
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lftf_tasks import metrics
from lftf_tasks.paths import AXES_DIR
from lftf_tasks.professions import load_professions, profession_names

BUILTIN_AXES = ("gender", "religion")
SPLITS = ("train", "dev", "test")
HINT_SPLITS = ("test", "dev")
DEFAULT_METRICS = {
    "bias": "range",
    "hint": "hint_score",
    "mass": "mass",
    "relative": "relative_range",
}


class AxisSpecError(ValueError):
    """A bias-axis spec that cannot be used; the message says what to change."""


@dataclass(frozen=True)
class Group:
    name: str  # what records store ("male"), e.g. in hint_<axis>
    label: str  # short id in metric names (p_<label>) and --terms ("he")
    words: tuple[str, ...]  # continuations after a space ("he",): P(group) sums over them
    hint: str  # the word a hint template puts in {hint} ("his")


@dataclass(frozen=True)
class Axis:
    name: str
    description: str
    bias_task: str
    hint_task: str
    subject_field: str
    # the spec's subjects; None: the 262 professions, read from a published file on first
    # use of ``subjects`` (so that naming an axis, its tasks or its settings fetches nothing)
    subject_list: tuple[str, ...] | None
    seed: int
    groups: tuple[Group, ...]
    templates: dict  # scale -> [template with {subject}]
    split_spec: dict  # the spec's split_sizes or split_fractions (see ``split_sizes``)
    hint_templates: dict  # "test"/"dev" -> [template with {subject} and {hint}]
    metrics: dict  # bias/hint/mass/relative -> metric name
    source: str
    slopes: bool = False  # records carry the subjects' stereotypical/definitional scores
    labour: bool = False  # records carry the subjects' BLS % female (lftf_tasks.labour)
    version: float = 1.0  # the task folder's metadata version (bump when scores change)
    paper: dict = field(default_factory=dict)  # name, title, url, citation (for READMEs)

    @property
    def uses_professions(self) -> bool:
        return self.subject_list is None

    @functools.cached_property
    def subjects(self) -> tuple[str, ...]:
        if self.subject_list is not None:
            return self.subject_list
        return tuple(profession_names(load_professions()))

    @functools.cached_property
    def split_sizes(self) -> dict:
        """scale -> (train, dev, test) counts. Explicit counts are known without reading
        the professions (``build_bias`` checks them against the professions' number)."""
        if self.subject_list is None and "split_sizes" in self.split_spec:
            sizes = self.split_spec["split_sizes"]
            return {scale: tuple(sizes.get(scale, ())) for scale in self.templates}
        return _split_sizes(self.split_spec, self.templates, len(self.subjects), self.source)

    def split_size(self, split: str) -> int:
        """How many bias prompts ``split`` holds, over every scale."""
        return sum(sizes[SPLITS.index(split)] for sizes in self.split_sizes.values())

    @property
    def labels(self) -> list[str]:
        return [g.label for g in self.groups]

    @property
    def scales(self) -> list[str]:
        return list(self.templates)

    def group_index(self, name: str) -> int:
        return [g.name for g in self.groups].index(name)

    @property
    def hint_field(self) -> str:
        return f"hint_{self.name}"

    @property
    def choices(self) -> list[str]:
        """Every group's words in group order: the lm-eval continuations."""
        return [w for g in self.groups for w in g.words]


def load_axis(spec: str | Path = "gender") -> Axis:
    """A built-in axis by name ("gender", "religion") or a spec file (.yaml/.yml/.json)."""
    return _load_axis(str(spec))


@functools.lru_cache(maxsize=16)
def _load_axis(spec: str) -> Axis:
    path = Path(spec)
    if str(spec) in BUILTIN_AXES:
        path = AXES_DIR / f"{spec}.yaml"
    elif not path.is_file():
        raise AxisSpecError(
            f"axis {str(spec)!r}: no such file; give a spec file (YAML or JSON) or one of "
            f"the built-in axes {BUILTIN_AXES}"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise AxisSpecError(f"{path}: not valid YAML/JSON ({err})") from None
    return parse_axis(raw, source=str(path))


def _require(raw: dict, key: str, kind, where: str):
    if key not in raw:
        raise AxisSpecError(f"{where}: missing '{key}'")
    if not isinstance(raw[key], kind):
        raise AxisSpecError(f"{where}: '{key}' must be a {getattr(kind, '__name__', kind)}")
    return raw[key]


def _subjects(value, where: str) -> tuple[str, ...] | None:
    if value == "professions":  # the 262 professions GenBiasEval uses, read when first used
        return None
    if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
        raise AxisSpecError(f"{where}: 'subjects' must be 'professions' or a list of strings")
    if len(set(value)) != len(value):
        raise AxisSpecError(f"{where}: 'subjects' has duplicates")
    return tuple(value)


def _split_sizes(raw: dict, templates: dict, n_subjects: int, source: str) -> dict:
    """Explicit per-scale (train, dev, test) counts, or fractions applied to every scale."""
    where = f"axis spec {source}"
    if "split_sizes" in raw:
        sizes = {scale: tuple(raw["split_sizes"].get(scale, ())) for scale in templates}
    else:
        fractions = raw.get("split_fractions", [0.4, 0.2, 0.4])
        if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-9:
            raise AxisSpecError(f"{where}: 'split_fractions' must be 3 numbers adding up to 1")
        sizes = {}
        for scale, temps in templates.items():
            n = len(temps) * n_subjects
            train, dev = math.floor(fractions[0] * n), math.floor(fractions[1] * n)
            sizes[scale] = (train, dev, n - train - dev)
    for scale, size in sizes.items():
        n = len(templates[scale]) * n_subjects
        if len(size) != 3 or sum(size) != n:
            raise AxisSpecError(
                f"{where}: split sizes for scale '{scale}' must be 3 counts adding up to {n}"
            )
    return sizes


def _slopes(value, subjects, n_groups: int, where: str) -> bool:
    """``slopes: {scores: professions}`` adds DAMA's stereotype slopes (lftf_tasks.slopes):
    they need the professions' Bolukbasi scores and a signed gap, so two groups."""
    if value is None:
        return False
    if value != {"scores": "professions"} or subjects != "professions":
        raise AxisSpecError(
            f"{where}: 'slopes' is {{scores: professions}} and needs 'subjects: professions' "
            "(the stereotypical and definitional scores are the professions')"
        )
    if n_groups != 2:
        raise AxisSpecError(f"{where}: 'slopes' regress a signed gap, so they need two groups")
    return True


def _labour(value, n_groups: int, where: str) -> bool:
    """``labour_statistics: winogender`` adds the fit of the signed gap on the US labour
    statistics' % female (lftf_tasks.labour) that ship with Winogender; subjects that are
    not Winogender occupations get no figure and stay out of the fit."""
    if value is None:
        return False
    if value != "winogender":
        raise AxisSpecError(f"{where}: 'labour_statistics' can only be 'winogender'")
    if n_groups != 2:
        raise AxisSpecError(f"{where}: 'labour_statistics' fit a signed gap: two groups")
    return True


def _paper(value, where: str) -> dict:
    known = {"name", "title", "url", "citation"}
    if not isinstance(value, dict) or set(value) - known:
        raise AxisSpecError(f"{where}: 'paper' is a mapping of {sorted(known)}")
    return dict(value)


def subject_scores(axis: Axis) -> dict[str, dict]:
    """subject -> the fields its bias records carry besides the prompt: the Bolukbasi scores
    ("stereotypical", "definitional") with slopes, "bls_pct_female" (None where Winogender
    has no figure) with labour statistics."""
    scores = {subject: {} for subject in axis.subjects}
    if axis.slopes:
        for entry in load_professions()["kept"]:
            scores[entry["word"].replace("_", " ")].update(
                stereotypical=entry["stereotypical"], definitional=entry["definitional"]
            )
    if axis.labour:
        from lftf_tasks.transfer.winogender import load_bls

        bls = load_bls()
        for subject, fields in scores.items():
            fields["bls_pct_female"] = bls.get(subject)
    return scores


def _groups(raw: dict, where: str) -> list[Group]:
    """The spec's groups, each with its words, a metric-safe label and a hint."""
    groups = []
    for i, g in enumerate(_require(raw, "groups", list, where)):
        gwhere = f"{where}, group {i + 1}"
        words = _require(g, "words", list, gwhere)
        if not words or not all(isinstance(w, str) and w.strip() == w and w for w in words):
            raise AxisSpecError(f"{gwhere}: 'words' must be non-empty words without spaces around")
        groups.append(
            Group(
                name=_require(g, "name", str, gwhere),
                label=g.get("label", g["name"]),
                words=tuple(words),
                hint=_require(g, "hint", str, gwhere),
            )
        )
    if len(groups) < 2:
        raise AxisSpecError(f"{where}: an axis needs at least two groups")
    for g in groups:
        if not re.fullmatch(r"[A-Za-z0-9_]+", g.label):
            raise AxisSpecError(
                f"{where}: group label {g.label!r} names metrics (p_<label>): use letters, "
                "digits and _ only (set 'label' if the name has other characters)"
            )
    for attr in ("name", "label"):
        values = [getattr(g, attr) for g in groups]
        if len(set(values)) != len(values):
            raise AxisSpecError(f"{where}: group {attr}s must be distinct, got {values}")
    return groups


def parse_axis(raw, source: str = "<spec>") -> Axis:
    where = f"axis spec {source}"
    if not isinstance(raw, dict):
        raise AxisSpecError(f"{where}: expected a mapping at the top level")
    name = _require(raw, "name", str, where)
    tasks = raw.get("tasks", {})
    groups = _groups(raw, where)
    words = [w for g in groups for w in g.words]
    if len(set(words)) != len(words):
        raise AxisSpecError(f"{where}: a word belongs to two groups: {words}")
    templates = _require(raw, "templates", dict, where)
    for scale, temps in templates.items():
        if not temps or not all("{subject}" in t for t in temps):
            raise AxisSpecError(f"{where}: every template of '{scale}' needs {{subject}}")
    hint_templates = _require(raw, "hint_templates", dict, where)
    if set(hint_templates) != set(HINT_SPLITS):
        raise AxisSpecError(f"{where}: 'hint_templates' needs a 'test' and a 'dev' list")
    for temps in hint_templates.values():
        if not temps or not all("{subject}" in t and "{hint}" in t for t in temps):
            raise AxisSpecError(f"{where}: every hint template needs {{subject}} and {{hint}}")
    subjects = _subjects(raw.get("subjects"), where)
    metrics = {**DEFAULT_METRICS, **raw.get("metrics", {})}
    slopes = _slopes(raw.get("slopes"), raw.get("subjects"), len(groups), where)
    split_spec = {k: raw[k] for k in ("split_sizes", "split_fractions") if k in raw}
    if subjects is not None:  # checked now; for the professions when they are first read
        _split_sizes(split_spec, templates, len(subjects), source)
    return Axis(
        name=name,
        description=raw.get("description", ""),
        bias_task=tasks.get("bias", f"{name}_biaseval"),
        hint_task=tasks.get("hint", f"{name}_hinteval"),
        subject_field=raw.get("subject_field", "subject"),
        subject_list=subjects,
        seed=int(raw.get("seed", 0)),
        groups=tuple(groups),
        templates={s: list(t) for s, t in templates.items()},
        split_spec=split_spec,
        hint_templates={s: list(hint_templates[s]) for s in HINT_SPLITS},
        metrics=metrics,
        source=source,
        slopes=slopes,
        labour=_labour(raw.get("labour_statistics"), len(groups), where),
        version=float(raw.get("version", 1.0)),
        paper=_paper(raw.get("paper", {}), where),
    )


def _slug(subject: str) -> str:
    return subject.replace(" ", "_")


def build_bias(axis: Axis) -> list[dict]:
    """Every subject x template prompt with its split, split per scale by a seeded shuffle."""
    records = []
    scores = subject_scores(axis)
    _split_sizes(axis.split_spec, axis.templates, len(axis.subjects), axis.source)
    for scale, templates in axis.templates.items():
        scale_records = [
            {
                "id": f"{axis.bias_task}/{scale}_{t}/{_slug(subject)}",
                axis.subject_field: subject,
                "template_id": f"{scale}_{t}",
                "scale": scale,
                "prompt": template.format(subject=subject),
                **scores.get(subject, {}),
            }
            for t, template in enumerate(templates, start=1)
            for subject in axis.subjects
        ]
        order = list(range(len(scale_records)))
        random.Random(f"{axis.seed}/{scale}").shuffle(order)
        n_train, n_dev, _ = axis.split_sizes[scale]
        for rank, index in enumerate(order):
            split = "train" if rank < n_train else "dev" if rank < n_train + n_dev else "test"
            scale_records[index]["split"] = split
        records += scale_records
    return records


def build_hint(axis: Axis, split: str = "test") -> list[dict]:
    """subjects x hint templates; within each template the subjects are shared out evenly
    among the groups by a seeded shuffle (for two groups: half each)."""
    prefix = "" if split == "test" else f"{split}_"
    records = []
    k = len(axis.groups)
    for t, template in enumerate(axis.hint_templates[split], start=1):
        shuffled = list(axis.subjects)
        random.Random(f"{axis.seed}/{prefix}hint_{t}").shuffle(shuffled)
        n = len(shuffled)
        group_of = {s: g for g in range(k) for s in shuffled[g * n // k : (g + 1) * n // k]}
        for subject in axis.subjects:
            group = axis.groups[group_of[subject]]
            records.append(
                {
                    "id": f"{axis.hint_task}/{prefix}hint_{t}/{_slug(subject)}",
                    axis.subject_field: subject,
                    "template_id": f"{prefix}hint_{t}",
                    "hint": group.hint,
                    axis.hint_field: group.name,
                    "prompt": template.format(subject=subject, hint=group.hint),
                    "split": split,
                }
            )
    return records


def jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def data_files(axis: Axis) -> dict[str, str]:
    """The axis's prompt files, as {path relative to the data folder: text}."""
    bias = build_bias(axis)
    files = {
        f"{axis.bias_task}/{s}.jsonl": jsonl([r for r in bias if r["split"] == s]) for s in SPLITS
    }
    for split in ("dev", "test"):
        files[f"{axis.hint_task}/{split}.jsonl"] = jsonl(build_hint(axis, split))
    return files


# Per-prompt scores of an axis (the definitions, on plain data, are in lftf_tasks.metrics).


def group_logprobs_from_words(axis: Axis, word_logprobs: list[float]) -> list[float]:
    """log P(g|p) = log sum over the group's words of P(w|p); words in ``axis.choices`` order."""
    return metrics.group_logprobs(word_logprobs, [len(g.words) for g in axis.groups])


def prompt_scores(axis: Axis, group_logprobs: list[float]) -> dict[str, float]:
    """The bias metrics of one prompt (names from the spec), plus p_/log_p_ per group."""
    return metrics.prompt_scores(group_logprobs, axis.labels, axis.metrics)


hint_score = metrics.hint_score
