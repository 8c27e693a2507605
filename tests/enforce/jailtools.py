"""Plain helpers shared by the enforcement tests (imported by name; fixtures are in conftest)."""

from __future__ import annotations

from tinyjail import syscalls


def nr(name: str, arch: str = "x86_64") -> int:
    """A syscall number from libseccomp."""
    n = syscalls.number(name, arch)
    assert n is not None, name
    return n


def parse_calls(stdout: str) -> list[tuple[int, int, int]]:
    """The sys helper's lines "NR ret=R errno=E" as (nr, ret, errno)."""
    out = []
    for line in stdout.splitlines():
        nr_text, ret, err = line.split()
        out.append((int(nr_text), int(ret.removeprefix("ret=")), int(err.removeprefix("errno="))))
    return out


def call(name: str, *args: int) -> str:
    """One argument of the sys helper: the syscall and its argument registers."""
    return ":".join(str(v) for v in (nr(name), *args))
