"""Reading the reference files the build turns into tasks (WinoBias, Winogender).

They come verified from ``lftf_tasks.reference``; the build stops at the first line it
cannot use, naming the file and line, so a damaged copy (a folder of copies handed to the
build) fails loudly instead of quietly losing sentences.
"""

from __future__ import annotations

import csv
from pathlib import Path


class BuildError(ValueError):
    """A source line the build cannot use: the message starts with ``file:line:``."""

    def __init__(self, path: str | Path, line: int, message: str):
        super().__init__(f"{Path(path).name}:{line}: {message}")


def read_lines(path: Path) -> list[str]:
    """The file's lines without their line ends (a final newline adds no empty line)."""
    return path.read_text(encoding="utf-8").splitlines()


def read_tsv(path: Path, header: list[str]) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every row after a header that must be ``header``: a column
    renamed or moved upstream would otherwise be read as the wrong field."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or rows[0] != header:
        raise BuildError(path, 1, f"expected the header {header}, got {rows[:1]}")
    for number, cells in enumerate(rows[1:], start=2):
        if len(cells) != len(header):
            raise BuildError(path, number, f"expected {len(header)} columns, got {len(cells)}")
    return list(enumerate(rows[1:], start=2))
