"""Winogender schemas (Rudinger et al. 2018) as next-pronoun prompts, built from the source.

A template such as "The $OCCUPATION told the $PARTICIPANT that $NOM_PRONOUN could pay with
cash." becomes a prompt by cutting it just before its pronoun: "The technician told the
customer that". The next word is then he or she (or they), and the question is the same
as GenBiasEval's: how unequally does the model split P(he) and P(she)? Only templates
whose first pronoun is the subject one ($NOM_PRONOUN) qualify: cut before a possessive or
object pronoun, the next word would be his/her or him/her, not a choice between he and
she. Each qualifying template gives two prompts, one naming the other participant ("the
customer") and one with "someone", as the Winogender release has both.

Each occupation comes with the US Bureau of Labor Statistics' % female (2015) of
``occupations-stats.tsv``, which ``labour.py`` fits the gaps against.
"""

from __future__ import annotations

import re
from pathlib import Path

from lftf_tasks.reference import source_files
from lftf_tasks.transfer.sources import BuildError, read_tsv

TEMPLATES = "templates.tsv"
STATS = "occupations-stats.tsv"
TEMPLATE_HEADER = ["occupation(0)", "other-participant(1)", "answer", "sentence"]
STATS_HEADER = ["occupation", "bergsma_pct_female", "bls_pct_female", "bls_year"]
FIRST_PRONOUN = re.compile(r"\$(NOM|POSS|ACC)_PRONOUN")
THE_PARTICIPANT = re.compile(r"\b([Tt])he \$PARTICIPANT\b")
VARIANTS = ("participant", "someone")


def source_path(name: str, source: Path | None = None) -> Path:
    """A Winogender file: the verified published one, or ``source / name``."""
    return source_files("winogender", [name], source)[name]


def load_bls(source: Path | None = None) -> dict[str, float]:
    """occupation -> BLS % female (0-100)."""
    path = source_path(STATS, source)
    out = {}
    for number, (occupation, _, bls, _) in read_tsv(path, STATS_HEADER):
        try:
            out[occupation] = float(bls)
        except ValueError:
            raise BuildError(path, number, f"bls_pct_female {bls!r} is not a number") from None
    return out


def cut(path: Path, number: int, sentence: str) -> str | None:
    """The template up to its first pronoun, without the trailing space; None when the
    first pronoun is not $NOM_PRONOUN."""
    first = FIRST_PRONOUN.search(sentence)
    if first is None:
        raise BuildError(path, number, "the template has no pronoun placeholder")
    if first.group(1) != "NOM":
        return None
    head = sentence[: first.start()].rstrip()
    if not THE_PARTICIPANT.search(head) or "$OCCUPATION" not in head:
        raise BuildError(
            path, number, "expected 'the $PARTICIPANT' and $OCCUPATION before $NOM_PRONOUN"
        )
    return head


def fill(head: str, occupation: str, participant: str, variant: str) -> str:
    """The prompt: "the $PARTICIPANT" -> "the customer", or "someone" ("Someone" at the
    start of the sentence)."""

    def name(match: re.Match) -> str:
        capital = match.group(1) == "T"
        if variant == "participant":
            return f"{match.group(1)}he {participant}"
        return "Someone" if capital else "someone"

    return THE_PARTICIPANT.sub(name, head).replace("$OCCUPATION", occupation)


def build_winogender(source: Path | None = None) -> list[dict]:
    """Two prompts per template whose first pronoun is $NOM_PRONOUN, in template order;
    from the published files, or from a folder of copies (``source``)."""
    bls = load_bls(source)
    path = source_path(TEMPLATES, source)
    docs = []
    for number, (occupation, participant, answer, sentence) in read_tsv(path, TEMPLATE_HEADER):
        if occupation not in bls:
            raise BuildError(path, number, f"{occupation!r} is not in {STATS}")
        if answer not in ("0", "1"):
            raise BuildError(path, number, f"answer {answer!r} is neither 0 nor 1")
        head = cut(path, number, sentence)
        if head is None:
            continue
        template_id = number - 1  # the data row: line 2 is template 1
        for variant in VARIANTS:
            prompt = fill(head, occupation, participant, variant)
            if "$" in prompt:
                raise BuildError(path, number, f"a placeholder is left in {prompt!r}")
            docs.append(
                {
                    "id": f"winogender/{template_id:03d}/{variant}",
                    "template_id": template_id,
                    "occupation": occupation,
                    "participant": participant,
                    "variant": variant,
                    "answer": int(answer),
                    "prompt": prompt,
                    "bls_pct_female": bls[occupation],
                }
            )
    return docs
