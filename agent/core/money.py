"""Dollars as every screen shows them (the header, the approval modal, `ask`'s prompt).

A module of its own, without the gate's imports: the TUI's header draws a spend in its first
paint, before anything has loaded the tool registry (and pydantic with it).
"""

from __future__ import annotations

import math

__all__ = ["money"]


def money(value: float | None) -> str:
    """Dollars to the precision that matters: `$0.003`, `$0.025`, `$0.25`, `$1.50`, `$12.00`.

    Below a dollar, three significant digits (never fewer than two decimals); from a dollar
    up, cents. None (or NaN) is `unknown`."""
    if value is None or not math.isfinite(float(value)):
        return "unknown"
    v = float(value)
    sign, v = ("-" if v < 0 else ""), abs(v)
    if v == 0 or round(v, 2) >= 1:
        return f"{sign}${v:,.2f}"
    decimals = max(2, 2 - math.floor(math.log10(v)))
    text = f"{v:.{decimals}f}".rstrip("0")
    whole, frac = text.split(".")
    return f"{sign}${whole}.{frac.ljust(2, '0')}"
