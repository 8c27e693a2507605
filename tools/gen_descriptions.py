"""Generate tinyjail/data/syscall_descriptions.json from Debian manpages-dev's man2 NAME lines.

For every syscall name libseccomp knows (tinyjail.syscalls.known_names()) this takes the
one-line summary of its manual page ("read - read from a file descriptor" -> "read from a
file descriptor"), following ``.so`` redirects (openat.2 -> open.2). Variants without a page
of their own (``getuid32``, ``clock_gettime64``, ``pread64``...) borrow the base name's line
and say which variant they are. Names with no page at all are left out; describe() has a
fallback for them.

    python tools/gen_descriptions.py [--man-dir /usr/share/man/man2] [-o PATH]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tinyjail import syscalls  # noqa: E402

OUT = REPO / "tinyjail" / "data" / "syscall_descriptions.json"

# Suffixes of variants that share a manual page with their base name.
VARIANTS = (
    ("_time64", "64-bit time_t variant"),
    ("64", "64-bit variant"),
    ("32", "32-bit uid/gid variant"),
    ("2", "revised variant"),
)


def _read(page: Path) -> str:
    if page.suffix == ".gz":
        with gzip.open(page, "rt", errors="replace") as fh:
            return str(fh.read())
    return page.read_text(errors="replace")


def _clean(text: str) -> str:
    text = re.sub(r"\\f[BIRP]|\\f\[[A-Z]*\]|\\\*\(.." , "", text)
    text = text.replace("\\-", "-").replace("\\e", "\\").replace("\\(em", "-").replace("\\&", "")
    text = re.sub(r"\\\[(\w+)\]", "", text)
    return " ".join(text.split())


def parse_pages(man_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(name -> summary from NAME lines, page name -> page it redirects to)."""
    summaries: dict[str, str] = {}
    redirects: dict[str, str] = {}
    for page in sorted(man_dir.glob("*.2*")):
        stem = page.name.split(".2")[0]
        text = _read(page)
        so = re.match(r"\s*\.so\s+man2/([^.\s]+)\.2", text)
        if so:
            redirects[stem] = so.group(1)
            continue
        m = re.search(r"^\.SH\s+\"?NAME\"?\s*\n(.*?)(?=^\.SH)", text, re.M | re.S)
        if not m:
            continue
        lines = [ln for ln in m.group(1).splitlines() if not ln.startswith(('.\\"', ".PD", ".ad", ".nh"))]
        line = _clean(" ".join(ln.lstrip(".BI ") if ln.startswith((".B ", ".BR ")) else ln for ln in lines))
        if " - " not in line:
            continue
        names, summary = line.split(" - ", 1)
        for name in re.split(r"[,\s]+", names):
            if name:
                summaries.setdefault(name, summary.strip())
        summaries.setdefault(stem, summary.strip())
    return summaries, redirects


def describe_all(names: list[str], summaries: dict[str, str], redirects: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}

    def lookup(name: str) -> str | None:
        seen = set()
        while name not in summaries and name in redirects and name not in seen:
            seen.add(name)
            name = redirects[name]
        return summaries.get(name)

    for name in names:
        found = lookup(name)
        if found is None:
            for suffix, what in VARIANTS:
                base = name[: -len(suffix)] if name.endswith(suffix) else None
                if base and lookup(base):
                    found = f"{lookup(base)} ({what} of {base})"
                    break
        if found is None and name.startswith("_") and lookup(name.lstrip("_")):
            found = lookup(name.lstrip("_"))
        if found:
            out[name] = found
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--man-dir", type=Path, default=Path("/usr/share/man/man2"))
    ap.add_argument("-o", "--output", type=Path, default=OUT)
    opts = ap.parse_args()
    if not opts.man_dir.is_dir():
        sys.exit(f"gen_descriptions: {opts.man_dir} is missing; install Debian's manpages-dev (make setup)")
    summaries, redirects = parse_pages(opts.man_dir)
    names = sorted(syscalls.known_names())
    table = describe_all(names, summaries, redirects)
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    opts.output.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"gen_descriptions: {len(table)}/{len(names)} syscalls described -> {opts.output}")
    missing = [n for n in names if n not in table]
    if missing:
        print(f"gen_descriptions: no manual page for: {' '.join(missing)}")


if __name__ == "__main__":
    main()
