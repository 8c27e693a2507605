"""One line of "what this syscall does", from the NAME lines of Linux's manual pages.

The data (tinyjail/data/syscall_descriptions.json) is generated from Debian's manpages-dev by
tools/gen_descriptions.py and committed, so tinyjail needs no man pages at run time.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

_DATA = Path(__file__).resolve().parent / "data" / "syscall_descriptions.json"


@functools.cache
def descriptions() -> dict[str, str]:
    """Every generated description, syscall name -> one line."""
    try:
        data = json.loads(_DATA.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()}


def describe(name: str) -> str:
    """What ``name`` does in one line; for a syscall without a manual page, which systemd groups
    it belongs to (a hint of its purpose) or a plain fallback."""
    found = descriptions().get(name)
    if found:
        return found
    from tinyjail import groups

    owners = [g for g in groups.direct_groups_of(name) if g not in ("@known", "@system-service")]
    if owners:
        return f"no manual page; systemd groups it under {', '.join(owners)}"
    return "no manual page description available"


__all__ = ["describe", "descriptions"]
