"""Markdown tables and their cells: "value ± stderr (delta)", one format for every output."""

from __future__ import annotations


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def cell(row: dict, key: str, baseline: dict | None = None, digits: int = 4) -> str:
    """``row[key]`` with its ``<key>_stderr`` when the row has one and, against a baseline
    row, the signed change in brackets; "–" when the row lacks the key."""
    if key not in row:
        return "–"
    text = f"{row[key]:.{digits}f}"
    if f"{key}_stderr" in row:
        text += f" ± {row[f'{key}_stderr']:.{digits}f}"
    if baseline is not None and baseline is not row and key in baseline:
        text += f" ({row[key] - baseline[key]:+.{digits}f})"
    return text


def comparison_table(
    rows: dict[str, dict],
    columns: list[tuple[str, str]],
    baseline: str | None = None,
    corner: str = "",
) -> str:
    """One line per named row, one column per (key, label); changes against ``baseline``.
    A row whose "status" is not "ok" (a method not run) shows "–" throughout."""
    base = rows.get(baseline) if baseline else None
    lines = []
    for name, row in rows.items():
        if row.get("status", "ok") != "ok":
            lines.append([name, *["–"] * len(columns)])
        else:
            lines.append([name, *[cell(row, key, base) for key, _ in columns]])
    return markdown_table([corner, *[label for _, label in columns]], lines)


def span(layers: list[int]) -> str:
    """[19, 20, ..., 27] -> '19-27'; other sets comma-separated."""
    if layers == list(range(layers[0], layers[-1] + 1)) and len(layers) > 1:
        return f"{layers[0]}-{layers[-1]}"
    return ",".join(map(str, layers))
