"""Plain-text tables, for the ``print()`` of statistics, summaries and sweep results."""

from __future__ import annotations

from collections.abc import Collection, Sequence

__all__ = ["format_table"]


def format_table(
    rows: Sequence[Sequence[str]],
    *,
    right: Collection[int] | None = None,
    total: bool = False,
) -> str:
    """Aligned columns: a head row, a rule, the body; with ``total`` a rule above the last row.

    :param right: the columns aligned right (numbers); by default all but the first.
    """
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right_cols = set(range(1, len(widths))) if right is None else set(right)

    def fmt(r: Sequence[str]) -> str:
        cells = (c.rjust(w) if i in right_cols else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [fmt(r) for r in rows[1:]]
    if total and body:
        body = [*body[:-1], rule, body[-1]]
    return "\n".join([fmt(rows[0]), rule, *body])
