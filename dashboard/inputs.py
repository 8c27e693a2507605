"""What a browser sends to a callback, checked before use: anything unexpected reads as "nothing".

Dash hands callbacks whatever JSON arrives in a POST to ``/_dash-update-component``; a crafted
request can put a string where a figure's ``relayoutData`` is expected or a dict where a
dropdown's value is. The plain functions behind the callbacks pass those values through these
checks, so a bad value gives the empty or default view (as `DashboardState.entry` does for a bad
trace index) instead of an exception, a 500 and a traceback in the server log.
"""

from __future__ import annotations

import math
from typing import Any


def as_dict(value: Any) -> dict[str, Any] | None:
    """``value`` when it is a JSON object, else None."""
    return value if isinstance(value, dict) else None


def as_list(value: Any) -> list[Any] | None:
    """``value`` when it is a JSON array, else None."""
    return value if isinstance(value, list) else None


def finite(value: Any) -> float | None:
    """A finite number from a JSON number or numeric string (Plotly sends both); else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


MAX_SECONDS = 1e9
"""31 years: longer than any trace, and its ns still fit the int64 time arrays."""


def seconds_to_ns(value: Any) -> int | None:
    """Seconds on the timeline's x axis -> integer ns; None unless finite and representable."""
    s = finite(value)
    if s is None or abs(s) > MAX_SECONDS:
        return None
    return int(s * 1e9)


def integer(value: Any) -> int | None:
    """An int from a JSON integer, an integral float or a decimal string (Plotly sends mixed
    customdata as strings); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and len(value) <= 20:
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def strings(value: Any) -> list[str] | None:
    """``value`` when it is a list of strings (a checklist's value), else None."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def name(value: Any) -> str | None:
    """A short string (a syscall name as tables and dropdowns send it), else None. Whether it is
    one the trace knows is the view's question (`callsites.default_syscall`)."""
    if isinstance(value, str) and 0 < len(value) <= 64:
        return value
    return None


__all__ = ["as_dict", "as_list", "finite", "integer", "name", "seconds_to_ns", "strings"]
