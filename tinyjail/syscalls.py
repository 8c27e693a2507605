"""The syscall table: names <-> numbers, queried from libseccomp (never typed by hand).

x86_64 is the native ABI here. The same kernel also accepts two foreign ABIs, and a
filter has to decide what to do with each:

* ``x86`` (i386, ``SCMP_ARCH_X86``): ``int 0x80`` from a 64-bit process uses the i386
  numbering (e.g. 5 is ``open`` there, ``fstat`` on x86_64). A filter that does not list
  this architecture sends those calls to the *bad-arch* action (we kill).
* ``x32`` (``SCMP_ARCH_X32``): the x86_64 numbers with bit 0x40000000 set. The kernel
  reports the x86_64 audit arch for them, so a filter must check that bit itself;
  libseccomp does it when x32 is not among the filter's architectures.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass

import pyseccomp

from tinyjail.errors import UsageError

X32_SYSCALL_BIT = 0x40000000
"""Bit that marks an x32 syscall number (``__X32_SYSCALL_BIT`` in the kernel)."""

_MAX_NR = 1024  # upper bound for the table scan; x86_64 numbers are < 512 today


@dataclass(frozen=True)
class ArchInfo:
    """One ABI: its short name, OCI name and AUDIT_ARCH token (as libseccomp defines it)."""

    name: str
    oci: str
    token: int
    nr_offset: int = 0


def _arch(name: str, attr: str, nr_offset: int = 0) -> ArchInfo:
    return ArchInfo(name, f"SCMP_ARCH_{attr}", int(getattr(pyseccomp.Arch, attr)), nr_offset)


ARCHES: dict[str, ArchInfo] = {
    "x86_64": _arch("x86_64", "X86_64"),
    "x86": _arch("x86", "X86"),
    "x32": _arch("x32", "X32", X32_SYSCALL_BIT),
}
"""The ABIs an x86_64 kernel can run. Other OCI arch names are accepted by the policy model
(they are libseccomp's) but have no table here."""

OCI_ARCHES: dict[str, int] = {
    f"SCMP_ARCH_{attr}": int(getattr(pyseccomp.Arch, attr))
    for attr in dir(pyseccomp.Arch)
    if attr.isupper() and attr != "NATIVE"
}
"""Every architecture name libseccomp knows, in OCI spelling, with its AUDIT_ARCH token."""

NATIVE_ARCH = "x86_64"


@dataclass(frozen=True)
class Syscall:
    """A resolved syscall on one ABI."""

    name: str
    number: int
    arch: str = NATIVE_ARCH


def _arch_info(arch: str) -> ArchInfo:
    try:
        return ARCHES[arch]
    except KeyError:
        raise UsageError(f"unknown architecture {arch!r} (known: {', '.join(ARCHES)})") from None


@functools.cache
def table(arch: str = NATIVE_ARCH) -> dict[str, int]:
    """All syscalls of ``arch`` that libseccomp knows, name -> number (x32 numbers carry the x32 bit)."""
    info = _arch_info(arch)
    out: dict[str, int] = {}
    for nr in range(info.nr_offset, info.nr_offset + _MAX_NR):
        try:
            name = pyseccomp.resolve_syscall(info.token, nr).decode()
        except ValueError:
            continue
        out.setdefault(name, nr)
    return out


@functools.cache
def _by_number(arch: str) -> dict[int, str]:
    return {nr: name for name, nr in table(arch).items()}


@functools.cache
def known_names() -> frozenset[str]:
    """Every syscall name valid in a policy: those of the x86 family plus any other name libseccomp
    resolves on some architecture (e.g. ``socketcall``, which x86_64 lacks)."""
    names: set[str] = set()
    for arch in ARCHES:
        names.update(table(arch))
    return frozenset(names)


def is_known(name: str) -> bool:
    """True when libseccomp knows ``name`` on any architecture (it gives a pseudo number otherwise)."""
    if name in known_names():
        return True
    return int(pyseccomp.resolve_syscall(ARCHES[NATIVE_ARCH].token, name)) != -1


def number(name: str, arch: str = NATIVE_ARCH) -> int | None:
    """The number of ``name`` on ``arch``, or None when that ABI has no such syscall."""
    return table(arch).get(name)


def name(nr: int, arch: str = NATIVE_ARCH) -> str:
    """The name of syscall ``nr`` on ``arch``; ``syscall_<nr>`` when libseccomp does not know it
    (a kernel newer than libseccomp)."""
    found = _by_number(arch).get(nr)
    return found if found is not None else f"syscall_{nr}"


def suggest(text: str) -> str | None:
    """The closest known syscall name to ``text``, for "did you mean" messages."""
    matches = difflib.get_close_matches(text, sorted(known_names()), n=1, cutoff=0.6)
    return matches[0] if matches else None


def canonical_name(text: str | int) -> str:
    """Turn ``SYS_open``, ``__NR_open``, ``open`` or ``2`` (native number) into ``open``.

    Raises UsageError with a suggestion when the name is unknown.
    """
    if isinstance(text, int) or (isinstance(text, str) and text.strip().isdigit()):
        nr = int(text)
        found = _by_number(NATIVE_ARCH).get(nr)
        if found is None:
            raise UsageError(f"no {NATIVE_ARCH} syscall has number {nr}")
        return found
    raw = text.strip()
    for prefix in ("SYS_", "__NR_", "__x64_sys_", "sys_"):
        if raw.startswith(prefix) and not is_known(raw):
            raw = raw[len(prefix):]
            break
    if not is_known(raw):
        hint = suggest(raw)
        more = f' (did you mean "{hint}"?)' if hint else ""
        raise UsageError(f'unknown syscall "{text}"{more}')
    return raw


def resolve(text: str | int, arch: str = NATIVE_ARCH) -> Syscall:
    """Resolve an alias or number (see `canonical_name`) to a syscall of ``arch``."""
    nm = canonical_name(text)
    nr = number(nm, arch)
    if nr is None:
        raise UsageError(f'syscall "{nm}" does not exist on {arch}')
    return Syscall(nm, nr, arch)


__all__ = [
    "ARCHES",
    "NATIVE_ARCH",
    "OCI_ARCHES",
    "X32_SYSCALL_BIT",
    "ArchInfo",
    "Syscall",
    "canonical_name",
    "is_known",
    "known_names",
    "name",
    "number",
    "resolve",
    "suggest",
    "table",
]
