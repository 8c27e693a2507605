#!/usr/bin/env python3
"""Generate tinyjail/data/kernel_constants.json from the installed Linux UAPI headers.

Python's own modules (socket, os, mmap, fcntl, termios) cover most argument constants;
the rest (CLONE_*, PR_*, personality, extra MAP_*/MADV_*/ioctl values) exist only in the
kernel headers. Reading them here keeps every number out of hand-typed Python code; the
output is small and committed so that tinyjail needs no headers at run time.

Usage: python3 tools/gen_kernel_constants.py [--include /usr/include] [-o PATH]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

_TOKEN = re.compile(r"\s*(0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*|[A-Za-z_]\w*|<<|>>|[|&()~+])")


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return text.replace("\\\n", " ")


def _eval(expr: str, known: dict[str, int]) -> int | None:
    """Evaluate a C constant expression of ints, known names, | & << >> ~ + and parentheses;
    None for anything else (casts, function-like macros)."""
    pos, out = 0, []
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            return None
        tok = m.group(1)
        pos = m.end()
        if tok[0].isdigit():
            digits = tok.rstrip("uUlL")
            out.append(str(int(digits, 8) if re.fullmatch(r"0[0-7]+", digits) else int(digits, 0)))
        elif tok[0].isalpha() or tok[0] == "_":
            if tok not in known:
                return None
            out.append(str(known[tok]))
        else:
            out.append(tok)
    if not out:
        return None
    try:
        value = eval(" ".join(out), {"__builtins__": {}}, {})  # only digits and operators remain
    except Exception:
        return None
    return value if isinstance(value, int) else None


def _defines(path: Path, pattern: str, *, column0: bool = False) -> dict[str, int]:
    """``#define NAME EXPR`` lines whose name matches ``pattern`` (``column0``: no space after #)."""
    known: dict[str, int] = {}
    out: dict[str, int] = {}
    lead = r"^#define" if column0 else r"^#\s*define"
    for line in _strip_comments(path.read_text()).splitlines():
        m = re.match(lead + r"\s+([A-Za-z_]\w*)\s+(.+?)\s*$", line)
        if not m:
            continue
        value = _eval(m.group(2), known)
        if value is None:
            continue
        known[m.group(1)] = value
        if re.fullmatch(pattern, m.group(1)):
            out[m.group(1)] = value
    return out


def _enums(path: Path) -> dict[str, int]:
    """Every ``NAME = EXPR`` entry of the ``enum { ... }`` blocks of a header."""
    known: dict[str, int] = {}
    for block in re.findall(r"enum\s*\w*\s*\{(.*?)\}", _strip_comments(path.read_text()), flags=re.S):
        for entry in block.split(","):
            m = re.match(r"\s*([A-Za-z_]\w*)\s*=\s*(.+?)\s*$", entry, flags=re.S)
            if m:
                value = _eval(m.group(2), known)
                if value is not None:
                    known[m.group(1)] = value
    return known


def _libc_dev_version() -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "linux-libc-dev"],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def generate(include: Path) -> dict[str, object]:
    asm = include / "x86_64-linux-gnu" / "asm"
    mman: dict[str, int] = {}
    for header in (include / "asm-generic" / "mman-common.h", include / "asm-generic" / "mman.h",
                   asm / "mman.h", include / "linux" / "mman.h"):
        mman.update(_defines(header, r"(PROT|MAP|MADV)_\w+"))
    personality = _enums(include / "linux" / "personality.h")
    personality.update(_defines(include / "linux" / "personality.h", r"PER_\w+"))
    groups = {
        "clone": _defines(include / "linux" / "sched.h", r"CLONE_(?!ARGS_)\w+|CSIGNAL"),
        # Options are the column-0 "#define PR_..." lines; their sub-values are "# define".
        "prctl": _defines(include / "linux" / "prctl.h", r"PR_\w+", column0=True),
        "personality": personality,
        "prot": {k: v for k, v in mman.items() if k.startswith("PROT_")},
        "map": {k: v for k, v in mman.items() if k.startswith("MAP_") and k != "MAP_HUGE_MASK"},
        "madvise": {k: v for k, v in mman.items() if k.startswith("MADV_")},
        "ioctl": {
            **_defines(include / "asm-generic" / "ioctls.h", r"(TC|TIOC|FIO)\w+"),
            **_defines(include / "linux" / "sockios.h", r"SIOC\w+"),
        },
    }
    return {
        "generator": "tools/gen_kernel_constants.py",
        "headers": f"{include} (linux-libc-dev {_libc_dev_version()})",
        "groups": {name: dict(sorted(values.items(), key=lambda kv: (kv[1], kv[0])))
                   for name, values in groups.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--include", type=Path, default=Path("/usr/include"))
    default = Path(__file__).resolve().parent.parent / "tinyjail" / "data" / "kernel_constants.json"
    parser.add_argument("-o", "--output", type=Path, default=default)
    args = parser.parse_args()
    data = generate(args.include)
    args.output.write_text(json.dumps(data, indent=1) + "\n")
    counts = ", ".join(f"{k}={len(v)}" for k, v in data["groups"].items())  # type: ignore[attr-defined]
    print(f"wrote {args.output} ({counts})")


if __name__ == "__main__":
    main()
