"""Regenerate the data block of tinyjail/groups.py from systemd's sources.

systemd is not a dependency: run this by hand against a checkout, e.g.

    git -C systemd show v252:src/shared/seccomp-util.c > /tmp/seccomp-util.c
    git -C systemd show v252:src/basic/syscall-list.txt > /tmp/syscall-list.txt
    python tools/gen_groups.py /tmp/seccomp-util.c /tmp/syscall-list.txt > /tmp/groups_data.py

and paste the output over the ``GROUPS``/``GROUP_HELP`` block. Only names, help lines and
members are taken (data); ``@known`` is expanded the way systemd's build does on x86_64
(``s390_*``/``arm_*`` names dropped).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def parse(seccomp_util_c: str, syscall_list: str) -> list[tuple[str, str, list[str]]]:
    """[(group, help, members)] in systemd's order."""
    text = Path(seccomp_util_c).read_text()
    body = text[text.index("syscall_filter_sets[_SYSCALL_FILTER_SET_MAX]"):]
    body = body[: body.index("\n};")]
    out: list[tuple[str, str, list[str]]] = []
    for block in re.split(r"\n\s*\[SYSCALL_FILTER_SET_\w+\]\s*=\s*\{", body)[1:]:
        name = re.search(r'\.name\s*=\s*"([^"]+)"', block)
        help_ = re.search(r'\.help\s*=\s*"([^"]+)"', block)
        assert name and help_
        value = block[block.index(".value"):]
        value = re.sub(r"/\*.*?\*/", "", value, flags=re.S)
        members = re.findall(r'"([^"\\]+)\\0"', value)
        if '#include "syscall-list.h"' in value:
            for line in Path(syscall_list).read_text().splitlines():
                nm = line.strip()
                if nm and not nm.startswith(("s390_", "arm_")):
                    members.append(nm)
        out.append((name.group(1), help_.group(1), members))
    return out


def main() -> None:
    groups = parse(sys.argv[1], sys.argv[2])
    print("GROUP_HELP: dict[str, str] = {")
    for name, help_, _ in groups:
        print(f"    {name!r}: {help_!r},")
    print("}")
    print()
    print("GROUPS: dict[str, tuple[str, ...]] = {")
    for name, _, members in groups:
        print(f"    {name!r}: (")
        line = "       "
        for m in members:
            piece = f" {m!r},"
            if len(line) + len(piece) > 108:
                print(line)
                line = "       "
            line += piece
        print(line)
        print("    ),")
    print("}")


if __name__ == "__main__":
    main()
