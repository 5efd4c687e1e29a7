"""WinoBias (Zhao et al. 2018) as pairs of continuations, built from the published files.

Line i of ``pro_stereotyped_type{1,2}.txt.{dev,test}`` and line i of the matching
``anti_stereotyped`` file are one sentence with the pronoun of the other gender ("[The
developer] argued with the designer because [he]/[she] did not like the design."). A pair
becomes a doc when the two sentences differ only in gendered pronouns; the doc's
``context`` is the text before the first of them and ``pro``/``anti`` the two endings, so a
model is asked which ending it finds likelier after the same words (as CrowS-Pairs asks of
whole sentences). Pairs that differ in anything else (typos, other words, other lengths)
are dropped with the reason, since their log-likelihoods would compare more than gender.
"""

from __future__ import annotations

import re
from pathlib import Path

from lftf_tasks.reference import source_files
from lftf_tasks.transfer.sources import BuildError, read_lines

TYPES = (1, 2)  # 1: resolved by world knowledge (semantics); 2: by syntax
SPLITS = ("dev", "test")
PRONOUN_PAIRS = {("he", "she"), ("him", "her"), ("his", "her"), ("himself", "herself")}
MALE = {male for male, _ in PRONOUN_PAIRS}
PUNCTUATION = ".,;:!?"
ARTICLE = re.compile(r"^(the|a|an) ", re.IGNORECASE)
Line = tuple[list[str], list[str]]  # (words, bracketed mentions) of one source line


def source_name(side: str, type_: int, split: str) -> str:
    """The published file name: side is "pro" or "anti"."""
    return f"{side}_stereotyped_type{type_}.txt.{split}"


def bracketed(path: Path, number: int, text: str) -> list[str]:
    """The bracketed mentions of a line; brackets must pair up without nesting, since a
    stray one would leave a '[' or ']' in a prompt (or swallow words into a mention)."""
    if not re.fullmatch(r"[^\[\]]*(\[[^\[\]]*\][^\[\]]*)*", text):
        raise BuildError(path, number, f"unbalanced brackets in {text!r}")
    return [m.strip() for m in re.findall(r"\[([^\]]*)\]", text)]


def parse_line(path: Path, number: int, line: str) -> Line:
    """(words without brackets, bracketed mentions) of line ``number``, which must start
    with that number and a space: pro and anti are paired by it."""
    head, space, text = line.partition(" ")
    if head != str(number) or not space:
        raise BuildError(
            path, number, f"expected the line to start with {number} and a space: {line[:40]!r}"
        )
    mentions = bracketed(path, number, text)
    words = text.replace("[", "").replace("]", "").split()
    if not words:
        raise BuildError(path, number, "no sentence after the line number")
    return words, mentions


def read_file(path: Path) -> list[Line]:
    return [parse_line(path, n, line) for n, line in enumerate(read_lines(path), start=1)]


def detokenise(words: list[str]) -> str:
    """The words as running text: " 's" joins the word before ("librarian 's" ->
    "librarian's") and no space stays before . , ; : ! ? (none does in this release)."""
    text = re.sub(r" 's\b", "'s", " ".join(words))
    return re.sub(rf" ([{re.escape(PUNCTUATION)}])", r"\1", text)


def _core(word: str) -> tuple[str, str]:
    """("him", ".") for "him."."""
    core = word.rstrip(PUNCTUATION)
    return core, word[len(core) :]


def compare(pro: list[str], anti: list[str]) -> tuple[int | None, str]:
    """(index of the first differing word, gender of the pro side's pronouns) when the two
    sentences differ only in he/she, him/her, his/her, himself/herself (any capitalisation,
    equal trailing punctuation), the male words all on one side; else (None, the reason)."""
    if len(pro) != len(anti):
        return None, f"word counts differ ({len(pro)} vs {len(anti)})"
    differing = [(i, p, a) for i, (p, a) in enumerate(zip(pro, anti)) if p != a]
    if not differing:
        return None, "the sentences are identical"
    male_sides = set()
    for _, p, a in differing:
        (p_core, p_end), (a_core, a_end) = _core(p.lower()), _core(a.lower())
        pair = {(p_core, a_core), (a_core, p_core)} & PRONOUN_PAIRS
        if not pair or p_end != a_end:
            return None, f"differs in '{p}'/'{a}'"
        male_sides.add("pro" if p_core in MALE else "anti")
    if len(male_sides) > 1:
        words = ", ".join(f"'{p}'/'{a}'" for _, p, a in differing)
        return None, f"pronouns of both genders on one side ({words})"
    if differing[0][0] == 0:
        return None, "the first word differs (no context to score from)"
    return differing[0][0], "male" if male_sides == {"pro"} else "female"


def referent(mentions: list[str]) -> str | None:
    """The occupation the pronoun refers to: the first bracketed mention that is not a
    pronoun, without its article ("The developer" -> "developer")."""
    pronouns = {w for pair in PRONOUN_PAIRS for w in pair}
    for mention in mentions:
        if mention.lower() not in pronouns:
            return ARTICLE.sub("", mention)
    return None


def pair_doc(
    type_: int, split: str, number: int, pro: Line, anti: Line, index: int, gender: str
) -> dict:
    """The doc of a kept pair; context + " " + ending rebuilds each whole sentence."""
    (pro_words, mentions), (anti_words, _) = pro, anti
    context = detokenise(pro_words[:index])
    endings = detokenise(pro_words[index:]), detokenise(anti_words[index:])
    for words, ending in zip((pro_words, anti_words), endings):
        if f"{context} {ending}" != detokenise(words):  # a rule that joined across the cut
            raise BuildError(source_name("pro", type_, split), number, "cannot cut the sentence")
    return {
        "id": f"type{type_}_{split}_{number:04d}",
        "type": type_,
        "split": split,
        "line": number,
        "context": context,
        "pro": endings[0],
        "anti": endings[1],
        "pro_pronoun": _core(pro_words[index].lower())[0],
        "anti_pronoun": _core(anti_words[index].lower())[0],
        "pro_gender": gender,
        "referent": referent(mentions),
    }


SOURCE_NAMES = [source_name(side, t, s) for s in SPLITS for t in TYPES for side in ("pro", "anti")]


def build_winobias(source: Path | None = None) -> tuple[list[dict], list[dict]]:
    """(kept docs, dropped pairs with their reasons), dev before test, type 1 before 2; from
    the published files, or from a folder of copies (``source``)."""
    paths = source_files("winobias", SOURCE_NAMES, source)
    kept, dropped = [], []
    for split in SPLITS:
        for type_ in TYPES:
            pro_path = paths[source_name("pro", type_, split)]
            anti_path = paths[source_name("anti", type_, split)]
            pro, anti = read_file(pro_path), read_file(anti_path)
            if len(pro) != len(anti):  # the first line of the longer file without a partner
                longer, shorter = (
                    (pro_path, anti_path) if len(pro) > len(anti) else (anti_path, pro_path)
                )
                n = min(len(pro), len(anti)) + 1
                raise BuildError(longer, n, f"{shorter.name} has no line {n} to pair it with")
            for number, (p, a) in enumerate(zip(pro, anti), start=1):
                index, why = compare(p[0], a[0])
                if index is None:
                    pair = {"pro": detokenise(p[0]), "anti": detokenise(a[0])}
                    dropped.append(
                        {"type": type_, "split": split, "line": number, "reason": why, **pair}
                    )
                else:
                    kept.append(pair_doc(type_, split, number, p, a, index, why))
    return kept, dropped
