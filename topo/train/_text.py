"""Words for the training core's messages."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 layer"``, ``"2 layers"``: ``n`` and the noun in the number it needs."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
